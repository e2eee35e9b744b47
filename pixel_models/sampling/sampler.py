"""The one sampling loop, shared by the naive and the fast samplers.

Subpixels are drawn in the model's order: raster order over pixels, R->G->B
within a pixel, one *unit* per step. A unit is one subpixel, or a whole pixel
when the output distribution couples the channels
(`distribution.samples_whole_pixels`, PixelCNN++). At each unit a `Stepper`
gives the distribution's parameters at the unit's pixel, and the unit is drawn
with the key `fold_in(rng, unit index)`. The draw depends only on those
parameters and that key, so two steppers that compute the same parameters
draw the same images.

A `Stepper` is a pair of pure functions:

* `init(x) -> state`: its state (e.g. cached activations) for images
  `x[B, H, W, C]`;
* `step(state, x, i, j) -> (state, params)`: the parameters at pixel
  `(i, j)`, `[B, 1, 1, ...]` (the model's output layout), given `x`, whose
  subpixels before the unit are final. It may be called again at the same
  pixel (for the next colour) with that pixel's earlier colours filled in.

`naive_stepper` runs the whole network at every step; the fast ones
(`pixel_models.sampling.fast`) compute only what a new unit changes.

A model whose order is not raster order over the whole image declares
`sampling_stages(variables, cond) -> tuple[Stage, ...]`: raster-order passes,
each over a part of the image with a model of its own, every pass holding
what the earlier ones drew as known (the multi-scale PixelRNN: its
subsampled image first, then the rest given it).
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Stepper:
    """`init(x) -> state`, `step(state, x, i, j) -> (state, params[B, 1, 1, ...])`."""

    init: Callable[[jnp.ndarray], Any]
    step: Callable[[Any, jnp.ndarray, jnp.ndarray, jnp.ndarray], tuple[Any, jnp.ndarray]]


@dataclasses.dataclass(frozen=True)
class Stage:
    """One raster-order pass of the sampling loop over `x[:, rows, cols]`.

    model, variables: what draws it (the sampler calls `model.apply` or
      `model.fast_stepper` on that part of the images);
    rows, cols: slices of the image's rows and columns (e.g. `::2`);
    cond: `x[B, H, W, C] -> the model's cond`, read from the images as the
      earlier stages left them.
    """

    model: nn.Module
    variables: Any
    rows: slice = dataclasses.field(default_factory=lambda: slice(None))
    cols: slice = dataclasses.field(default_factory=lambda: slice(None))
    cond: Callable[[jnp.ndarray], Any] = lambda x: None


def naive_stepper(model: nn.Module, variables, cond=None) -> Stepper:
    """The reference: a full forward pass of `model` at every unit."""

    def step(state, x, i, j):
        params = model.apply(variables, x, cond=cond)
        size = (params.shape[0], 1, 1, *params.shape[3:])
        start = (0, i, j) + (0,) * (params.ndim - 3)
        return state, jax.lax.dynamic_slice(params, start, size)

    return Stepper(init=lambda x: None, step=step)


def units_per_row(model: nn.Module, image_shape: tuple[int, int, int]) -> int:
    """Units in one row of an `[H, W, C]` image: W, or W * C when each
    subpixel is drawn on its own."""
    _, width, channels = image_shape
    return width if model.distribution.samples_whole_pixels else width * channels


def sample_rows(
    model: nn.Module,
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
