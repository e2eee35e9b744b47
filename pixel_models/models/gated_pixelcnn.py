"""Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation
with PixelCNN Decoders"), unconditional or conditioned on a class or an
embedding.

`num_layers` gated layers (`pixel_models.layers.gated`), each updating a
vertical stack (the rows above) and a horizontal stack (the pixels to the
left, R->G->B grouped), the vertical maps feeding the horizontal stack by a
1x1 conv; a residual connection in the horizontal stack from the second
layer on; every layer's 1x1 skip maps summed into the categorical output
stack shared with PixelCNN. Vertical and horizontal stacks together have no
blind spot: an output sees a rectangle of rows above (n0//2 + 1 deep and
n0//2 pixels either side after the first layer, of kernel n0; each later
layer, of kernel n, adds n//2 to both) and, in its own row, the earlier
colours of its pixel and the n0//2 + 1 + (L - 1) n//2 pixels to its left.

Conditioning (the paper's Eq. 4): `cond` adds a per-example bias to the
pre-activations of both gate halves of both stacks, different in every
layer. Integer labels `[B]` index a learned table (`V h` with h one-hot);
float embeddings `[B, D]` go through a Dense layer
(`pixel_models.layers.conditioning`, shared with PixelCNN++). Each is one
lookup or one GEMM for all layers at once, split per layer.

Hyperparameters match the PyTorch peer's flags (bench/gated_pixelcnn_torch.py):
`hidden_dim` = `--hidden`, `num_layers` = `--layers`, `kernel_size` =
`--kernel`, `output_hidden_dim` = `--out-hidden`, `num_levels` = `--levels`,
and `input_kernel_size` = `--kernel` (the peer has no separate flag). The same
numbers build the same layers, with three differences: the last layer has no
residual 1x1 conv (the peer computes it and discards it: p^2 + p parameters
fewer), the first horizontal conv of an RGB model also reads the earlier
colours of the current pixel (the peer does not mask colours), and where the
peer's vertical maps above the image are zero padding, ours hold a constant
(the stack's response to the padding; image-independent either way).
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from pixel_models.distributions import CategoricalModel
from pixel_models.layers.conditioning import condition_bias
from pixel_models.layers.gated import GatedLayer
from pixel_models.layers.pixel_io import categorical_output, scale_pixels
from pixel_models.sampling import Stepper, fast_gated


class GatedPixelCNN(CategoricalModel, nn.Module):
    """`x[B, H, W, C]` integers in `[0, num_levels)` -> logits `[B, H, W, C, K]` (float32).

    `cond`: None (needs `num_classes` = 0); int labels `[B]` (needs
    `num_classes` > 0); or a float embedding `[B, D]`. Labels outside
    `[0, num_classes)` raise a ValueError when their values are known; under
    `jit` they cannot be checked and give NaN logits (hence a NaN loss), never
    another class's.

    Attributes:
      num_levels: K, values per subpixel.
      hidden_dim: p, feature maps of each stack (and of the skips).
      num_layers: gated layers (at least 1).
      input_kernel_size: n of the first layer, which reads the image with
        mask A: it sees the n//2 + 1 rows above (n wide) and as many pixels
        to the left.
      kernel_size: n of later layers: n x n vertical (the n//2 rows above and
        the current row of the vertical stack), 1 x n horizontal (n//2 + 1
        taps, mask B). Kernel sizes are odd.
      output_hidden_dim: maps of the output stack's hidden 1x1 conv.
      num_classes: classes of the labels `cond` may give; 0: no class table.
      dtype: compute dtype (parameters stay float32; logits are float32).
    """

    num_levels: int
    hidden_dim: int = 32
    num_layers: int = 7
    input_kernel_size: int = 3
    kernel_size: int = 3
    output_hidden_dim: int = 64
    num_classes: int = 0
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jnp.ndarray, cond=None, train: bool = False) -> jnp.ndarray:
        del train  # no dropout or batch statistics
        self._check_fields()
        num_colors = x.shape[-1]
        biases = self.cond_biases(cond, x.shape[0])
        v = h = scale_pixels(x, self.num_levels)
        skips = None
        for i, layer in enumerate(self.layers(num_colors)):
            v, h, skip = layer(v, h, None if biases is None else biases[:, i])
            skips = skip if skips is None else skips + skip
        return categorical_output(self, num_colors)(skips)

    @nn.nowrap
    def fast_stepper(self, variables, cond=None) -> Stepper:
        """The fast sampler's stepper: the vertical stacks run a row at a time,
        the horizontal ones a pixel at a time (`pixel_models.sampling.fast_gated`)."""
        return fast_gated.gated_stepper(self, variables, cond)

    # Factories of the submodules: inside `__call__` they make its submodules;
    # outside (`nn.nowrap`) unbound modules of the same names, which the fast
    # sampler binds to their parameters.

    @nn.nowrap
    def layers(self, num_colors: int) -> list[GatedLayer]:
        """The `num_layers` gated layers."""
        return [
            GatedLayer(
                self.hidden_dim,
                self.input_kernel_size if i == 0 else self.kernel_size,
                num_colors,
                first=i == 0,
                last=i == self.num_layers - 1,
                dtype=self.dtype,
                name=f"GatedLayer_{i}",
            )
            for i in range(self.num_layers)
        ]

    def _check_fields(self) -> None:
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {self.num_layers}")
        for name in ("input_kernel_size", "kernel_size"):
            if getattr(self, name) % 2 == 0:
                raise ValueError(f"{name} must be odd, got {getattr(self, name)}")

    @nn.nowrap
    def cond_biases(self, cond, batch: int) -> jnp.ndarray | None:
        """`cond` -> gate biases `[B, num_layers, 4p]` (per layer: vertical 2p,
        horizontal 2p), or None when unconditional. Its table or Dense layer
        belongs to the module whose compact method calls it (the model, in
        `__call__`)."""
        per_layer = 4 * self.hidden_dim
        bias = condition_bias(
            cond, batch, self.num_layers * per_layer, self.num_classes, self.dtype
        )
        return None if bias is None else bias.reshape(batch, self.num_layers, per_layer)
