"""Invariants every autoregressive model must pass, as reusable helpers.

Order: raster over pixels, R->G->B within a pixel, unless a check is given
the model's own (`order`); subpixel `(i, j, c)` of an `[H, W, C]` image has
index `(i * W + j) * C + c`.
"""

import functools
import itertools
import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pixel_models import likelihood


def model_conditionals(model, variables, x, cond=None) -> jnp.ndarray:
    """The full conditional distribution of every subpixel, `[B, H, W, C, K]`
    log-probs, from the model's own output distribution."""
    return model.distribution.conditionals(model.apply(variables, x, cond=cond), x)


def _perturbed(x: np.ndarray, positions, num_levels: int) -> np.ndarray:
    """`x[H, W, C]` -> `[len(positions), H, W, C]`, each with one subpixel changed."""
    batch = np.repeat(x[None], len(positions), axis=0)
    for b, (i, j, c) in enumerate(positions):
        batch[b, i, j, c] = (batch[b, i, j, c] + 1 + b % (num_levels - 1)) % num_levels
    return batch


def assert_causal(
    model,
    variables,
    image_shape,
    num_levels: int,
    seed: int = 0,
    num_positions: int = 12,
    conditionals=model_conditionals,
    cond=None,
    order=None,
):
    """Changing subpixel p changes no conditional at or before p, and some after it.

    Positions are random subpixels (every channel included) plus the first and
    last one. `order`: int `[H, W, C]`, each subpixel's place in the model's
    order; None: raster order.
    """
    rng = np.random.default_rng(seed)
    height, width, channels = image_shape
    size = height * width * channels
    place = np.arange(size) if order is None else np.asarray(order).reshape(size)
    x = rng.integers(0, num_levels, image_shape)
    flat = [np.argmin(place), np.argmax(place), *rng.choice(size, num_positions)]
    positions = [np.unravel_index(p, image_shape) for p in flat]
    batch = np.concatenate([x[None], _perturbed(x, positions, num_levels)])
    batch_cond = None if cond is None else jnp.repeat(cond[:1], len(batch), axis=0)
    out = np.asarray(conditionals(model, variables, jnp.asarray(batch), batch_cond))
    out = out.reshape(len(batch), size, -1)
    for b, p in enumerate(flat, start=1):
        diff = np.abs(out[b] - out[0]).max(axis=-1)
        before = place <= place[p]
        assert diff[before].max() <= 1e-5, (
            f"subpixel {positions[b - 1]} (index {p}) changed the conditional at index "
            f"{np.flatnonzero(before & (diff > 1e-5))[0]}, which comes at or before it"
        )
        if not before.all():
            assert diff[~before].max() > 1e-6, (
                f"subpixel {positions[b - 1]} changed nothing after it"
            )


def assert_normalised(
    model,
    variables,
    image_shape=(3, 3, 1),
    tol: float = 1e-4,
    cond=None,
    batch_size: int | None = None,
):
    """Over all binary images of `image_shape`, `logsumexp(log_prob) == 0`;
    `batch_size` images at a time (None: all at once)."""
    n = int(np.prod(image_shape))
    images = np.array(list(itertools.product([0, 1], repeat=n)), np.int32).reshape(-1, *image_shape)
    batch_size = batch_size or len(images)
    batch_cond = None if cond is None else jnp.repeat(cond[:1], batch_size, axis=0)
    log_p = np.concatenate(
        [
            likelihood.log_prob(model, variables, jnp.asarray(batch), batch_cond)
            for batch in np.split(images, len(images) // batch_size)
        ]
    )
    total = float(jax.scipy.special.logsumexp(log_p))
    assert abs(total) <= tol, f"probabilities over all {len(images)} images sum to exp({total})"


def dependency_map(
    model,
    variables,
    image_shape,
    num_levels: int,
    target,
    seed: int = 0,
    conditionals=model_conditionals,
) -> np.ndarray:
    """bool `[H, W, C]`: which input subpixels change the conditional at `target` (i, j, c)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, num_levels, image_shape)
    positions = list(np.ndindex(*image_shape))
    batch = np.concatenate([x[None], _perturbed(x, positions, num_levels)])
    out = np.asarray(conditionals(model, variables, jnp.asarray(batch)))[(slice(None), *target)]
    changed = np.abs(out[1:] - out[0]).max(axis=-1) > 1e-6
    return changed.reshape(image_shape)


def random_variables(model: nn.Module, x: jnp.ndarray, cond=None, seed: int = 0):
    """Variables shaped as `model.init`'s, drawn by NumPy (compiling an init
    costs seconds): weights normal with std 1/sqrt(fan in), biases with std 0.1."""
    shapes = jax.eval_shape(functools.partial(model.init, cond=cond), jax.random.key(0), x)
    rng = np.random.default_rng(seed)

    def draw(leaf: jax.ShapeDtypeStruct) -> np.ndarray:
        std = 0.1 if len(leaf.shape) == 1 else 1 / np.sqrt(np.prod(leaf.shape[:-1]))
        return rng.normal(0.0, std, leaf.shape).astype(np.float32)

    return jax.tree.map(draw, shapes)


def random_images(shape, num_levels: int, seed: int = 0) -> jnp.ndarray:
    """int32 images `shape` = `[B, H, W, C]` with values in `[0, num_levels)`."""
    return jnp.asarray(np.random.default_rng(seed).integers(0, num_levels, shape), jnp.int32)


def compiled(model: nn.Module) -> types.SimpleNamespace:
    """`model` as the checks use it (`apply`, `distribution`), `apply` and the
    distribution's functions jitted: one compilation per input shape beats
    running op by op (the mixture's many small ops cost seconds)."""
    distribution = model.distribution
    return types.SimpleNamespace(
        apply=jax.jit(model.apply, static_argnames="train"),
        distribution=types.SimpleNamespace(
            conditionals=jax.jit(distribution.conditionals),
            log_prob=jax.jit(distribution.log_prob),
            num_levels=distribution.num_levels,
        ),
    )
