"""PixelVAE (Gulrajani et al. 2017, "PixelVAE: A Latent Variable Model for
Natural Images"): a VAE whose decoder p(x | z) is a PixelCNN, so that z
carries the global structure and the decoder the local detail.

Prior N(0, I) over `latent_dim` numbers, a diagonal Gaussian posterior from a
convolutional encoder (the auto-encoder's, `ConvEncoder`, giving mean and log
std), and a Gated PixelCNN decoder conditioned on z as a float embedding (a
bias per gate, the Gated PixelCNN paper's conditioning; the PixelVAE paper
feeds z through upsampled feature maps instead). The paper finds that a
decoder of few PixelCNN layers keeps z in use, where a deep one can model x
by itself and leave z unused: the KL term that `likelihood.bound` returns
shows which happened (a KL near 0 is a collapsed posterior).

Like the VAE it reports bounds (ELBO, IWAE), never an exact NLL; given
`cond = z` it is an ordinary autoregressive model of p(x | z) in raster
order, which the samplers (naive or the decoder's fast one) draw from.
"""

from typing import Any, ClassVar

import flax.linen as nn
import jax.numpy as jnp

from pixel_models.distributions import CategoricalModel
from pixel_models.interface import PixelModel, Stepper
from pixel_models.models.gated_pixelcnn import GatedPixelCNN
from pixel_models.models.pixelcnn_autoencoder import ConvEncoder
from pixel_models.models.vae import GaussianLatent, checked_latent


class PixelVAE(CategoricalModel, GaussianLatent, PixelModel):
    """`x[B, H, W, C]` levels and `cond = z[B, latent_dim]` -> logits
    `[B, H, W, C, K]` (float32) of p(x | z). With no `cond`, z is the
    posterior mean of x (a reconstruction; `init` builds both networks).

    Attributes:
      num_levels: K, values per subpixel.
      latent_dim: numbers in z.
      encoder_dim, encoder_layers: the encoder's, as in `ConvEncoder`.
      hidden_dim, num_layers, input_kernel_size, kernel_size,
      output_hidden_dim: the decoder's, as in `GatedPixelCNN`.
      dtype: compute dtype (parameters stay float32; logits are float32).
    """

    CPU_CHUNK_PIXELS: ClassVar[int] = GatedPixelCNN.CPU_CHUNK_PIXELS  # its decoder's

    num_levels: int
    latent_dim: int = 32
    encoder_dim: int = 32
    encoder_layers: int = 2
    hidden_dim: int = 32
    num_layers: int = 3
    input_kernel_size: int = 7
    kernel_size: int = 3
    output_hidden_dim: int = 64
    dtype: Any = None

    def setup(self):
        self.encoder = ConvEncoder(
            2 * self.latent_dim, self.num_levels, self.encoder_dim, self.encoder_layers, self.dtype
        )
        self.decoder = self.make_decoder()

    def __call__(self, x: jnp.ndarray, cond=None, train: bool = False) -> jnp.ndarray:
        # `init` builds the encoder even when given z, so that the variables
        # are the same however they were initialised.
        if cond is None or self.is_initializing():
            mean = self.posterior(x)[0]
        z = mean if cond is None else checked_latent(cond, len(x), self)
        return self.decoder(x, z, train)

    def posterior(self, x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        """q(z | x): its mean and log std, each `[B, latent_dim]` float32."""
        out = self.encoder(x).astype(jnp.float32)
        mean, log_std = jnp.split(out, 2, axis=-1)
        return mean, log_std

    def log_weights(self, x: jnp.ndarray, num_samples: int) -> dict[str, jnp.ndarray]:
        """The terms of the bounds (`GaussianLatent.gaussian_log_weights`); the
        decoder scores each x under each of its draws of z."""

        def decode(z: jnp.ndarray, targets: jnp.ndarray) -> jnp.ndarray:
            return self.decoder(targets, z)

        return self.gaussian_log_weights(x, self.posterior(x), num_samples, decode)

    @nn.nowrap
    def encode(self, variables, x: jnp.ndarray) -> jnp.ndarray:
        """The posterior mean of z, `[B, latent_dim]`: the code of x."""
        return self.apply(variables, x, method=lambda m, x: m.posterior(x)[0])

    @nn.nowrap
    def make_decoder(self) -> GatedPixelCNN:
        """The Gated PixelCNN of p(x | z) (unbound outside `apply`)."""
        return GatedPixelCNN(
            self.num_levels,
            self.hidden_dim,
            self.num_layers,
            self.input_kernel_size,
            self.kernel_size,
            self.output_hidden_dim,
            dtype=self.dtype,
        )

    @nn.nowrap
    def fast_stepper(self, variables, cond=None) -> Stepper:
        """The decoder's fast stepper (`GatedPixelCNN.fast_stepper`) given z =
        `cond[B, latent_dim]` (e.g. `sample_latent`)."""
        if cond is None:
            raise ValueError("PixelVAE samples given z: pass cond=model.sample_latent(...)")
        z = checked_latent(cond, len(cond), self)
        return self.make_decoder().fast_stepper({"params": variables["params"]["decoder"]}, z)
