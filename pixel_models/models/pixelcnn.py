"""PixelCNN as in the PixelRNN paper (van den Oord et al. 2016, Table 1).

7x7 mask-A conv to 2h maps; `num_layers` residual blocks
(ReLU -> 1x1 2h->h -> ReLU -> 3x3 mask B h->h -> ReLU -> 1x1 h->2h, added to
the block input); the categorical output stack. Every 1x1 conv is mask B too,
so RGB images keep the R->G->B order inside each pixel.

Its fast sampler's step (`pixelcnn_stepper`; Ramachandran et al. 2017, "Fast
Generation for Convolutional Autoregressive Models") keeps a cache of the
input of every k x k conv and runs each layer at the new pixel only
(`pixel_models.layers.conv_cache` says why that gives the full pass's outputs).
"""

from collections.abc import Callable
from typing import Any, ClassVar

import flax.linen as nn
import jax.numpy as jnp

from pixel_models.distributions import CategoricalModel
from pixel_models.interface import PixelModel, Stepper, bind
from pixel_models.layers.conditioning import check_unconditional
from pixel_models.layers.conv_cache import (
    before_pixel,
    centre,
    centre_kernel,
    padded_zeros,
    stacked_zeros,
    write_image,
    write_stacked,
)
from pixel_models.layers.masked_conv import MaskedConv
from pixel_models.layers.pixel_io import categorical_output, scale_pixels


class ResidualBlock(nn.Module):
    """`z[B, H, W, 2h]` -> same shape: `z + out(relu(middle(relu(into(relu(z))))))`.

    The steps around the k x k conv `middle` are static methods so that the
    fast step (`pixelcnn_stepper`) can run them at one pixel and evaluate
    `middle` there from a cache of its input.
    """

    hidden_dim: int
    kernel_size: int
    num_colors: int
    dtype: Any = None

    @nn.nowrap
    def convs(self, features: int) -> tuple[MaskedConv, MaskedConv, MaskedConv]:
        """`(into, middle, out)`: 1x1 to h, k x k h -> h, 1x1 to `features`;
        made inside `__call__` they are its submodules, made outside, unbound
        modules of the same names."""
        sizes = ((self.hidden_dim, 1), (self.hidden_dim, self.kernel_size), (features, 1))
        into, middle, out = (
            MaskedConv(f, (k, k), "B", self.num_colors, dtype=self.dtype, name=f"MaskedConv_{n}")
            for n, (f, k) in enumerate(sizes)
        )
        return into, middle, out

    @staticmethod
    def middle_input(into: Callable, z: jnp.ndarray) -> jnp.ndarray:
        """The input of the k x k conv: `relu(into(relu(z)))`."""
        return nn.relu(into(nn.relu(z)))

    @staticmethod
    def residual(out: Callable, z: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
        """The block's output from its input `z` and the k x k conv's output `y`."""
        return z + out(nn.relu(y))

    @nn.compact
    def __call__(self, z: jnp.ndarray) -> jnp.ndarray:
        into, middle, out = self.convs(z.shape[-1])
        return self.residual(out, z, middle(self.middle_input(into, z)))


class PixelCNN(CategoricalModel, PixelModel):
    """`x[B, H, W, C]` integers in `[0, num_levels)` -> logits `[B, H, W, C, K]`."""

    # 2 MNIST, CIFAR-10 or 32x32 ImageNet images (one 64x64 image) per CPU
    # chunk: their activations stay in a core's 1 MB L2 cache from one op to
    # the next (docs/benchmarks.md).
    CPU_CHUNK_PIXELS: ClassVar[int] = 2_048

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
        check_unconditional(self, cond)
        num_colors = x.shape[-1]
        z = self.input_conv(num_colors)(scale_pixels(x, self.num_levels))
        for block in self.blocks(num_colors):
            z = block(z)
        return categorical_output(self, num_colors)(z)

    # Factories of the submodules: inside `__call__` they make its submodules;
    # outside (`nn.nowrap`) unbound modules of the same names, which the fast
    # sampler binds to their parameters.

    @nn.nowrap
    def input_conv(self, num_colors: int) -> MaskedConv:
        """The k x k mask-A conv from the scaled image to 2h maps."""
        k = self.input_kernel_size
        return MaskedConv(
            2 * self.hidden_dim, (k, k), "A", num_colors, dtype=self.dtype, name="MaskedConv_0"
        )

    @nn.nowrap
    def blocks(self, num_colors: int) -> list[ResidualBlock]:
        """The `num_layers` residual blocks."""
        return [
            ResidualBlock(
                self.hidden_dim, self.kernel_size, num_colors, self.dtype, name=f"ResidualBlock_{b}"
            )
            for b in range(self.num_layers)
        ]

    @nn.nowrap
    def fast_stepper(self, variables, cond=None) -> Stepper:
        """The fast sampler's stepper: cached layer inputs, one pixel of work
        per layer and step (`pixelcnn_stepper`)."""
        check_unconditional(self, cond)
        return pixelcnn_stepper(self, variables)


def pixelcnn_stepper(model: PixelCNN, variables) -> Stepper:
    """The fast `Stepper` of a `PixelCNN`.

    State: the scaled image padded for the input conv, `[B, H + 3, W + 6, C]`
    for a 7x7 one, and the inputs of the residual blocks' k x k convs,
    stacked (`conv_cache.stacked_zeros`), `[L, B, H + k//2, W + 2 (k//2), h]`,
    and their centre taps' kernels (`centre_kernel`, computed once). A step
    runs each layer at pixel `(i, j)` only and returns the logits there,
    `[B, 1, 1, C, K]`: every k x k conv's taps before the pixel at once
    (`before_pixel`), then block by block the centre taps.
    """
    params = variables["params"]
    dtype = model.dtype or jnp.float32
    hidden_dim, features = model.hidden_dim, 2 * model.hidden_dim

    def middles(colors: int) -> list[MaskedConv]:
        return [block.convs(features)[1] for block in model.blocks(colors)]

    def init(x: jnp.ndarray) -> dict:
        batch, height, width, colors = x.shape
        hidden = (batch, height, width, hidden_dim)
        return {
            "image": padded_zeros(model.input_conv(colors), x.shape, jnp.float32),
            "blocks": stacked_zeros(middles(colors), hidden, dtype),
            "centres": [
                centre_kernel(bind(middle, params[block.name]), hidden_dim)
                for block, middle in zip(model.blocks(colors), middles(colors), strict=True)
            ],
        }

    def step(state: dict, x: jnp.ndarray, i: jnp.ndarray, j: jnp.ndarray):
        colors = x.shape[-1]
        conv = bind(model.input_conv(colors), params)
        image = write_image(state["image"], conv, x, i, j, model.num_levels)
        z = conv.at(image, i, j)
        blocks = model.blocks(colors)
        bound = [
            tuple(bind(c, params[block.name]) for c in block.convs(features)) for block in blocks
        ]
        # Every k x k conv at (i, j) from the pixels before it, at once.
        before = before_pixel(state["blocks"], [middle for _, middle, _ in bound], i, j)
        inputs = []
        for n, (block, (into, middle, out)) in enumerate(zip(blocks, bound, strict=True)):
            inputs.append(block.middle_input(into, z))
            z = block.residual(out, z, before[n] + centre(middle, state["centres"][n], inputs[-1]))
        logits = bind(categorical_output(model, colors), params)(z)
        caches = write_stacked(state["blocks"], bound[0][1], inputs, i, j)
        return state | {"image": image, "blocks": caches}, logits

    return Stepper(init=init, step=step)
