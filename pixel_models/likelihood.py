"""Exact log-likelihood of images under an autoregressive model: the one
route from a model to its NLL, for training, evaluation and the checks.

`model.apply` returns the parameters of the model's output distribution
(`model.distribution`, see `pixel_models.distributions`), which scores each
subpixel. All log-probabilities are in nats and float32, whatever dtype the
model computes in.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp


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
    """
    rngs = {"dropout": rng} if rng is not None else None
    params = model.apply(variables, x, cond=cond, train=train, rngs=rngs)
    return model.distribution.log_prob(params, x)


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
