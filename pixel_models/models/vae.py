"""The variational auto-encoder (Kingma & Welling 2014, "Auto-Encoding
Variational Bayes"): a latent-variable model, the baseline that exact
likelihoods are compared with.

p(x) = ∫ p(x | z) p(z) dz with a standard normal prior p(z) over
`latent_dim` numbers and a factorised decoder p(x | z): a K-way softmax per
subpixel (a Bernoulli for binary images), all subpixels independent given z.
The posterior q(z | x) is a diagonal Gaussian. Encoder and decoder are MLPs
of `num_hidden` tanh layers of `hidden_dim` units, the one-stochastic-layer
architecture of the IWAE paper (Burda et al. 2016, Sec. 5: 2 x 200 units,
50 latent numbers), whose VAE is the published figure it is compared with.

Its log-likelihood is intractable: it is trained by the ELBO and reports
bounds (`pixel_models.likelihood.bound`), never an exact NLL. Given
`cond = z` it is an ordinary model of p(x | z), which the samplers draw from;
`sample_latent` draws z from the prior.
"""

import math
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pixel_models.distributions import CategoricalModel
from pixel_models.interface import PixelModel, Stepper
from pixel_models.layers.pixel_io import scale_pixels

_LOG_2PI = math.log(2 * math.pi)


def normal_log_density(z: jnp.ndarray, mean=0.0, log_std=0.0) -> jnp.ndarray:
    """`log N(z; mean, exp(log_std)^2)` summed over the last axis."""
    eps = (z - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * (eps**2 + _LOG_2PI) - log_std, axis=-1)


class MLPEncoder(nn.Module):
    """`x[B, H, W, C]` levels -> the posterior's mean and log std, each `[B, latent_dim]`."""

    latent_dim: int
    num_levels: int
    hidden_dim: int
    num_hidden: int
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        h = scale_pixels(x, self.num_levels).reshape(len(x), -1)
        for _ in range(self.num_hidden):
            h = jnp.tanh(nn.Dense(self.hidden_dim, dtype=self.dtype)(h))
        out = nn.Dense(2 * self.latent_dim, dtype=self.dtype)(h).astype(jnp.float32)
        mean, log_std = jnp.split(out, 2, axis=-1)
        return mean, log_std


class MLPDecoder(nn.Module):
    """`z[N, latent_dim]` -> logits `[N, H, W, C, K]` (float32) of p(x | z)."""

    num_levels: int
    hidden_dim: int
    num_hidden: int
    dtype: Any = None

    @nn.compact
    def __call__(self, z: jnp.ndarray, image_shape: tuple[int, int, int]) -> jnp.ndarray:
        h = z
        for _ in range(self.num_hidden):
            h = jnp.tanh(nn.Dense(self.hidden_dim, dtype=self.dtype)(h))
        logits = nn.Dense(math.prod(image_shape) * self.num_levels, dtype=self.dtype)(h)
        return logits.astype(jnp.float32).reshape(len(z), *image_shape, self.num_levels)


class VAE(CategoricalModel, PixelModel):
    """`x[B, H, W, C]` levels and `cond = z[B, latent_dim]` -> logits
    `[B, H, W, C, K]` of p(x | z). With no `cond`, z is the posterior mean of
    x: a reconstruction, which is how `init` builds both networks (and no
    likelihood: `likelihood.log_prob` refuses a latent model without z)."""

    num_levels: int
    latent_dim: int = 50
    hidden_dim: int = 200
    num_hidden: int = 2
    dtype: Any = None

    LATENT: ClassVar[bool] = True

    def setup(self):
        self.encoder = MLPEncoder(
            self.latent_dim, self.num_levels, self.hidden_dim, self.num_hidden, self.dtype
        )
        self.decoder = MLPDecoder(self.num_levels, self.hidden_dim, self.num_hidden, self.dtype)

    def __call__(self, x: jnp.ndarray, cond=None, train: bool = False) -> jnp.ndarray:
        del train  # no dropout
        z = self.encoder(x)[0] if cond is None else _checked_latent(cond, len(x), self)
        return self.decoder(z, x.shape[1:])

    def log_weights(self, x: jnp.ndarray, num_samples: int) -> dict[str, jnp.ndarray]:
        """For `num_samples` draws z_i ~ q(z | x) (rng "latent"): `log_px_z`,
        log p(x | z_i), and `log_pz_qz`, log p(z_i) - log q(z_i | x), each
        `[num_samples, B]`; and `kl[B]`, KL(q(z | x) || p(z)) in closed form.
        All float32 nats."""
        mean, log_std = self.encoder(x)
        eps = jax.random.normal(self.make_rng("latent"), (num_samples, *mean.shape))
        z = mean + jnp.exp(log_std) * eps
        logits = self.decoder(z.reshape(-1, self.latent_dim), x.shape[1:])
        targets = jnp.broadcast_to(x, (num_samples, *x.shape)).reshape(-1, *x.shape[1:])
        log_px_z = self.distribution.log_prob(logits, targets).sum(axis=(1, 2, 3))
        kl = 0.5 * jnp.sum(mean**2 + jnp.exp(2 * log_std) - 1.0 - 2 * log_std, axis=-1)
        return {
            "log_px_z": log_px_z.reshape(num_samples, len(x)),
            "log_pz_qz": normal_log_density(z) - normal_log_density(z, mean, log_std),
            "kl": kl,
        }

    @nn.nowrap
    def subpixel_order(self, image_shape: tuple[int, int, int]) -> np.ndarray:
        """All in one place: given z, no subpixel's conditional depends on another."""
        return np.zeros(image_shape, int)

    @nn.nowrap
    def sample_latent(self, variables, rng: jax.Array, num: int) -> jnp.ndarray:
        """z `[num, latent_dim]` from the prior N(0, I)."""
        del variables
        return jax.random.normal(rng, (num, self.latent_dim))

    @nn.nowrap
    def fast_stepper(self, variables, cond=None) -> Stepper:
        """Decodes z = `cond` once; each step reads its pixel's logits (the
        subpixels are independent given z)."""
        if cond is None:
            raise ValueError("a VAE samples given z: pass cond=model.sample_latent(...)")

        def init(x: jnp.ndarray) -> jnp.ndarray:
            return self.apply(variables, x, cond)

        def step(logits, x, i, j):
            del x
            pixel = jax.lax.dynamic_slice_in_dim(logits, i, 1, axis=1)
            return logits, jax.lax.dynamic_slice_in_dim(pixel, j, 1, axis=2)

        return Stepper(init, step)


def _checked_latent(cond, batch: int, model: VAE) -> jnp.ndarray:
    """A given z as float32 `[batch, latent_dim]`; a ValueError if it is not one."""
    z = jnp.asarray(cond)
    if z.shape != (batch, model.latent_dim) or not jnp.issubdtype(z.dtype, jnp.floating):
        raise ValueError(
            f"cond must be a float z [{batch}, {model.latent_dim}]; got {z.dtype} {z.shape}"
        )
    return z.astype(jnp.float32)
