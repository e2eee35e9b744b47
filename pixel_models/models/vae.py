"""The variational auto-encoder (Kingma & Welling 2014, "Auto-Encoding
Variational Bayes"): a latent-variable model, the baseline that exact
likelihoods are compared with.

p(x) = ∫ p(x | z) p(z) dz with a standard normal prior p(z) over
`latent_dim` numbers and a factorised decoder p(x | z): a K-way softmax per
subpixel (a Bernoulli for binary images), all subpixels independent given z;
or, with `output="logistic_mixture"` (8-bit colour), PixelCNN++'s discretized
logistic mixture of `num_mixtures` components per pixel, the pixels
independent given z and each pixel's channels R -> G -> B within it.
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
from collections.abc import Callable
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pixel_models.distributions import Categorical, DiscretizedLogisticMixture
from pixel_models.interface import PixelModel, Stepper
from pixel_models.layers.pixel_io import scale_pixels

_LOG_2PI = math.log(2 * math.pi)
# The decoder's output distributions (`VAE.output`).
OUTPUTS = ("softmax", "logistic_mixture")


def normal_log_density(z: jnp.ndarray, mean=0.0, log_std=0.0) -> jnp.ndarray:
    """`log N(z; mean, exp(log_std)^2)` summed over the last axis."""
    eps = (z - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * (eps**2 + _LOG_2PI) - log_std, axis=-1)


class GaussianLatent:
    """What a latent-variable model of z ~ N(0, I) (`latent_dim` numbers) and a
    diagonal Gaussian posterior shares: the terms of the bounds, and draws
    from the prior (the `LATENT` part of `pixel_models.interface`)."""

    LATENT: ClassVar[bool] = True

    def gaussian_log_weights(
        self,
        x: jnp.ndarray,
        posterior: tuple[jnp.ndarray, jnp.ndarray],
        num_samples: int,
        decode: Callable[[jnp.ndarray, jnp.ndarray], jnp.ndarray],
    ) -> dict[str, jnp.ndarray]:
        """For `num_samples` draws z_i ~ q(z | x) = N(mean, exp(log_std)^2)
        (`posterior`, each `[B, latent_dim]`; rng "latent"): `log_px_z`,
        log p(x | z_i), and `log_pz_qz`, log p(z_i) - log q(z_i | x), each
        `[num_samples, B]`; and `kl[B]`, KL(q(z | x) || p(z)) in closed form.
        All float32 nats. `decode(z[N, D], x[N, H, W, C])` gives the
        parameters of p(x | z) for the N = num_samples * B pairs."""
        mean, log_std = posterior
        eps = jax.random.normal(self.make_rng("latent"), (num_samples, *mean.shape))
        z = mean + jnp.exp(log_std) * eps
        targets = jnp.broadcast_to(x, (num_samples, *x.shape)).reshape(-1, *x.shape[1:])
        params = decode(z.reshape(-1, mean.shape[-1]), targets)
        log_px_z = self.distribution.log_prob(params, targets).sum(axis=(1, 2, 3))
        kl = 0.5 * jnp.sum(mean**2 + jnp.exp(2 * log_std) - 1.0 - 2 * log_std, axis=-1)
        return {
            "log_px_z": log_px_z.reshape(num_samples, len(x)),
            "log_pz_qz": normal_log_density(z) - normal_log_density(z, mean, log_std),
            "kl": kl,
        }

    @nn.nowrap
    def sample_latent(self, variables, rng: jax.Array, num: int) -> jnp.ndarray:
        """z `[num, latent_dim]` from the prior N(0, I)."""
        del variables
        return jax.random.normal(rng, (num, self.latent_dim))

    @nn.nowrap
    def fast_stepper(self, variables, cond=None) -> Stepper:
        """For a decoder whose pixels are independent given z: decodes z =
        `cond` once; each step reads its pixel's parameters."""
        if cond is None:
            raise ValueError(
                f"{type(self).__name__} samples given z: pass cond=model.sample_latent(...)"
            )

        def init(x: jnp.ndarray) -> jnp.ndarray:
            return self.apply(variables, x, cond)

        def step(params, x, i, j):
            del x
            pixel = jax.lax.dynamic_slice_in_dim(params, i, 1, axis=1)
            return params, jax.lax.dynamic_slice_in_dim(pixel, j, 1, axis=2)

        return Stepper(init, step)


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
    """`z[N, latent_dim]` -> the parameters `[N, *out_shape]` (float32) of p(x | z)."""

    hidden_dim: int
    num_hidden: int
    dtype: Any = None

    @nn.compact
    def __call__(self, z: jnp.ndarray, out_shape: tuple[int, ...]) -> jnp.ndarray:
        h = z
        for _ in range(self.num_hidden):
            h = jnp.tanh(nn.Dense(self.hidden_dim, dtype=self.dtype)(h))
        out = nn.Dense(math.prod(out_shape), dtype=self.dtype)(h)
        return out.astype(jnp.float32).reshape(len(z), *out_shape)


class VAE(GaussianLatent, PixelModel):
    """`x[B, H, W, C]` levels and `cond = z[B, latent_dim]` -> the parameters
    of p(x | z): logits `[B, H, W, C, K]` (`output="softmax"`), or the
    mixture's `[B, H, W, P]` (`output="logistic_mixture"`). With no `cond`,
    z is the posterior mean of x: a reconstruction, which is how `init` builds
    both networks (and no likelihood: `likelihood.log_prob` refuses a latent
    model without z)."""

    num_levels: int
    latent_dim: int = 50
    hidden_dim: int = 200
    num_hidden: int = 2
    output: str = "softmax"
    num_mixtures: int = 1
    dtype: Any = None

    @property
    def distribution(self) -> Categorical | DiscretizedLogisticMixture:
        """The output distribution `__call__` returns the parameters of."""
        if self.output not in OUTPUTS:
            raise ValueError(f"model.output={self.output!r}: use one of {', '.join(OUTPUTS)}")
        if self.output == "logistic_mixture":
            return DiscretizedLogisticMixture(self.num_mixtures, self.num_levels)
        return Categorical(self.num_levels)

    def setup(self):
        self.encoder = MLPEncoder(
            self.latent_dim, self.num_levels, self.hidden_dim, self.num_hidden, self.dtype
        )
        self.decoder = MLPDecoder(self.hidden_dim, self.num_hidden, self.dtype)

    def __call__(self, x: jnp.ndarray, cond=None, train: bool = False) -> jnp.ndarray:
        del train  # no dropout
        z = self.encoder(x)[0] if cond is None else checked_latent(cond, len(x), self)
        return self._decode(z, x.shape[1:])

    def _decode(self, z: jnp.ndarray, image_shape: tuple[int, int, int]) -> jnp.ndarray:
        """The parameters of p(x | z) for z `[N, latent_dim]`: `[N, H, W, C, K]`
        logits, or the mixture's `[N, H, W, P]`."""
        height, width, channels = image_shape
        distribution = self.distribution
        if distribution.samples_whole_pixels:
            return self.decoder(z, (height, width, distribution.num_params(channels)))
        return self.decoder(z, (height, width, channels, self.num_levels))

    def log_weights(self, x: jnp.ndarray, num_samples: int) -> dict[str, jnp.ndarray]:
        """The terms of the bounds (`GaussianLatent.gaussian_log_weights`)."""

        def decode(z: jnp.ndarray, targets: jnp.ndarray) -> jnp.ndarray:
            return self._decode(z, targets.shape[1:])

        return self.gaussian_log_weights(x, self.encoder(x), num_samples, decode)

    @nn.nowrap
    def encode(self, variables, x: jnp.ndarray) -> jnp.ndarray:
        """The posterior mean of z, `[B, latent_dim]`: the code of x."""
        return self.apply(variables, x, method=lambda m, x: m.encoder(x)[0])

    @nn.nowrap
    def subpixel_order(self, image_shape: tuple[int, int, int]) -> np.ndarray:
        """Given z, no pixel's conditionals depend on another pixel: a categorical
        decoder's subpixels are all in one place, a mixture's channels follow
        each other within their pixel."""
        if self.distribution.samples_whole_pixels:
            return np.broadcast_to(np.arange(image_shape[-1]), image_shape).copy()
        return np.zeros(image_shape, int)


def checked_latent(cond, batch: int, model: GaussianLatent) -> jnp.ndarray:
    """A given z as float32 `[batch, latent_dim]`; a ValueError if it is not one."""
    z = jnp.asarray(cond)
    if z.shape != (batch, model.latent_dim) or not jnp.issubdtype(z.dtype, jnp.floating):
        raise ValueError(
            f"cond must be a float z [{batch}, {model.latent_dim}]; got {z.dtype} {z.shape}"
        )
    return z.astype(jnp.float32)
