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

Layers of the same shape share one stacked cache (`stacked_zeros`,
`[L, B, H', W', F]`), so that a step reads every layer's window at once:
`before_pixel` gives every layer's output at `(i, j)` from its taps before
the pixel in one batched GEMM, at the step's start (those inputs are all
final then); each layer then adds only its centre tap on its new input
(`centre`), and `write_stacked` writes the step's new inputs of all layers
in one update.
"""

import flax.linen as nn
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


def stacked_zeros(convs: list[MaskedConv], shape: tuple[int, int, int, int], dtype) -> jnp.ndarray:
    """A zero cache of the inputs of `convs` (of one shape), each `[B, H, W, F]`
    = `shape`: `[L, B, H + top + bottom, W + left + right, F]`."""
    return jnp.stack([padded_zeros(conv, shape, dtype) for conv in convs])


def before_pixel(cache: jnp.ndarray, convs: list[MaskedConv], i, j) -> jnp.ndarray:
    """Every conv's output at `(i, j)` but for its centre tap, `[L, B, 1, 1,
    out]`, from the stacked cache of their inputs (`stacked_zeros`), bias
    included: one window read and one batched GEMM for all L. Bound convs."""
    num, batch, _, _, features = cache.shape
    (top, bottom), (left, right) = convs[0].padding(features)
    window = jax.lax.dynamic_slice(
        cache, (0, 0, i, j, 0), (num, batch, top + bottom + 1, left + right + 1, features)
    )
    kernels = jnp.stack([conv.window_kernel().at[top, left].set(0) for conv in convs])
    biases = jnp.stack([conv.get_variable("params", "bias") for conv in convs])
    window, kernels, biases = nn.dtypes.promote_dtype(window, kernels, biases, dtype=convs[0].dtype)
    y = jnp.einsum(
        "lbk,lko->lbo", window.reshape(num, batch, -1), kernels.reshape(num, -1, kernels.shape[-1])
    )
    return (y + biases[:, None]).reshape(num, batch, 1, 1, -1)


def centre_kernel(conv: MaskedConv, in_features: int) -> jnp.ndarray:
    """The centre tap's kernel `[in, out]` of a bound `conv` (its colour mask
    applied), for `centre`. A stepper computes it once, in its `init`, and
    carries it in its state: XLA copies a slice of a weight on every step of
    a loop, not once before it."""
    (top, _), (left, _) = conv.padding(in_features)
    return conv.window_kernel()[top, left]


def centre(conv: MaskedConv, kernel: jnp.ndarray, values: jnp.ndarray) -> jnp.ndarray:
    """The centre tap's term of `conv`'s output at a pixel, from its input
    there, `values[B, 1, 1, F]` -> `[B, 1, 1, out]` (no bias); `kernel` is
    its `centre_kernel`."""
    values, kernel = nn.dtypes.promote_dtype(values, kernel, dtype=conv.dtype)
    return values @ kernel


def write_stacked(
    cache: jnp.ndarray, conv: MaskedConv, values: list[jnp.ndarray], i, j
) -> jnp.ndarray:
    """The stacked cache (`stacked_zeros`) with every layer's input at `(i, j)`,
    `values[l][B, 1, 1, F]`, written in one update."""
    (top, _), (left, _) = conv.padding(cache.shape[-1])
    new = jnp.stack(values).astype(cache.dtype)
    return jax.lax.dynamic_update_slice(cache, new, (0, 0, i + top, j + left, 0))


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


def write_image_row(
    cache: jnp.ndarray, conv: MaskedConv, x: jnp.ndarray, i: jnp.ndarray, num_levels: int
) -> jnp.ndarray:
    """The cache of `conv`'s input, the scaled image, with row `i` of
    `x[B, H, W, C]` written."""
    batch, _, width, colors = x.shape
    pixels = jax.lax.dynamic_slice(x, (0, i, 0, 0), (batch, 1, width, colors))
    return write(cache, conv, scale_pixels(pixels, num_levels), i, 0)
