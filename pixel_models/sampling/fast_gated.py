"""Fast sampling for the Gated PixelCNN (and so the PixelCNN auto-encoder's
decoder), on the caches of `fast_pixelcnn` (whose docstring says why cached
masked convs give the full pass's outputs).

A gated layer's vertical stack at row i reads only rows above i (of the image)
but the whole width of its input's row i, so it is computed a row at a time,
when a row starts (`j == 0`), for every layer; its pre-activations of the row
are kept. The horizontal stack reads the pixels up to `(i, j)` of the current
row and runs a pixel at a time.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from pixel_models.layers.gated import GatedLayer, gate
from pixel_models.layers.pixel_io import categorical_output, scale_pixels
from pixel_models.sampling.fast_pixelcnn import bind, padded_zeros, write, write_image
from pixel_models.sampling.sampler import Stepper

if TYPE_CHECKING:
    from pixel_models.models.gated_pixelcnn import GatedPixelCNN


class _InScope(nn.Module):
    """A module whose compact body is `body(*args)`: the submodules `body`
    makes (through a model's `nn.nowrap` methods) are this module's, so
    `_InScope(body).apply(variables, ...)` runs them on the model's
    parameters of the same names."""

    body: Callable[..., Any]

    @nn.compact
    def __call__(self, *args):
        return self.body(*args)


def gated_stepper(model: "GatedPixelCNN", variables, cond=None) -> Stepper:
    """The fast `Stepper` of a `GatedPixelCNN` given its `cond` (None, labels
    `[B]` or an embedding `[B, D]`, as for `model.apply`).

    State (p maps per stack, n the layer's kernel size, L layers):
      image: the scaled image padded for the first layer's vertical and
        horizontal convs (`{"vertical", "horizontal"}`);
      vertical, horizontal: per later layer, the input of its vertical conv
        (`[B, H + n//2, W + 2 (n//2), p]`) and of its horizontal one
        (`[B, H, W + n//2, p]`);
      v_pre: per layer, the current row's vertical pre-activations `[B, 1, W, 2p]`;
      biases: the conditioning biases `[B, L, 4p]`, or None.
    A step returns the logits at `(i, j)`, `[B, 1, 1, C, K]`.
    """
    params = variables["params"]
    dtype = model.dtype or jnp.float32

    def layers(colors: int) -> list[GatedLayer]:
        return [bind(layer, params) for layer in model.layers(colors)]

    def bias(biases: jnp.ndarray | None, layer: int) -> jnp.ndarray | None:
        return None if biases is None else biases[:, layer]

    def init(x: jnp.ndarray) -> dict:
        batch, height, width, _ = x.shape
        first, *later = layers(x.shape[-1])
        hidden = (batch, height, width, model.hidden_dim)
        return {
            "image": {
                name: padded_zeros(getattr(first, name), x.shape, jnp.float32)
                for name in ("vertical", "horizontal")
            },
            "vertical": [padded_zeros(layer.vertical, hidden, dtype) for layer in later],
            "horizontal": [padded_zeros(layer.horizontal, hidden, dtype) for layer in later],
            "v_pre": [
                jnp.zeros((batch, 1, width, 2 * model.hidden_dim), dtype)
                for _ in range(len(later) + 1)
            ],
            "biases": _InScope(model.cond_biases).apply(variables, cond, batch),
        }

    def row(state: dict, image: jnp.ndarray, i: jnp.ndarray, width: int, colors: int):
        """The vertical stacks of row `i`: `(vertical caches, v_pre)`."""
        bound = layers(colors)  # bound inside `lax.cond`: a bound module may not cross into it
        inputs = [image, *state["vertical"]]
        v_pres = []
        for n, layer in enumerate(bound):
            v_conv = layer.vertical.at(inputs[n], i, 0, width)
            v_pre = layer.vertical_stack(v_conv, bias(state["biases"], n)).astype(dtype)
            v_pres.append(v_pre)
            if n + 1 < len(bound):
                inputs[n + 1] = write(inputs[n + 1], bound[n + 1].vertical, gate(v_pre), i, 0)
        return inputs[1:], v_pres

    def step(state: dict, x: jnp.ndarray, i: jnp.ndarray, j: jnp.ndarray):
        batch, _, width, colors = x.shape
        bound = layers(colors)
        image = {
            name: write_image(cache, getattr(bound[0], name), x, i, j, model.num_levels)
            for name, cache in state["image"].items()
        }
        vertical, v_pre = jax.lax.cond(
            j == 0,
            lambda: row(state, image["vertical"], i, width, colors),
            lambda: (state["vertical"], state["v_pre"]),
        )
        pixel = jax.lax.dynamic_slice(x, (0, i, j, 0), (batch, 1, 1, colors))
        h = scale_pixels(pixel, model.num_levels)
        horizontal, skips = [], None
        for n, layer in enumerate(bound):
            if n == 0:
                cache = image["horizontal"]
            else:
                cache = write(state["horizontal"][n - 1], layer.horizontal, h, i, j)
                horizontal.append(cache)
            h, skip = layer.horizontal_stack(
                layer.horizontal.at(cache, i, j),
                jax.lax.dynamic_slice_in_dim(v_pre[n], j, 1, axis=2),
                h,
                bias(state["biases"], n),
            )
            skips = skip if skips is None else skips + skip
        logits = bind(categorical_output(model, colors), params)(skips)
        new_state = state | {
            "image": image,
            "vertical": vertical,
            "horizontal": horizontal,
            "v_pre": v_pre,
        }
        return new_state, logits

    return Stepper(init=init, step=step)
