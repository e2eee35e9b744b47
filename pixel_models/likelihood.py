"""Exact log-likelihood of images under an autoregressive model.

All log-probabilities are in nats and computed in float32 (log-softmax of
float32 logits), whatever dtype the model computes in.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp


def categorical_log_probs(logits: jnp.ndarray, x: jnp.ndarray) -> jnp.ndarray:
    """`logits[B, H, W, C, K]`, `x[B, H, W, C]` -> `log p(x)` per subpixel `[B, H, W, C]`."""
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return jnp.take_along_axis(log_p, x[..., None].astype(jnp.int32), axis=-1)[..., 0]


def conditional_log_probs(model: nn.Module, variables, x: jnp.ndarray, cond=None) -> jnp.ndarray:
    """`log p(x[b,i,j,c] | all subpixels before it)` in nats, `[B, H, W, C]`."""
    return categorical_log_probs(model.apply(variables, x, cond=cond, train=False), x)


def log_prob(model: nn.Module, variables, x: jnp.ndarray, cond=None) -> jnp.ndarray:
    """`log p(x)` in nats per image, `[B]`."""
    return conditional_log_probs(model, variables, x, cond).sum(axis=(1, 2, 3))


def bits_per_dim(nll_nats, image_shape) -> float | jnp.ndarray:
    """Negative log-likelihood in nats per image -> bits per subpixel."""
    return nll_nats / (math.prod(image_shape) * math.log(2.0))
