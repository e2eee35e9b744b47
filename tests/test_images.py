"""Images are integer levels in [0, K): the likelihood and the sampler refuse
anything else with one ValueError, and under jit an image with a value out of
range scores NaN, never a plausible number."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pixel_models import likelihood, sampling
from pixel_models.models.pixelcnn import PixelCNN
from tests import model_checks

SHAPE = (2, 3, 4, 1)


@pytest.fixture(scope="module")
def binary_model():
    model = PixelCNN(2, hidden_dim=4, num_layers=1, output_hidden_dim=4)
    return model, model_checks.random_variables(model, jnp.zeros((1, *SHAPE[1:]), jnp.int32))


IMPOSSIBLE = [
    (np.full(SHAPE, 255, np.uint8), r"integer levels in \[0, 2\), got values in \[255, 255\]"),
    (np.full(SHAPE, 0.5, np.float32), "not scaled floats"),
    (np.full(SHAPE, -1), r"got values in \[-1, -1\]"),
    (np.zeros(SHAPE[1:], np.int32), r"must be \[B, H, W, C\], got shape \[3, 4, 1\]"),
]


@pytest.mark.parametrize("x, message", IMPOSSIBLE)
def test_the_likelihood_refuses_impossible_images(binary_model, x, message):
    model, variables = binary_model
    with pytest.raises(ValueError, match=message):
        likelihood.log_prob(model, variables, x)
    with pytest.raises(ValueError, match=message):
        likelihood.conditional_log_probs(model, variables, x)


def test_under_jit_an_image_out_of_range_scores_nan(binary_model):
    model, variables = binary_model
    x = np.zeros(SHAPE, np.int32)
    x[1, 2, 3, 0] = 2
    scored = jax.jit(functools.partial(likelihood.log_prob, model))(variables, x)
    assert np.isfinite(scored[0]) and np.isnan(scored[1])
    with pytest.raises(ValueError, match="not scaled floats"):  # dtypes are known when tracing
        jax.jit(functools.partial(likelihood.log_prob, model))(variables, x.astype(np.float32))


def test_booleans_are_binary_levels(binary_model):
    model, variables = binary_model
    x = np.random.default_rng(0).random(SHAPE) < 0.5
    np.testing.assert_array_equal(
        likelihood.log_prob(model, variables, x),
        likelihood.log_prob(model, variables, x.astype(np.int32)),
    )


@pytest.mark.parametrize("x, message", IMPOSSIBLE)
def test_the_sampler_refuses_impossible_starting_images(binary_model, x, message):
    model, variables = binary_model
    with pytest.raises(ValueError, match=message):
        sampling.sample(model, variables, jax.random.key(0), x)


@pytest.mark.parametrize(
    "known, message",
    [
        (np.ones(SHAPE, np.int32), r"known must be bool \[2, 3, 4, 1\] like x, got int32"),
        (np.ones((2, 3, 4, 2), bool), r"got bool \[2, 3, 4, 2\]"),
    ],
)
def test_the_sampler_refuses_a_known_mask_unlike_x(binary_model, known, message):
    model, variables = binary_model
    with pytest.raises(ValueError, match=message):
        sampling.sample(model, variables, jax.random.key(0), np.zeros(SHAPE, np.int32), known)


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("inf"), float("nan")])
def test_the_sampler_refuses_a_temperature_that_is_not_positive_and_finite(
    binary_model, temperature
):
    model, variables = binary_model
    with pytest.raises(ValueError, match="temperature must be > 0 and finite"):
        sampling.sample(
            model, variables, jax.random.key(0), np.zeros(SHAPE, np.int32), temperature=temperature
        )
