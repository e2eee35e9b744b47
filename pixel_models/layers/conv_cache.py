"""Caches of the inputs of masked convolutions, for incremental steps (the
fast samplers of the masked-convolution models: PixelCNN, the Gated PixelCNN
and the PixelCNN auto-encoder).

Each spatial layer of these models is a `MaskedConv` whose output at pixel
`(i, j)` reads its input only at positions up to `(i, j)` in raster order;
everything between those convs is pointwise. So a stepper keeps a cache of
each spatial conv's input, zero-padded as the conv pads it, and at pixel
`(i, j)` runs every layer at that pixel only: the pointwise steps on
`[B, 1, 1, F]` arrays, each conv by writing its new input pixel into its
cache (`write`) and evaluating it there (`MaskedConv.at`).

Colours: at a pixel the sampler calls the step once per colour, with the
earlier colours filled in. The first layer is mask A and every later one mask
B, so a feature of colour group c depends only on the image's colours before
c: the activations written at the pixel's last call (colour C-1) are final.
The image is the exception, since its last colour is drawn after that call;
`write_image` therefore (re)writes the previous pixel into the image caches too.
"""

import jax
import jax.numpy as jnp

from pixel_models.layers.masked_conv import MaskedConv
from pixel_models.layers.pixel_io import scale_pixels


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
