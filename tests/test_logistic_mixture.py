"""DiscretizedLogisticMixture against the PixelCNN++ formulas, in float64 numpy."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import scipy.stats

from pixel_models.distributions import DiscretizedLogisticMixture

SHAPE = (2, 3, 2)  # B, H, W
CASES = list(itertools.product([1, 3], [2, 4, 256]))  # (C, K)

# Jitted once with the distribution static, so equal distributions share compilations.
conditionals = jax.jit(DiscretizedLogisticMixture.conditionals, static_argnums=0)
log_prob = jax.jit(DiscretizedLogisticMixture.log_prob, static_argnums=0)
sample = jax.jit(DiscretizedLogisticMixture.sample, static_argnums=(0, 3))


def random_params(
    seed: int, dist: DiscretizedLogisticMixture, num_colors: int, extreme: bool
) -> np.ndarray:
    """`[*SHAPE, P]` float32 in the documented layout; `extreme` mixes in means of ±5
    and log-scales of -9 (clamped to -7), -7 and 3."""
    rng = np.random.default_rng(seed)
    m, c = dist.num_mixtures, num_colors
    logits = rng.normal(0, 2, (*SHAPE, m))
    means = rng.uniform(-1, 1, (*SHAPE, c * m))
    log_scales = rng.uniform(-2.5, 0.5, (*SHAPE, c * m))
    if extreme:
        means = np.where(rng.random(means.shape) < 0.3, rng.choice([-5.0, 5.0], means.shape), means)
        pick = rng.random(log_scales.shape) < 0.6
        log_scales = np.where(pick, rng.choice([-9.0, -7.0, 3.0], log_scales.shape), log_scales)
    coeffs = rng.normal(0, 1.5, (*SHAPE, c * (c - 1) // 2 * m))
    params = np.concatenate([logits, means, log_scales, coeffs], axis=-1).astype(np.float32)
    assert params.shape[-1] == dist.num_params(c)
    return params


def random_images(seed: int, num_colors: int, num_levels: int) -> np.ndarray:
    """`int32[*SHAPE, C]` with a pixel of all zeros and one of all K-1."""
    x = np.random.default_rng(seed).integers(0, num_levels, (*SHAPE, num_colors))
    x[0, 0, 0] = 0
    x[0, 0, 1] = num_levels - 1
    return x.astype(np.int32)


def reference(
    params: np.ndarray, x: np.ndarray, num_mixtures: int, num_levels: int
) -> tuple[np.ndarray, np.ndarray, bool]:
    """The paper's `discretized_mix_logistic_loss`, generalised to C channels, in float64.

    Returns the per-pixel log-likelihood `[B, H, W]`, the per-subpixel conditionals
    `log p(x_c | x_<c)` `[B, H, W, C]`, and whether the small-mass branch was taken.
    """
    params = params.astype(np.float64)
    m, k = num_mixtures, num_levels
    batch, c = x.shape[:-1], x.shape[-1]
    logits = params[..., :m]
    means = params[..., m : m + c * m].reshape(*batch, c, m)
    log_scales = np.maximum(params[..., m + c * m : m + 2 * c * m].reshape(*batch, c, m), -7.0)
    coeffs = np.tanh(params[..., m + 2 * c * m :].reshape(*batch, c * (c - 1) // 2, m))
    scaled = 2.0 * x / (k - 1) - 1.0
    log_probs = np.empty((*batch, c, m))
    small = np.zeros((*batch, c, m), bool)
    pair = 0
    for ch in range(c):
        mean = means[..., ch, :].copy()
        for earlier in range(ch):
            mean += coeffs[..., pair, :] * scaled[..., earlier, None]
            pair += 1
        centered = scaled[..., ch, None] - mean
        inv_stdv = np.exp(-log_scales[..., ch, :])
        plus_in = inv_stdv * (centered + 1.0 / (k - 1))
        min_in = inv_stdv * (centered - 1.0 / (k - 1))
        cdf_delta = scipy.special.expit(plus_in) - scipy.special.expit(min_in)
        log_cdf_plus = plus_in - np.logaddexp(0, plus_in)
        log_one_minus_cdf_min = -np.logaddexp(0, min_in)
        mid_in = inv_stdv * centered
        log_pdf_mid = mid_in - log_scales[..., ch, :] - 2.0 * np.logaddexp(0, mid_in)
        level = x[..., ch, None]
        interior = (level > 0) & (level < k - 1)
        small[..., ch, :] = interior & (cdf_delta <= 1e-5)
        with np.errstate(divide="ignore"):
            log_delta = np.log(cdf_delta)
        log_probs[..., ch, :] = np.where(
            level == 0,
            log_cdf_plus,
            np.where(
                level == k - 1,
                log_one_minus_cdf_min,
                np.where(cdf_delta > 1e-5, log_delta, log_pdf_mid - np.log((k - 1) / 2)),
            ),
        )
    log_pi = logits - scipy.special.logsumexp(logits, axis=-1, keepdims=True)
    through = scipy.special.logsumexp(log_pi[..., None, :] + np.cumsum(log_probs, -2), axis=-1)
    before = np.concatenate([np.zeros((*batch, 1)), through[..., :-1]], axis=-1)
    return through[..., -1], through - before, small.any()


@pytest.mark.parametrize("num_colors,num_levels", CASES)
def test_conditionals_are_normalised(num_colors: int, num_levels: int):
    dist = DiscretizedLogisticMixture(num_mixtures=3, num_levels=num_levels)
    params = random_params(0, dist, num_colors, extreme=True)
    x = random_images(1, num_colors, num_levels)
    log_p = np.asarray(conditionals(dist, params, x), np.float64)
    # Exact bin masses sum to 1 within ~4e-7; the paper's density-at-the-centre stand-in
    # for masses under 1e-5 costs up to that much per tail.
    np.testing.assert_allclose(np.exp(log_p).sum(axis=-1), 1.0, rtol=0, atol=1e-5)


@pytest.mark.parametrize("num_colors,num_levels", CASES)
def test_log_prob_picks_from_conditionals(num_colors: int, num_levels: int):
    dist = DiscretizedLogisticMixture(num_mixtures=3, num_levels=num_levels)
    params = random_params(2, dist, num_colors, extreme=True)
    x = random_images(3, num_colors, num_levels)
    log_p = np.asarray(conditionals(dist, params, x))
    picked = np.take_along_axis(log_p, x[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(log_prob(dist, params, x), picked, rtol=0, atol=1e-6)


@pytest.mark.parametrize("num_colors,num_levels", CASES)
def test_log_prob_matches_the_paper(num_colors: int, num_levels: int):
    dist = DiscretizedLogisticMixture(num_mixtures=3, num_levels=num_levels)
    params = random_params(4, dist, num_colors, extreme=False)
    x = random_images(5, num_colors, num_levels)
    pixel, expected, small = reference(params, x, 3, num_levels)
    assert small or num_levels < 256  # K = 256 exercises the small-mass branch
    actual = np.asarray(log_prob(dist, params, x))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(actual.sum(axis=-1), pixel, rtol=0, atol=1e-5)


@pytest.mark.parametrize("num_colors,num_levels", [(1, 2), (3, 256)])
def test_gradients_are_finite_at_the_edges(num_colors: int, num_levels: int):
    dist = DiscretizedLogisticMixture(num_mixtures=3, num_levels=num_levels)
    params = random_params(6, dist, num_colors, extreme=True)
    x = random_images(7, num_colors, num_levels)
    x[1] = np.where(np.arange(num_colors) % 2 == 0, 0, num_levels - 1)
    grads = jax.jit(jax.grad(lambda p: dist.log_prob(p, x).sum()))(params)
    assert np.isfinite(grads).all()


def test_conditionals_read_only_earlier_channels_of_the_same_pixel():
    dist = DiscretizedLogisticMixture(num_mixtures=3, num_levels=4)
    params = random_params(8, dist, 3, extreme=False)
    x = random_images(9, 3, 4)
    before = np.asarray(conditionals(dist, params, x))
    for channel in range(3):
        changed = x.copy()
        changed[1, 2, 0, channel] = 3 - changed[1, 2, 0, channel]
        after = np.asarray(conditionals(dist, params, changed))
        moved = np.abs(after - before).max(axis=-1) > 0
        expected = np.zeros_like(moved)
        expected[1, 2, 0, channel + 1 :] = True
        np.testing.assert_array_equal(moved, expected)


def _chi_square_p_value(samples: np.ndarray, probs: np.ndarray) -> float:
    counts = np.bincount(samples, minlength=probs.size)
    expected = probs / probs.sum(dtype=np.float64) * samples.size
    assert expected.min() > 5  # the chi-square approximation holds
    return scipy.stats.chisquare(counts, expected).pvalue


def test_samples_of_one_channel_follow_the_bin_masses():
    dist = DiscretizedLogisticMixture(num_mixtures=1, num_levels=8)
    params = np.array([0.0, 0.1, np.log(0.4)], np.float32)
    drawn = sample(dist, np.broadcast_to(params, (100, 1000, 1, 3)), jax.random.key(0), 1.0)
    probs = np.exp(conditionals(dist, params[None, None, None], np.zeros((1, 1, 1, 1))))
    assert _chi_square_p_value(np.asarray(drawn).ravel(), probs.ravel()) > 1e-3


def test_samples_of_three_channels_follow_the_joint_masses():
    dist = DiscretizedLogisticMixture(num_mixtures=2, num_levels=4)
    logits = [0.3, -0.2]
    means = [-0.3, 0.4, 0.2, -0.5, 0.0, 0.6]
    log_scales = [-0.7, -1.0, -0.5, -0.9, -0.6, -1.2]
    coeffs = [1.0, -0.8, -1.5, 0.5, 0.7, 2.0]
    params = np.array(logits + means + log_scales + coeffs, np.float32)
    drawn = sample(dist, np.broadcast_to(params, (100, 1000, 1, 20)), jax.random.key(1), 1.0)
    cells = np.asarray(drawn) @ np.array([16, 4, 1])  # pixel -> index in [0, 64)
    images = np.array(list(itertools.product(range(4), repeat=3)), np.int32)[:, None, None]
    log_joint = log_prob(dist, np.broadcast_to(params, (64, 1, 1, 20)), images)
    probs = np.exp(np.asarray(log_joint, np.float64).sum(axis=(1, 2, 3)))
    np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-6)
    assert _chi_square_p_value(cells.ravel(), probs) > 1e-3


def test_zero_temperature_gives_the_mode():
    dist = DiscretizedLogisticMixture(num_mixtures=3, num_levels=256)
    params = random_params(10, dist, 3, extreme=False)
    first = sample(dist, params, jax.random.key(0), 1e-6)
    np.testing.assert_array_equal(first, sample(dist, params, jax.random.key(1), 1e-6))

    single = DiscretizedLogisticMixture(num_mixtures=1, num_levels=256)
    params = random_params(11, single, 1, extreme=False)
    nearest_to_mean = np.clip(np.round((params[..., 1:2] + 1) * 127.5), 0, 255)
    drawn = sample(single, params, jax.random.key(2), 1e-6)
    np.testing.assert_array_equal(drawn, nearest_to_mean)


def test_dtypes_shapes_and_sizes():
    dist = DiscretizedLogisticMixture(num_mixtures=3, num_levels=4)
    assert dist.num_params(3) == 30 and dist.num_params(1) == 9
    params = random_params(12, dist, 3, extreme=False)
    x = random_images(13, 3, 4)
    log_p = log_prob(dist, params, x)
    every_level = conditionals(dist, params, x)
    drawn = sample(dist, params, jax.random.key(0), 1.0)
    low_precision = log_prob(dist, jnp.asarray(params, jnp.bfloat16), x.astype(np.uint8))
    assert low_precision.dtype == jnp.float32 and low_precision.shape == (*SHAPE, 3)
    assert log_p.dtype == jnp.float32 and log_p.shape == (*SHAPE, 3)
    assert every_level.dtype == jnp.float32 and every_level.shape == (*SHAPE, 3, 4)
    assert drawn.dtype == jnp.int32 and drawn.shape == (*SHAPE, 3)
    assert ((drawn >= 0) & (drawn < 4)).all()
    with pytest.raises(ValueError, match="need 9"):
        dist.log_prob(params, x[..., :1])
    with pytest.raises(ValueError, match="fit no number of channels"):
        dist.sample(params[..., :-1], jax.random.key(0))
