"""Pixel values in (`scale_pixels`), per-subpixel categorical logits out
(`CategoricalOutput`): shared by every model with a K-way softmax output
(PixelCNN, PixelRNN)."""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from pixel_models.layers.masked_conv import MaskedConv


def scale_pixels(x: jnp.ndarray, num_levels: int) -> jnp.ndarray:
    """Integer levels `[0, num_levels)` -> floats in `[-1, 1]`, same shape."""
    return x.astype(jnp.float32) * (2.0 / (num_levels - 1)) - 1.0


class CategoricalOutput(nn.Module):
    """The PixelRNN paper's output stack: ReLU -> 1x1 mask-B conv to
    `hidden_dim` -> ReLU -> 1x1 mask-B conv to C*K logits.

    `z[B, H, W, F]` -> logits `[B, H, W, C, K]` (float32). Logit feature
    `c * K + k` belongs to colour group c, so the mask-B grouping keeps
    colour c's logits causal.
    """

    hidden_dim: int
    num_levels: int
    num_colors: int
    dtype: Any = None

    @nn.compact
    def __call__(self, z: jnp.ndarray) -> jnp.ndarray:
        z = MaskedConv(self.hidden_dim, (1, 1), "B", self.num_colors, dtype=self.dtype)(nn.relu(z))
        logits = MaskedConv(
            self.num_colors * self.num_levels, (1, 1), "B", self.num_colors, dtype=self.dtype
        )(nn.relu(z))
        return logits.reshape(*logits.shape[:-1], self.num_colors, self.num_levels).astype(
            jnp.float32
        )


def categorical_output(model: nn.Module, num_colors: int) -> CategoricalOutput:
    """The output stack of `model` (its `output_hidden_dim`, `num_levels` and
    `dtype`), named `CategoricalOutput_0`: inside the model's `__call__` its
    submodule, outside it an unbound module that the fast samplers bind to
    those parameters."""
    return CategoricalOutput(
        model.output_hidden_dim,
        model.num_levels,
        num_colors,
        model.dtype,
        name="CategoricalOutput_0",
    )
