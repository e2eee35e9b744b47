"""The one sampling loop, shared by the naive and the fast samplers.

Subpixels are drawn in the model's order: raster order over pixels, R->G->B
within a pixel, one *unit* per step. A unit is one subpixel, or a whole pixel
when the output distribution couples the channels
(`distribution.samples_whole_pixels`, PixelCNN++). At each unit a `Stepper`
gives the distribution's parameters at the unit's pixel, and the unit is drawn
with the key `fold_in(rng, unit index)` (its Gumbel noise, drawn a row at a
time). The draw depends only on those parameters and that key, so two
steppers that compute the same parameters draw the same images.

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

import functools
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
    compilation serves every row. Before the row's loop over its units, the
    stepper's `start_row` runs, and the row's Gumbel noise is drawn in one
    batch: the loop's steps run the stepper and an argmax, no random number
    generator.
    """
    _, height, width, channels = x.shape
    per_row = units_per_row(model, (height, width, channels))
    whole = model.distribution.samples_whole_pixels
    state = stepper.start_row(state, x, row)
    gumbels = _row_noise(model, stepper, state, x, rng, row)

    def unit(u, carry):
        state, x = carry
        j, c = (u, 0) if whole else (u // channels, u % channels)
        state, params = stepper.step(state, x, row, j)
        if not whole:  # the unit's channel only: its logits `[B, 1, 1, 1, K]`
            params = jax.lax.dynamic_slice_in_dim(params, c, 1, axis=-2)
        drawn = model.distribution.draw(params, gumbels[u], temperature).astype(x.dtype)
        start = (0, row, j, c)
        old = jax.lax.dynamic_slice(x, start, drawn.shape)
        keep = jax.lax.dynamic_slice(known, start, drawn.shape)
        return state, jax.lax.dynamic_update_slice(x, jnp.where(keep, old, drawn), start)

    return jax.lax.fori_loop(0, per_row, unit, (state, x))


def _row_noise(
    model: PixelModel, stepper: Stepper, state, x: jnp.ndarray, rng: jax.Array, row: jnp.ndarray
) -> jnp.ndarray:
    """The Gumbel noise of every unit of row `row`, `[units, ...]`: unit u's
    is `gumbel(fold_in(rng, row * units + u))` of the shape that the
    distribution's `draw` takes for the unit's parameters, the noise that
    `distribution.sample(unit's parameters, fold_in(rng, index))` would draw."""
    per_row = units_per_row(model, x.shape[1:])
    shape = jax.eval_shape(lambda s, x, i: stepper.step(s, x, i, i)[1], state, x, row).shape
    if not model.distribution.samples_whole_pixels:
        shape = (*shape[:-2], 1, shape[-1])
    noise_shape = model.distribution.gumbel_shape(shape)
    keys = jax.vmap(functools.partial(jax.random.fold_in, rng))(row * per_row + jnp.arange(per_row))
    return jax.vmap(lambda key: jax.random.gumbel(key, noise_shape))(keys)
