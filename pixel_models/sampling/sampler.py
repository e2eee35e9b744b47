"""The one sampling loop, shared by the naive and the fast samplers.

Subpixels are drawn in the model's order: raster order over pixels, R->G->B
within a pixel, one *unit* per step. A unit is one subpixel, or a whole pixel
when the output distribution couples the channels
(`distribution.samples_whole_pixels`, PixelCNN++). At each unit a `Stepper`
gives the distribution's parameters at the unit's pixel, and the unit is drawn
with the key `fold_in(rng, unit index)`. The draw depends only on those
parameters and that key, so two steppers that compute the same parameters
draw the same images.

A `Stepper` (`pixel_models.interface`) is a pair of pure functions, `init`
and `step`, that give the distribution's parameters at a pixel.
`naive_stepper` runs the whole network at every step; a model's own
`fast_stepper` computes only what a new unit changes.

A model whose order is not raster order over the whole image declares
`sampling_stages(variables, cond) -> tuple[Stage, ...]`: raster-order passes,
each over a part of the image with a model of its own, every pass holding
what the earlier ones drew as known (the multi-scale PixelRNN: its
subsampled image first, then the rest given it).
"""

from typing import Any

import jax
import jax.numpy as jnp

from pixel_models.interface import PixelModel, Stepper


def naive_stepper(model: PixelModel, variables, cond=None) -> Stepper:
    """The reference: a full forward pass of `model` at every unit."""

    def step(state, x, i, j):
        params = model.apply(variables, x, cond=cond)
        size = (params.shape[0], 1, 1, *params.shape[3:])
        start = (0, i, j) + (0,) * (params.ndim - 3)
        return state, jax.lax.dynamic_slice(params, start, size)

    return Stepper(init=lambda x: None, step=step)


def units_per_row(model: PixelModel, image_shape: tuple[int, int, int]) -> int:
    """Units in one row of an `[H, W, C]` image: W, or W * C when each
    subpixel is drawn on its own."""
    _, width, channels = image_shape
    return width if model.distribution.samples_whole_pixels else width * channels


def sample_rows(
    model: PixelModel,
    stepper: Stepper,
    state,
    x: jnp.ndarray,
    known: jnp.ndarray,
    rng: jax.Array,
    row: jnp.ndarray,
    temperature: float = 1.0,
) -> tuple[Any, jnp.ndarray]:
    """Draw every unit of row `row` of `x[B, H, W, C]`; returns `(state, x)`.

    Subpixels where `known[B, H, W, C]` is true keep their value in `x`
    (image completion); the others are drawn. Jit it with `row` traced: one
    compilation serves every row.
    """
    _, height, width, channels = x.shape
    per_row = units_per_row(model, (height, width, channels))
    whole = model.distribution.samples_whole_pixels

    def unit(u, carry):
        state, x = carry
        index = row * per_row + u
        j = u if whole else u // channels
        state, params = stepper.step(state, x, row, j)
        drawn = model.distribution.sample(params, jax.random.fold_in(rng, index), temperature)
        pixel = jax.lax.dynamic_slice(x, (0, row, j, 0), (x.shape[0], 1, 1, channels))
        keep = jax.lax.dynamic_slice(known, (0, row, j, 0), pixel.shape)
        if not whole:
            keep = keep | (jnp.arange(channels) != u % channels)
        pixel = jnp.where(keep, pixel, drawn.astype(x.dtype))
        return state, jax.lax.dynamic_update_slice(x, pixel, (0, row, j, 0))

    return jax.lax.fori_loop(0, per_row, unit, (state, x))
