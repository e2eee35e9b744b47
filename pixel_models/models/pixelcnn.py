"""PixelCNN as in the PixelRNN paper (van den Oord et al. 2016, Table 1).

7x7 mask-A conv to 2h maps; `num_layers` residual blocks
(ReLU -> 1x1 2h->h -> ReLU -> 3x3 mask B h->h -> ReLU -> 1x1 h->2h, added to
the block input); the categorical output stack. Every 1x1 conv is mask B too,
so RGB images keep the R->G->B order inside each pixel.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from pixel_models.distributions import CategoricalModel
from pixel_models.layers.masked_conv import MaskedConv
from pixel_models.layers.pixel_io import CategoricalOutput, scale_pixels


class ResidualBlock(nn.Module):
    """`z[B, H, W, 2h]` -> same shape."""

    hidden_dim: int
    kernel_size: int
    num_colors: int
    dtype: Any = None

    @nn.compact
    def __call__(self, z: jnp.ndarray) -> jnp.ndarray:
        def conv(features: int, k: int) -> MaskedConv:
            return MaskedConv(features, (k, k), "B", self.num_colors, dtype=self.dtype)

        y = conv(self.hidden_dim, 1)(nn.relu(z))
        y = conv(self.hidden_dim, self.kernel_size)(nn.relu(y))
        y = conv(z.shape[-1], 1)(nn.relu(y))
        return z + y


class PixelCNN(CategoricalModel, nn.Module):
    """`x[B, H, W, C]` integers in `[0, num_levels)` -> logits `[B, H, W, C, K]`."""

    num_levels: int
    hidden_dim: int = 16
    num_layers: int = 7
    input_kernel_size: int = 7
    kernel_size: int = 3
    output_hidden_dim: int = 32
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jnp.ndarray, cond=None, train: bool = False) -> jnp.ndarray:
        del train  # no dropout or batch statistics
        if cond is not None:
            raise ValueError("PixelCNN is unconditional: call it with cond=None")
        num_colors = x.shape[-1]
        k = self.input_kernel_size
        z = MaskedConv(2 * self.hidden_dim, (k, k), "A", num_colors, dtype=self.dtype)(
            scale_pixels(x, self.num_levels)
        )
        for _ in range(self.num_layers):
            z = ResidualBlock(self.hidden_dim, self.kernel_size, num_colors, self.dtype)(z)
        return CategoricalOutput(self.output_hidden_dim, self.num_levels, num_colors, self.dtype)(z)
