"""PixelCNN auto-encoder (van den Oord et al. 2016, "Conditional Image
Generation with PixelCNN Decoders", Sec. 2.4 and 3.4).

A convolutional encoder maps the image to a code of `code_dim` (m) numbers;
the decoder is a Gated PixelCNN conditioned on that code as a float
embedding, p(x | code). Both are trained end to end by the decoder's NLL.

The NLL is `-log p(x | code(x))`: the code is computed from the image it
scores, so this is neither p(x) nor a bound on it (the code is a
deterministic function of x, with no prior over it), and it is not comparable
with the unconditional models' numbers.

The encoder is a small convolutional one, as in the paper (our sizes):
`encoder_layers` 3x3 stride-2 convs with ReLU (`encoder_dim` maps, doubling
at each), the maps flattened, and a Dense layer to m (no activation). The Dense layer ties
the encoder to the image size it was initialised with.
"""

from typing import Any, ClassVar

import flax.linen as nn
import jax.numpy as jnp

from pixel_models.distributions import CategoricalModel
from pixel_models.interface import NEEDS_A_CODE, PixelModel, Stepper
from pixel_models.layers.pixel_io import scale_pixels
from pixel_models.models.gated_pixelcnn import GatedPixelCNN


def _checked_code(cond, batch: int, code_dim: int) -> jnp.ndarray:
    """A given code as an array `[batch, code_dim]`; a ValueError if it is not one."""
    code = jnp.asarray(cond)
    if code.shape != (batch, code_dim) or not jnp.issubdtype(code.dtype, jnp.floating):
        raise ValueError(
            f"cond must be None or a float code [{batch}, {code_dim}]; got {code.dtype} "
            f"{code.shape}"
        )
    return code


class ConvEncoder(nn.Module):
    """`x[B, H, W, C]` integers in `[0, num_levels)` -> code `[B, code_dim]`."""

    code_dim: int
    num_levels: int
    features: int = 32
    num_layers: int = 2
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        z = scale_pixels(x, self.num_levels)
        for i in range(self.num_layers):
            z = nn.relu(nn.Conv(self.features * 2**i, (3, 3), strides=2, dtype=self.dtype)(z))
        return nn.Dense(self.code_dim, dtype=self.dtype)(z.reshape(len(z), -1))


class PixelCNNAutoEncoder(CategoricalModel, PixelModel):
    """`x[B, H, W, C]` integers in `[0, num_levels)` -> logits `[B, H, W, C, K]`
    (float32) of p(x | code).

    `cond`: None (the code is the encoder's, of `x` itself) or a float code
    `[B, code_dim]` that replaces it (to check or sample the decoder with a
    fixed code). Given a code, the model is an autoregressive model of x.

    Attributes:
      num_levels: K, values per subpixel.
      code_dim: m, numbers in the code.
      encoder_dim: maps of the encoder's first strided conv (doubled at each next).
      encoder_layers: stride-2 convs of the encoder.
      hidden_dim, num_layers, input_kernel_size, kernel_size,
      output_hidden_dim: the decoder's, as in `GatedPixelCNN`.
      dtype: compute dtype (parameters stay float32; logits are float32).
    """

    # What its NLL is conditioned on, and what that NLL is (the evaluation says both).
    CONDITIONED_ON: ClassVar[str] = "code(x)"
    LIKELIHOOD: ClassVar[str] = "p(x | code(x)), the code computed from x: not a bound on p(x)"
    ENCODES: ClassVar[bool] = True
    CPU_CHUNK_PIXELS: ClassVar[int] = GatedPixelCNN.CPU_CHUNK_PIXELS  # its decoder's

    num_levels: int
    code_dim: int = 10
    encoder_dim: int = 32
    encoder_layers: int = 2
    hidden_dim: int = 32
    num_layers: int = 7
    input_kernel_size: int = 3
    kernel_size: int = 3
    output_hidden_dim: int = 64
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jnp.ndarray, cond=None, train: bool = False) -> jnp.ndarray:
        code = None if cond is None else _checked_code(cond, len(x), self.code_dim)
        # `init` builds the encoder even when given a code, so that the
        # variables are the same however they were initialised.
        if code is None or self.is_initializing():
            encoded = self.encoder()(x)
            code = encoded if code is None else code
        return self.decoder()(x, code, train)

    @nn.nowrap
    def encode(self, variables, x: jnp.ndarray) -> jnp.ndarray:
        """The code `[B, code_dim]` of images `x[B, H, W, C]`, by the encoder
        (its parameters in `variables`): e.g. a `cond` to sample with."""
        return self.encoder().apply({"params": variables["params"]["encoder"]}, x)

    @nn.nowrap
    def fast_stepper(self, variables, cond=None) -> Stepper:
        """The decoder's fast stepper (`GatedPixelCNN.fast_stepper`) for the
        code `cond[B, code_dim]`. Sampling needs a given code (e.g. `encode`
        of other images): with none, the code would be of the image being drawn."""
        if cond is None:
            raise ValueError(NEEDS_A_CODE)
        code = _checked_code(cond, len(cond), self.code_dim)
        return self.decoder().fast_stepper({"params": variables["params"]["decoder"]}, code)

    # Factories of the submodules: inside `__call__` they make its submodules;
    # outside (`nn.nowrap`) unbound modules of the same names.

    @nn.nowrap
    def encoder(self) -> ConvEncoder:
        """The image -> code encoder."""
        return ConvEncoder(
            self.code_dim,
            self.num_levels,
            self.encoder_dim,
            self.encoder_layers,
            self.dtype,
            name="encoder",
        )

    @nn.nowrap
    def decoder(self) -> GatedPixelCNN:
        """The Gated PixelCNN of p(x | code)."""
        return GatedPixelCNN(
            self.num_levels,
            self.hidden_dim,
            self.num_layers,
            self.input_kernel_size,
            self.kernel_size,
            self.output_hidden_dim,
            dtype=self.dtype,
            name="decoder",
        )
