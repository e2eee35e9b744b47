"""Exact log-likelihood of images under an autoregressive model, and lower
bounds on it under a latent-variable model: the one route from a model to
its NLL, for training, evaluation and the checks.

`model.apply` returns the parameters of the model's output distribution
(`model.distribution`, see `pixel_models.distributions`), which scores each
subpixel. All log-probabilities are in nats and float32, whatever dtype the
model computes in. Images are integer levels (`pixel_models.images`): others
are refused, and under `jax.jit` an image with a value out of range scores NaN.
"""

import functools
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
    if getattr(model, "LATENT", False) and cond is None:
        raise ValueError(
            f"{type(model).__name__} is a latent-variable model: its log p(x) is intractable; "
            "likelihood.bound gives lower bounds on it (log_prob takes cond=z for log p(x | z))"
        )
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


# Images a bound decodes at a time (`bound`): memory, not the result.
_IMAGES_PER_PASS = 1024


def bound_name(num_samples: int) -> str:
    """What `bound` with `num_samples` computes, as results and reports say it."""
    return "bound (ELBO)" if num_samples == 1 else f"bound (IWAE, k={num_samples})"


def bound(
    model: nn.Module, variables, x: jnp.ndarray, rng: jax.Array, num_samples: int = 1
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """A lower bound on `log p(x)` of a latent-variable model (`LATENT`), nats
    per image `[B]`, and the KL term `KL(q(z | x) || p(z))`, `[B]`.

    `num_samples=1`: the ELBO, `E_q log p(x | z) - KL` with the KL in closed
    form (DRAW's from its z) and the expectation from one z ~ q(z | x) drawn
    from `rng`. `num_samples=k > 1`: the importance-weighted bound
    `log (1/k) sum_i p(x, z_i) / q(z_i | x)` (Burda et al. 2016), which rises
    towards log p(x) as k grows, z_i drawn from `fold_in(rng, i)`; the KL is
    the mean over the k draws. The draws are decoded in passes of at most
    `_IMAGES_PER_PASS` images (or one sample of the batch), which sets the
    memory and leaves the value unchanged.
    """
    if not getattr(model, "LATENT", False):
        raise ValueError(f"{type(model).__name__} has an exact likelihood: use log_prob")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples={num_samples!r} must be a whole number >= 1")
    num_levels = model.distribution.num_levels
    x = images.check(x, num_levels)
    batch = len(x)

    def one_sample(key: jax.Array) -> dict[str, jnp.ndarray]:
        """The bound terms of one z per image: `log_px_z`, `log_pz_qz` `[1, B]`, `kl` `[B]`."""
        return model.apply(variables, x, 1, rngs={"latent": key}, method=model.log_weights)

    if num_samples == 1:
        out = one_sample(rng)
        value, kl = out["log_px_z"][0] - out["kl"], out["kl"]
    else:
        per_pass = max(
            d
            for d in range(1, num_samples + 1)
            if not num_samples % d and d * batch <= max(_IMAGES_PER_PASS, batch)
        )
        keys = jax.vmap(functools.partial(jax.random.fold_in, rng))(jnp.arange(num_samples))
        out = jax.lax.map(jax.vmap(one_sample), keys.reshape(-1, per_pass))
        log_w = (out["log_px_z"] + out["log_pz_qz"]).reshape(num_samples, batch)
        value = jax.nn.logsumexp(log_w, axis=0) - math.log(num_samples)
        kl = out["kl"].reshape(num_samples, batch).mean(axis=0)
    return jnp.where(images.in_range(x, num_levels), value, jnp.nan), kl
