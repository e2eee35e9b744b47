"""The PixelRNNs' fast samplers (carried LSTM states) against the naive one:
the same images for the same seed, and the full forward pass's logits at
every pixel."""

import jax
import jax.numpy as jnp
import pytest

from tests.helpers import tiny_pixelrnn
from tests.sampling_checks import assert_fast_matches_naive

MODELS = ["row_lstm", "diagonal_bilstm"]


@pytest.mark.parametrize(
    "name", ["row_lstm", pytest.param("diagonal_bilstm", marks=pytest.mark.slow)]
)
def test_fast_matches_naive_on_rgb_with_skip_connections_and_wide_kernels(name):
    # The 7x7 input conv (and the Row LSTM's width-5 convs) reach past every
    # border of a 5x4 image.
    overrides = dict(skip_connections=True, input_kernel_size=7)
    if name == "row_lstm":
        overrides["kernel_size"] = 5
    model, shape = tiny_pixelrnn(name, 4, **overrides), (2, 5, 4, 3)
    variables = model.init(jax.random.key(1), jnp.zeros(shape, jnp.int32))
    assert_fast_matches_naive(model, variables, shape)


@pytest.mark.parametrize("name", MODELS)
def test_fast_stepper_rejects_a_condition(name):
    with pytest.raises(ValueError, match="unconditional"):
        tiny_pixelrnn(name, 2).fast_stepper({}, cond=jnp.zeros((1,), jnp.int32))
