"""Sampling and image completion for every model of the zoo.

`sample(model, variables, rng, x, ...)` draws the subpixels of `x` that are
not `known`, in the model's order (`sampler.sample_rows`), with the naive
sampler (a full forward pass per unit) or the model's fast one
(`model.fast_stepper(variables, cond)`: cached activations or carried LSTM
states). For the same `rng` both give the same images.
"""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from pixel_models.sampling.sampler import Stepper, naive_stepper, sample_rows, units_per_row

SAMPLERS = ("fast", "naive")

__all__ = ["SAMPLERS", "Stepper", "make_stepper", "naive_stepper", "sample", "units_per_row"]


def make_stepper(model: nn.Module, variables, sampler: str, cond=None) -> Stepper:
    """The `sampler` ("fast" or "naive") of `model`."""
    if sampler == "naive":
        return naive_stepper(model, variables, cond)
    if sampler != "fast":
        raise ValueError(f"unknown sampler {sampler!r}; known: {', '.join(SAMPLERS)}")
    if not hasattr(model, "fast_stepper"):
        raise ValueError(f"{type(model).__name__} has no fast sampler: use sampler='naive'")
    return model.fast_stepper(variables, cond)


def sample(
    model: nn.Module,
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
      x: the starting images; their `known` subpixels are kept (completion),
        the others are overwritten. Zeros to sample from scratch.
      known: bool `[B, H, W, C]`, or None (nothing known).
      cond: the model's `cond` (labels, embeddings, or the auto-encoder's code).
      temperature: > 0; scales the distribution (see its `sample`).
      sampler: "fast" or "naive": the same images for the same `rng`.
      on_row: called with the number of rows done after each row (progress).

    Batches keep their sharding: pass `x` (and `known`, `cond`) sharded over
    devices and every step runs sharded. Matmuls run at full float32
    precision (not TF32): the two samplers compute the same parameters in
    different orders, and rounding that coarse would let them draw
    different values.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    x = jnp.asarray(x, jnp.int32)
    known = jnp.zeros(x.shape, bool) if known is None else jnp.asarray(known, bool)
    stepper = make_stepper(model, variables, sampler, cond)
    with jax.default_matmul_precision("highest"):  # GPUs default to TF32: see the docstring
        return _every_row(model, stepper, x, known, rng, temperature, on_row)


def _every_row(
    model: nn.Module,
    stepper: Stepper,
    x: jnp.ndarray,
    known: jnp.ndarray,
    rng: jax.Array,
    temperature: float,
    on_row: Callable[[int], None] | None,
) -> jnp.ndarray:
    """`sample_rows` for each row in turn, compiled once."""
    rows = jax.jit(
        lambda state, x, row: sample_rows(model, stepper, state, x, known, rng, row, temperature)
    )
    state = jax.jit(stepper.init)(x)
    for row in range(x.shape[1]):
        state, x = rows(state, x, jnp.int32(row))
        if on_row is not None:
            on_row(row + 1)
    return x
