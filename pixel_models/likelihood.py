"""Exact log-likelihood of images under an autoregressive model: the one
route from a model to its NLL, for training, evaluation and the checks.

`model.apply` returns the parameters of the model's output distribution
(`model.distribution`, see `pixel_models.distributions`), which scores each
subpixel. All log-probabilities are in nats and float32, whatever dtype the
model computes in. Images are integer levels (`pixel_models.images`): others
are refused, and under `jax.jit` an image with a value out of range scores NaN.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from pixel_models import images


def conditional_log_probs(
    model: nn.Module,
    variables,
    x: jnp.ndarray,
    cond=None,
    train: bool = False,
    rng: jax.Array | None = None,
) -> jnp.ndarray:
    """`log p(x[b,i,j,c] | all subpixels before it)` in nats, `[B, H, W, C]`.

    `train=True` runs the model in training mode (dropout, with `rng`).
    Raises ValueError for `x` that is not integer levels `[B, H, W, C]` in
    `[0, K)` (`images.check`); under `jax.jit` such an image's values are NaN.
    """
    num_levels = model.distribution.num_levels
    x = images.check(x, num_levels)
    rngs = {"dropout": rng} if rng is not None else None
    params = model.apply(variables, x, cond=cond, train=train, rngs=rngs)
    log_probs = model.distribution.log_prob(params, x)
    return jnp.where(images.in_range(x, num_levels)[:, None, None, None], log_probs, jnp.nan)


def log_prob(
    model: nn.Module,
    variables,
    x: jnp.ndarray,
    cond=None,
    train: bool = False,
    rng: jax.Array | None = None,
) -> jnp.ndarray:
    """`log p(x)` in nats per image, `[B]`."""
    return conditional_log_probs(model, variables, x, cond, train, rng).sum(axis=(1, 2, 3))


def bits_per_dim(nll_nats, image_shape) -> float | jnp.ndarray:
    """Negative log-likelihood in nats per image -> bits per subpixel."""
    return nll_nats / (math.prod(image_shape) * math.log(2.0))
