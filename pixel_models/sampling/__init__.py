"""Sampling and image completion for every model of the zoo.

`sample(model, variables, rng, x, ...)` draws the subpixels of `x` that are
not `known`, in the model's order: raster order (`sampler.sample_rows`), or
the raster-order passes of the model's `stages`. Each pass runs the naive
sampler (a full forward pass per unit) or the model's fast one
(`model.fast_stepper(variables, cond)`: cached activations or carried LSTM
states, beside the model in its family's module). For the same `rng` both
give the same images. A pass runs row by row through two compiled
functions, `start` and `draw_row`, which take the variables as arguments.
The loop knows no model: it asks each through
`pixel_models.interface.PixelModel`.
"""

import dataclasses
import functools
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp

from pixel_models import images
from pixel_models.interface import NEEDS_A_CODE, PixelModel, Stage, Stepper
from pixel_models.sampling.sampler import (
    naive_stepper,
    sample_rows,
    units_per_row,
)

SAMPLERS = ("fast", "naive")
# The stream of a latent model's z (`sample`): no unit's key (`fold_in(rng, unit)`).
LATENT_STREAM = 2**31 - 1

__all__ = [
    "SAMPLERS",
    "Stage",
    "Drawing",
    "draw_row",
    "Stepper",
    "make_stepper",
    "naive_stepper",
    "sample",
    "stages",
    "start",
    "units_per_row",
]


def stages(model: PixelModel, variables, cond=None) -> tuple[Stage, ...]:
    """The passes that sample `model` given `cond` (its `sampling_stages`)."""
    return model.sampling_stages(variables, cond)


def make_stepper(model: PixelModel, variables, sampler: str, cond=None) -> Stepper:
    """The `sampler` ("fast" or "naive") of `model`, in raster order."""
    if model.ENCODES and cond is None:
        raise ValueError(NEEDS_A_CODE)
    if not model.RASTER_ORDER:
        raise ValueError(
            f"{type(model).__name__} samples in stages, not in raster order: use the "
            "steppers of the models of sampling.stages(...)"
        )
    if sampler == "naive":
        return naive_stepper(model, variables, cond)
    if sampler != "fast":
        raise ValueError(f"unknown sampler {sampler!r}; known: {', '.join(SAMPLERS)}")
    return model.fast_stepper(variables, cond)


def prior_latent(model: PixelModel, variables, rng: jax.Array, num: int) -> jnp.ndarray:
    """The z that `sample` draws from a latent model's prior for `num` images
    from `rng` (its own stream, `fold_in(rng, LATENT_STREAM)`)."""
    return model.sample_latent(variables, jax.random.fold_in(rng, LATENT_STREAM), num)


def sample(
    model: PixelModel,
    variables,
    rng: jax.Array,
    x: jnp.ndarray,
    known: jnp.ndarray | None = None,
    cond=None,
    temperature: float = 1.0,
    sampler: str = "fast",
    on_row: Callable[[int], None] | None = None,
) -> jnp.ndarray:
    """Images `x[B, H, W, C]` (int32) with every subpixel not `known` drawn.

    Args:
      x: the starting images, integer levels in `[0, K)`; their `known`
        subpixels are kept (completion), the others are overwritten. Zeros to
        sample from scratch.
      known: bool `[B, H, W, C]`, or None (nothing known). Each drawn
        subpixel is conditioned on the known and drawn subpixels before it in
        the model's order (`model.subpixel_order`). Where the known ones come
        first in that order (the top rows of a raster-order model), that is
        the posterior p(free | known); where they do not (the multi-scale
        PixelRNN, whose subsampled pixels come first), the free subpixels
        before a known one are drawn without seeing it: not the posterior,
        which is then intractable.
      cond: the model's `cond` (labels, embeddings, the auto-encoder's code, or
        a latent model's z; None draws z from its prior with
        `fold_in(rng, LATENT_STREAM)`).
      temperature: > 0; scales the distribution (see its `sample`).
      sampler: "fast" or "naive": the same images for the same `rng`.
      on_row: called with the number of rows done after each row (progress;
        over several stages, pro rata of all their rows, in rows of `x`).

    Batches keep their sharding: pass `x` (and `known`, `cond`) sharded over
    devices and every step runs sharded. A pass compiles once per model,
    shape, sampler and temperature (`draw_row`): a later call, with other
    parameters too, compiles nothing. Matmuls run at full float32
    precision (not TF32): the two samplers compute the same parameters in
    different orders, and rounding that coarse would let them draw
    different values.
    """
    if not 0 < temperature < float("inf"):
        raise ValueError(f"temperature must be > 0 and finite, got {temperature}")
    x = images.check(x, model.distribution.num_levels, "x (the starting images)")
    known = jnp.zeros(x.shape, bool) if known is None else _checked_known(known, x.shape)
    if model.LATENT:
        if bool(known.any()):
            raise ValueError(
                f"{type(model).__name__} is a latent-variable model: it does not complete "
                "images (p(rest | kept) needs its intractable posterior)"
            )
        if cond is None:
            cond = prior_latent(model, variables, rng, len(x))
    passes = stages(model, variables, cond)
    height = x.shape[1]
    total_rows = sum(len(range(height)[stage.rows]) for stage in passes)
    done = 0
    with jax.default_matmul_precision("highest"):  # GPUs default to TF32: see the docstring
        for n, stage in enumerate(passes):
            part = (slice(None), stage.rows, stage.cols)
            drawing = Drawing(stage.model, sampler, temperature)
            # Stage 0 draws with `rng` itself: a one-stage model's keys are
            # `fold_in(rng, unit)`, as `sample_rows` says.
            key = rng if n == 0 else jax.random.fold_in(rng, n)
            progress = _pro_rata(on_row, height, done, total_rows)
            drawn = _every_row(
                drawing, stage.variables, stage.cond(x), x[part], known[part], key, progress
            )
            x, known = x.at[part].set(drawn), known.at[part].set(True)
            done += drawn.shape[1]
    return x


def _checked_known(known, shape: tuple[int, ...]) -> jnp.ndarray:
    """`known` as bool `shape`, or a ValueError."""
    if jnp.shape(known) != shape or jnp.result_type(known) != jnp.bool_:
        raise ValueError(
            f"known must be bool {list(shape)} like x, got {jnp.result_type(known)} "
            f"{list(jnp.shape(known))}"
        )
    return jnp.asarray(known)


def _pro_rata(
    on_row: Callable[[int], None] | None, height: int, done: int, total: int
) -> Callable[[int], None] | None:
    """`on_row` for a stage after `done` of all stages' `total` rows: its own
    rows done -> rows of an image of `height` rows, pro rata."""
    if on_row is None:
        return None
    return lambda rows: on_row(height * (done + rows) // total)


@dataclasses.dataclass(frozen=True)
class Drawing:
    """How a pass draws: `model`, its `sampler` and `temperature`; the static
    argument of `start` and `draw_row`, which take the variables and `cond` as
    arguments, not as constants: they compile once per model, shape and
    sampler, for every call of `sample` and every set of parameters."""

    model: PixelModel
    sampler: str
    temperature: float = 1.0


def start(drawing: Drawing, variables, cond, x: jnp.ndarray, known: jnp.ndarray):
    """The stepper's state before the first row of `x[B, H, W, C]`, and the
    state, `x` and `known` placed as `draw_row` returns them, so that its
    first call and the next ones compile once: unplaced arrays (not
    committed to devices) beside variables on a mesh go where `draw_row`'s
    outputs go, replicated on that mesh."""
    state = _init(drawing, variables, cond, x)
    leaves = jax.tree.leaves(variables)
    mesh = getattr(getattr(leaves[0], "sharding", None), "mesh", None) if leaves else None
    if mesh is None:
        return state, x, known
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    return jax.tree.map(
        lambda a: a if a.committed else jax.device_put(a, replicated), (state, x, known)
    )


@functools.partial(jax.jit, static_argnums=0)
def _init(drawing: Drawing, variables, cond, x: jnp.ndarray):
    return make_stepper(drawing.model, variables, drawing.sampler, cond).init(x)


@functools.partial(jax.jit, static_argnums=0, donate_argnums=3)
def draw_row(drawing: Drawing, variables, cond, state, x, known, rng, row):
    """`sample_rows` of row `row` (traced) -> `(state, x)`. `state` is
    donated: the caches are updated in place."""
    stepper = make_stepper(drawing.model, variables, drawing.sampler, cond)
    return sample_rows(drawing.model, stepper, state, x, known, rng, row, drawing.temperature)


def _every_row(
    drawing: Drawing,
    variables,
    cond,
    x: jnp.ndarray,
    known: jnp.ndarray,
    rng: jax.Array,
    on_row: Callable[[int], None] | None,
) -> jnp.ndarray:
    """`draw_row` for each row in turn. One row is queued ahead of the one
    computing, no more: `on_row` reports finished rows, and Ctrl-C leaves at
    most two rows of queued device work."""
    state, x, known = start(drawing, variables, cond, x, known)
    for row in range(x.shape[1]):
        previous = x
        state, x = draw_row(drawing, variables, cond, state, x, known, rng, jnp.int32(row))
        if row > 0:
            _wait(previous)
            if on_row is not None:
                on_row(row)
    _wait(x)
    if on_row is not None:
        on_row(x.shape[1])
    return x


def _wait(array: jax.Array) -> None:
    """Wait until `array` is computed, as `block_until_ready` does, but in
    short sleeps, so that Ctrl-C (a KeyboardInterrupt, raised between Python
    statements) stops the wait at once."""
    pause = 1e-4
    while not array.is_ready():
        time.sleep(pause)
        pause = min(2 * pause, 0.02)
