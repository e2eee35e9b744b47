"""Fast sampling for the masked-convolution models (Ramachandran et al. 2017,
"Fast Generation for Convolutional Autoregressive Models"): PixelCNN here, the
Gated PixelCNN and the PixelCNN auto-encoder in `fast_gated`, on the cache
helpers below.

Each spatial layer of these models is a `MaskedConv` whose output at pixel
`(i, j)` reads its input only at positions up to `(i, j)` in raster order;
everything between those convs is pointwise. So the stepper keeps a cache of
each spatial conv's input, zero-padded as the conv pads it, and at pixel
`(i, j)` runs every layer at that pixel only: the pointwise steps on
`[B, 1, 1, F]` arrays, each conv by writing its new input pixel into its
cache and evaluating it there (`MaskedConv.at`).

Colours: at a pixel the sampler calls the step once per colour, with the
earlier colours filled in. The first layer is mask A and every later one mask
B, so a feature of colour group c depends only on the image's colours before
c: the activations written at the pixel's last call (colour C-1) are final.
The image is the exception, since its last colour is drawn after that call;
each step therefore (re)writes the previous pixel into the image caches too.
"""

from typing import TYPE_CHECKING, TypeVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from pixel_models.layers.masked_conv import MaskedConv
from pixel_models.layers.pixel_io import categorical_output, scale_pixels
from pixel_models.sampling.sampler import Stepper

if TYPE_CHECKING:
    from pixel_models.models.pixelcnn import PixelCNN

M = TypeVar("M", bound=nn.Module)


def bind(module: M, params) -> M:
    """`module`, an unbound child made by its parent's factory method, bound
    to its parameters in the parent's `params` (by its name)."""
    return module.bind({"params": params[module.name]})


def padded_zeros(conv: MaskedConv, shape: tuple[int, int, int, int], dtype) -> jnp.ndarray:
    """A zero cache of the input of `conv`, for inputs `[B, H, W, F]` =
    `shape`: `[B, H + top + bottom, W + left + right, F]` (`conv.padding`)."""
    batch, height, width, features = shape
    (top, bottom), (left, right) = conv.padding(features)
    return jnp.zeros((batch, height + top + bottom, width + left + right, features), dtype)


def write(
    cache: jnp.ndarray, conv: MaskedConv, values: jnp.ndarray, i: jnp.ndarray, j: jnp.ndarray
) -> jnp.ndarray:
    """`cache` (see `padded_zeros`) with the input `values[B, h, w, F]` written
    from input position `(i, j)` on."""
    (top, _), (left, _) = conv.padding(cache.shape[-1])
    return jax.lax.dynamic_update_slice(
        cache, values.astype(cache.dtype), (0, i + top, j + left, 0)
    )


def write_image(
    cache: jnp.ndarray,
    conv: MaskedConv,
    x: jnp.ndarray,
    i: jnp.ndarray,
    j: jnp.ndarray,
    num_levels: int,
) -> jnp.ndarray:
    """The cache of `conv`'s input, the scaled image, with pixel `(i, j)` of
    `x[B, H, W, C]` written, and the pixel before it in raster order (whose
    last colour was drawn after the previous step)."""
    batch, _, width, colors = x.shape
    previous = jnp.maximum(i * width + j - 1, 0)
    for r, c in ((previous // width, previous % width), (i, j)):
        pixel = jax.lax.dynamic_slice(x, (0, r, c, 0), (batch, 1, 1, colors))
        cache = write(cache, conv, scale_pixels(pixel, num_levels), r, c)
    return cache


def pixelcnn_stepper(model: "PixelCNN", variables) -> Stepper:
    """The fast `Stepper` of a `PixelCNN`.

    State: the scaled image padded for the input conv, `[B, H + 3, W + 6, C]`
    for a 7x7 one, and per residual block the input of its k x k conv,
    `[B, H + k//2, W + 2 (k//2), h]`. A step runs each layer at pixel
    `(i, j)` only and returns the logits there, `[B, 1, 1, C, K]`.
    """
    params = variables["params"]
    dtype = model.dtype or jnp.float32
    hidden_dim, features = model.hidden_dim, 2 * model.hidden_dim

    def init(x: jnp.ndarray) -> dict:
        batch, height, width, colors = x.shape
        middles = [block.convs(features)[1] for block in model.blocks(colors)]
        hidden = (batch, height, width, hidden_dim)
        return {
            "image": padded_zeros(model.input_conv(colors), x.shape, jnp.float32),
            "blocks": [padded_zeros(middle, hidden, dtype) for middle in middles],
        }

    def step(state: dict, x: jnp.ndarray, i: jnp.ndarray, j: jnp.ndarray):
        colors = x.shape[-1]
        conv = bind(model.input_conv(colors), params)
        image = write_image(state["image"], conv, x, i, j, model.num_levels)
        z = conv.at(image, i, j)
        caches = []
        for block, cache in zip(model.blocks(colors), state["blocks"], strict=True):
            into, middle, out = (bind(c, params[block.name]) for c in block.convs(features))
            cache = write(cache, middle, block.middle_input(into, z), i, j)
            z = block.residual(out, z, middle.at(cache, i, j))
            caches.append(cache)
        logits = bind(categorical_output(model, colors), params)(z)
        return {"image": image, "blocks": caches}, logits

    return Stepper(init=init, step=step)
