"""The discretized logistic mixture, PixelCNN++'s output (Salimans et al. 2017).

Each pixel is a mixture of components; within a component the colour channels
are discretized logistics whose means move linearly with the pixel's earlier
channels (R -> G -> B in the paper, any number of channels here). Bin masses
follow `discretized_mix_logistic_loss` in openai/pixel-cnn `pixel_cnn_pp/nn.py`.
"""

import dataclasses
import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

_MIN_LOG_SCALE = -7.0
# Sampling temperatures below this draw as it does: already the T -> 0 limit in float32,
# where smaller ones would overflow the tempered logits and inverse scales.
_MIN_TEMPERATURE = 1e-30
# Below this interior bin mass, the paper scores the bin by its density at the centre.
_MIN_BIN_MASS = 1e-5


@dataclasses.dataclass(frozen=True)
class DiscretizedLogisticMixture:
    """A mixture of `num_mixtures` (M) components over `num_levels` (K) values per subpixel.

    Parameters: `params[B, H, W, P]` with `P = num_params(C)` (any float dtype;
    computed in float32). The last axis holds, in order:

    - `[0, M)`: mixture logits `[M]`;
    - `[M, M + C*M)`: means `[C, M]` (channel c, component m at `M + c*M + m`),
      on the `[-1, 1]` scale of the values;
    - `[M + C*M, M + 2*C*M)`: log-scales `[C, M]`, same order, clamped below at -7;
    - `[M + 2*C*M, P)`: colour coefficients `[C*(C-1)/2, M]`, one row per pair
      `(c, c')` with `c' < c`, in the order (1, 0), (2, 0), (2, 1), (3, 0), ...

    Value k stands for `x̂_k = 2k/(K-1) - 1`. In component m, channel c is a logistic
    with scale `exp(log_scale[c, m])` and mean
    `mean[c, m] + sum_{c' < c} tanh(coeff[(c, c'), m]) * x̂_{c'}`, where `x̂_{c'}` is the
    pixel's earlier channel; value k gets its mass on `[x̂_k - 1/(K-1), x̂_k + 1/(K-1)]`,
    with the bins of 0 and K-1 running on to -inf and +inf. For C = 3 that is the
    paper's 10*M parameters with coefficients (G<-R, B<-R, B<-G), in blocks by kind
    rather than the paper's blocks by channel.

    The mixture is over whole pixels, `log p(pixel) = logsumexp_m [log pi_m +
    sum_c log p_m(x_c | x_<c)]`; subpixel c is scored by its true conditional
    `log p(x_c | x_<c) = logsumexp_m [log w_m(x_<c) + log p_m(x_c | x_<c)]`, where
    `w(x_<c)` are the component weights given the earlier channels (`w = pi` for
    c = 0). The conditionals sum over c to `log p(pixel)`.
    """

    num_mixtures: int
    num_levels: int
    # The channels of a pixel are drawn together (a sampler keeps whole pixels).
    samples_whole_pixels: ClassVar[bool] = True

    def num_params(self, num_colors: int) -> int:
        """`P`, the size of the last axis of `params` for `num_colors` channels:
        `M * (1 + 2C + C(C-1)/2)` (10*M for C = 3, 3*M for C = 1)."""
        return self.num_mixtures * (1 + 2 * num_colors + num_colors * (num_colors - 1) // 2)

    def conditionals(self, params: jnp.ndarray, x: jnp.ndarray) -> jnp.ndarray:
        """`log p(x[..., c] = k | x[..., :c])` for every k, `[B, H, W, C, K]` float32.

        Channel c's row depends only on `params` and `x[..., :c]` at the same pixel.
        """
        unpacked = self._unpack(params, x.shape[-1])
        log_weights, means, log_scales, _ = self._channel_terms(unpacked, x)
        return self._every_level(log_weights, means, log_scales)

    def log_prob(self, params: jnp.ndarray, x: jnp.ndarray) -> jnp.ndarray:
        """`log p(x[..., c] | x[..., :c])` per subpixel, `[B, H, W, C]` float32 nats."""
        log_weights, _, _, observed = self._channel_terms(self._unpack(params, x.shape[-1]), x)
        return jax.nn.logsumexp(log_weights + observed, axis=-1)

    def sample(self, params: jnp.ndarray, rng: jax.Array, temperature: float = 1.0) -> jnp.ndarray:
        """One value per subpixel, `int32[B, H, W, C]`, each pixel's channels drawn jointly.

        The draw is from the tempered mixture: `temperature` (T > 0) divides the
        mixture logits by T and multiplies every logistic's scale by T (after the -7
        clamp of the log-scale); at T = 1 it is the distribution `log_prob` scores.
        Channel c gets the level `argmax_k [log p(x_c = k | x_<c) + g[..., c, k]]`
        (Gumbel-max), with `x_<c` the pixel's channels drawn before it and Gumbel
        noise `g[..., C, K]` from `rng`. Parameters a float rounding apart (the fast
        and naive samplers sum in different orders) draw the same levels unless two
        levels' perturbed log-masses come within what the rounding moves them: rare
        where the logistics span many levels. A channel's level changes at most
        twice as often as any draw must (the total variation distance between the
        two conditionals), which grows as the logistics narrow to about a level.

        T = 2 can lower the entropy at small K: mass moves into the open-ended edge
        bins. As T -> 0 the draw becomes deterministic: the most likely component,
        then each channel the level whose bin holds that component's mean given the
        earlier channels' values (its nearest level), which need not be the most
        likely level of the mixture. T below 1e-30 draws as 1e-30, already that
        limit in float32.
        """
        return self.draw(
            params, jax.random.gumbel(rng, self.gumbel_shape(params.shape)), temperature
        )

    def gumbel_shape(self, params_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of the Gumbel noise that `draw` takes for parameters of
        `params_shape` (`[..., P]`): `[..., C, K]`."""
        return (*params_shape[:-1], self._num_colors(params_shape[-1]), self.num_levels)

    def draw(
        self, params: jnp.ndarray, gumbel: jnp.ndarray, temperature: float = 1.0
    ) -> jnp.ndarray:
        """`sample` given its Gumbel noise `gumbel[..., C, K]` (`gumbel_shape`)."""
        num_colors = self._num_colors(params.shape[-1])
        tempered = self._unpack(params, num_colors, jnp.maximum(temperature, _MIN_TEMPERATURE))
        levels = jnp.arange(self.num_levels)
        x = jnp.zeros((*params.shape[:-1], num_colors), jnp.int32)
        for c in range(num_colors):
            # Channel c's terms depend on x[..., :c] only, all drawn by now.
            log_weights, means, log_scales, _ = self._channel_terms(tempered, x)
            perturbed = gumbel[..., c, :] + self._every_level(
                log_weights[..., c, :], means[..., c, :], log_scales[..., c, :]
            )
            # The first largest, as `jnp.argmax` (whose reduction is several times
            # slower on CPU); a row without one (NaN) gives K - 1.
            top = perturbed == jnp.max(perturbed, axis=-1, keepdims=True)
            drawn = jnp.min(jnp.where(top, levels, self.num_levels - 1), axis=-1)
            x = x.at[..., c].set(drawn)
        return x

    def _num_colors(self, num_params: int) -> int:
        """C such that `num_params(C) == num_params`."""
        num_colors = 1
        while self.num_params(num_colors) < num_params:
            num_colors += 1
        if self.num_params(num_colors) != num_params:
            raise ValueError(
                f"{num_params} parameters per pixel fit no number of channels for "
                f"{self.num_mixtures} mixtures (want M * (1 + 2C + C(C-1)/2))"
            )
        return num_colors

    def _unpack(
        self, params: jnp.ndarray, num_colors: int, temperature: float = 1.0
    ) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray, jnp.ndarray]:
        """`params[..., P]` -> logits `[..., M]`, means and clamped log-scales
        `[..., C, M]`, and `tanh` of the coefficients as a strictly lower-triangular
        `[..., C, C, M]` (row c: the weights of the earlier channels in channel c's mean).
        A `temperature` T divides the logits by T and adds log T to the clamped log-scales."""
        m, c = self.num_mixtures, num_colors
        if params.shape[-1] != self.num_params(c):
            raise ValueError(
                f"params has {params.shape[-1]} values per pixel; {m} mixtures of {c} "
                f"channels need {self.num_params(c)}"
            )
        params = params.astype(jnp.float32)
        batch = params.shape[:-1]
        logits = params[..., :m]
        means = params[..., m : m + c * m].reshape(*batch, c, m)
        log_scales = params[..., m + c * m : m + 2 * c * m].reshape(*batch, c, m)
        pairs = params[..., m + 2 * c * m :].reshape(*batch, c * (c - 1) // 2, m)
        rows, cols = np.tril_indices(c, -1)
        placement = np.zeros((len(rows), c, c), np.float32)
        placement[np.arange(len(rows)), rows, cols] = 1.0
        coeffs = jnp.einsum("...pm,pcd->...cdm", jnp.tanh(pairs), placement)
        log_scales = jnp.maximum(log_scales, _MIN_LOG_SCALE) + jnp.log(temperature)
        return logits / temperature, means, log_scales, coeffs

    def _channel_terms(
        self, unpacked: tuple[jnp.ndarray, ...], x: jnp.ndarray
    ) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray, jnp.ndarray]:
        """For each channel c and component m, all `[..., C, M]`, from `_unpack`'s
        parameters: `log w_m(x_<c)`, the mean given `x_<c`, the log-scale, and
        `log p_m(x_c | x_<c)`."""
        logits, means, log_scales, coeffs = unpacked
        means = means + jnp.einsum("...cdm,...d->...cm", coeffs, self._rescale(x))
        observed = self._log_mass(x[..., None], means, log_scales)
        earlier = jnp.concatenate(
            [jnp.zeros_like(observed[..., :1, :]), jnp.cumsum(observed[..., :-1, :], axis=-2)],
            axis=-2,
        )
        log_weights = jax.nn.log_softmax(logits[..., None, :] + earlier, axis=-1)
        return log_weights, means, log_scales, observed

    def _every_level(
        self, log_weights: jnp.ndarray, means: jnp.ndarray, log_scales: jnp.ndarray
    ) -> jnp.ndarray:
        """`[..., M]` weights, means and log-scales -> the mixture's log-mass of every
        level, `[..., K]`."""
        levels = jnp.arange(self.num_levels)
        every_level = self._log_mass(levels, means[..., None], log_scales[..., None])
        return jax.nn.logsumexp(log_weights[..., None] + every_level, axis=-2)

    def _rescale(self, level: jnp.ndarray) -> jnp.ndarray:
        """Values in `[0, K)` -> `[-1, 1]`."""
        return level.astype(jnp.float32) * (2.0 / (self.num_levels - 1)) - 1.0

    def _log_mass(
        self, level: jnp.ndarray, mean: jnp.ndarray, log_scale: jnp.ndarray
    ) -> jnp.ndarray:
        """Log-probability of `level` under the discretized logistic (`mean`,
        `exp(log_scale)`); the arguments broadcast together."""
        half_bin = 1.0 / (self.num_levels - 1)
        inv_scale = jnp.exp(-log_scale)
        # Edges from the integer level: bin k's upper edge is bit for bit bin k+1's lower
        # one, so the masses telescope to 1 even where `inv_scale` is large.
        twice = 2.0 * level.astype(jnp.float32)
        plus_in = inv_scale * ((twice + 1.0) * half_bin - 1.0 - mean)
        min_in = inv_scale * ((twice - 1.0) * half_bin - 1.0 - mean)
        mid_in = inv_scale * (self._rescale(level) - mean)
        width_in = 2.0 * half_bin * inv_scale
        log_cdf_plus = -jax.nn.softplus(-plus_in)  # the mass of bin 0
        log_one_minus_cdf_min = -jax.nn.softplus(min_in)  # the mass of bin K-1
        # sigmoid(b) - sigmoid(a) = sigmoid(b) * sigmoid(-a) * (1 - exp(a - b)), accurate in
        # both tails where the plain difference cancels.
        log_tails = log_cdf_plus + log_one_minus_cdf_min
        in_bin = jnp.exp(log_tails) * -jnp.expm1(-width_in) > _MIN_BIN_MASS
        safe_width = jnp.where(in_bin, width_in, 1.0)  # keeps log(0) out of the gradient
        log_cdf_delta = log_tails + jnp.log(-jnp.expm1(-safe_width))
        log_pdf_mid = mid_in - log_scale - 2.0 * jax.nn.softplus(mid_in)
        log_mid_mass = log_pdf_mid + math.log(2.0 * half_bin)
        interior = jnp.where(in_bin, log_cdf_delta, log_mid_mass)
        return jnp.where(
            level == 0,
            log_cdf_plus,
            jnp.where(level == self.num_levels - 1, log_one_minus_cdf_min, interior),
        )
