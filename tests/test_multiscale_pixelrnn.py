"""Multi-scale PixelRNN: causal in its own order (subsampled pixels first),
normalised, the subsampled pixels scored once (by the small network), its
two-stage sampler (fast = naive, completion), and a few train steps."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import binarized_mnist
from pixel_models import build_model, data, likelihood, sampling
from pixel_models.training import steps, train_state
from pixel_models.training.optimizers import make_optimizer
from tests import model_checks
from tests.helpers import tiny_pixelrnn
from tests.sampling_checks import assert_fast_matches_naive


def multiscale(num_levels: int, **overrides):
    """A multi-scale model of the fast PixelRNN tests' tiny sizes."""
    return tiny_pixelrnn("multiscale_pixelrnn", num_levels, **overrides)


def variables_for(model, shape, seed=0):
    return model_checks.random_variables(model, jnp.zeros((1, *shape), jnp.int32), seed=seed)


@pytest.mark.parametrize(
    "rnn,shape,levels,overrides",
    [
        ("row_lstm", (4, 6, 3), 4, {}),
        ("diagonal_bilstm", (6, 3, 1), 2, dict(scale=3, small_hidden_dim=3, small_num_layers=1)),
    ],
)
def test_causal_in_its_own_order(rnn, shape, levels, overrides):
    model = multiscale(levels, rnn=rnn, **overrides)
    variables, compiled = variables_for(model, shape), model_checks.compiled(model)
    order = model.subpixel_order(shape)
    model_checks.assert_causal(compiled, variables, shape, levels, order=order)
    # In raster order it is not causal: the subsampled pixels come first.
    with pytest.raises(AssertionError, match="at or before it"):
        model_checks.assert_causal(compiled, variables, shape, levels)


def test_the_order_puts_the_subsampled_pixels_first():
    order = multiscale(2).subpixel_order((4, 4, 2))
    np.testing.assert_array_equal(order[::2, ::2].reshape(-1), np.arange(8))
    np.testing.assert_array_equal(order[0, 1], [8, 9])
    np.testing.assert_array_equal(np.sort(order.reshape(-1)), np.arange(32))


def test_normalised_over_every_4x4_binary_image():
    model = build_model(binarized_mnist.get_config("multiscale_pixelrnn,tiny").model)
    assert model.scale == 2
    variables = variables_for(model, (4, 4, 1))
    model_checks.assert_normalised(
        model_checks.compiled(model), variables, image_shape=(4, 4, 1), batch_size=8192
    )


def test_subsampled_pixels_are_scored_once_by_the_small_network():
    model, shape = multiscale(4), (2, 4, 6, 3)
    variables = variables_for(model, shape[1:])
    params = variables["params"]
    x = model_checks.random_images(shape, 4, seed=1)
    x_small = x[:, ::2, ::2]

    def log_probs(network, params, x, cond=None) -> np.ndarray:
        compiled = model_checks.compiled(network)
        return np.asarray(likelihood.conditional_log_probs(compiled, {"params": params}, x, cond))

    full = log_probs(model, params, x)
    small = log_probs(model.small(), params["small"], x_small)
    given = log_probs(model.conditional(), params["conditional"], x, x_small)
    np.testing.assert_allclose(full[:, ::2, ::2], small, atol=1e-6)
    rest = np.ones(shape[1:3], bool)
    rest[::2, ::2] = False
    np.testing.assert_allclose(full[:, rest], given[:, rest], atol=1e-6)
    # log p(x) = log p(x_small) + log p(x_rest | x_small)
    expected = small.sum(axis=(1, 2, 3)) + given[:, rest].sum(axis=(1, 2))
    np.testing.assert_allclose(full.sum(axis=(1, 2, 3)), expected, rtol=1e-6)


@pytest.mark.slow  # the contract test checks the tiny multi-scale model too
@pytest.mark.parametrize(
    "rnn,shape,levels,overrides",
    [
        ("row_lstm", (2, 4, 6, 3), 4, {}),
        ("diagonal_bilstm", (2, 6, 3, 1), 2, dict(scale=3, skip_connections=True)),
    ],
)
def test_fast_sampler_matches_naive(rnn, shape, levels, overrides):
    model = multiscale(levels, rnn=rnn, **overrides)
    assert_fast_matches_naive(model, variables_for(model, shape[1:]), shape)


def test_completion_keeps_the_known_subpixels():
    model, shape = multiscale(4), (2, 4, 4, 3)
    variables = variables_for(model, shape[1:])
    rng = np.random.default_rng(0)
    given = rng.integers(0, 4, shape)
    known = rng.random(shape) < 0.5
    rows = []
    out = sampling.sample(
        model, variables, jax.random.key(0), given, jnp.asarray(known), on_row=rows.append
    )
    out = np.asarray(out)
    np.testing.assert_array_equal(out[known], given[known])
    assert (out[~known] != given[~known]).any()
    # Progress: both stages' rows (2 + 4), pro rata in rows of the image.
    assert rows == [0, 1, 2, 2, 3, 4]


def test_refuses_a_cond_a_bad_scale_an_unknown_rnn_and_a_raster_stepper():
    x = jnp.zeros((1, 4, 6, 1), jnp.int32)
    with pytest.raises(ValueError, match="unconditional"):
        multiscale(2).init(jax.random.key(0), x, cond=jnp.zeros((1,), jnp.int32))
    with pytest.raises(ValueError, match="scale=4 must divide"):
        multiscale(2, scale=4).init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="rnn='gru'"):
        multiscale(2, rnn="gru").init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="samples in stages"):
        sampling.make_stepper(multiscale(2), {}, "fast")


@pytest.mark.slow
def test_a_few_train_steps_lower_the_loss(data_dir):
    config = binarized_mnist.get_config("multiscale_pixelrnn,tiny")
    config.dataset.data_dir = str(data_dir)
    model, optimizer = build_model(config.model), make_optimizer(config.optimizer)
    images = data.load_split(config.dataset, "train").batch(np.arange(4))["image"]
    create = functools.partial(train_state.create_train_state, model, optimizer)
    state = jax.jit(create)(jax.random.PRNGKey(0), images)
    train_step = jax.jit(functools.partial(steps.train_step, model, optimizer))
    losses = []
    for _ in range(4):
        state, metrics = train_step(state, {"image": images})
        losses.append(float(metrics["loss"]))
    assert np.isfinite(losses).all() and losses[-1] < losses[0], losses
