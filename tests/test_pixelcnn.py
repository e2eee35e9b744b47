import itertools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from pixel_models import build_model, likelihood
from pixel_models.layers.masked_conv import tap_offsets
from tests import model_checks


def pixelcnn(num_levels, **overrides):
    fields = dict(
        name="pixelcnn", num_levels=num_levels, hidden_dim=6, num_layers=3, output_hidden_dim=12
    )
    fields.update(overrides)
    return build_model(ml_collections.ConfigDict(fields))


def init(model, shape, seed=0):
    """Variables drawn by NumPy (`model_checks.random_variables`): no init to compile."""
    return model_checks.random_variables(model, jnp.zeros((1, *shape), jnp.int32), seed=seed)


@pytest.mark.parametrize("shape,levels", [((6, 5, 1), 2), ((5, 4, 3), 256), ((4, 4, 3), 2)])
def test_causal(shape, levels):
    model = pixelcnn(levels)
    variables = init(model, shape)
    model_checks.assert_causal(model_checks.compiled(model), variables, shape, levels)


def test_normalised_over_colour_channels():
    model = pixelcnn(2)
    variables = init(model, (1, 2, 3))
    model_checks.assert_normalised(model_checks.compiled(model), variables, image_shape=(1, 2, 3))


def _reachable(num_layers, input_kernel, kernel):
    """Offsets (dy, dx) an output can see: the mask-A input taps plus
    `num_layers` steps of mask-B taps (the residual path adds the zero step)."""
    first = {t for t in tap_offsets((input_kernel,) * 2, "causal") if t != (0, 0)}
    step = set(tap_offsets((kernel,) * 2, "causal"))
    reach = first
    for _ in range(num_layers):
        reach = {(a + c, b + d) for a, b in reach for c, d in step}
    return reach


def test_receptive_field_has_the_blind_spot():
    layers, size = 2, (10, 12, 1)
    model = pixelcnn(2, num_layers=layers)
    target = (8, 5, 0)
    # Flax's own initialisation: every path it opens carries a visible change.
    variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, *size), jnp.int32))
    seen = model_checks.dependency_map(model_checks.compiled(model), variables, size, 2, target)
    reach = _reachable(layers, 7, 3)
    expected = np.zeros(size, bool)
    for i, j in itertools.product(range(size[0]), range(size[1])):
        expected[i, j, 0] = (i - target[0], j - target[1]) in reach
    np.testing.assert_array_equal(seen, expected)
    # The blind spot: earlier pixels up and to the right that no path reaches.
    assert not seen[7, 9, 0] and seen[7, 8, 0] and seen[6, 9, 0]


def test_log_prob_is_sum_of_conditionals_and_bits_per_dim():
    model = pixelcnn(256)
    variables = init(model, (4, 4, 3))
    x = jax.random.randint(jax.random.key(3), (2, 4, 4, 3), 0, 256)
    cond = likelihood.conditional_log_probs(model, variables, x)
    assert cond.shape == (2, 4, 4, 3)
    np.testing.assert_allclose(
        likelihood.log_prob(model, variables, x), cond.sum((1, 2, 3)), rtol=1e-6
    )
    np.testing.assert_allclose(likelihood.bits_per_dim(48 * np.log(256), (4, 4, 3)), 8.0)


@pytest.mark.slow
def test_bfloat16_model_gives_float32_log_probs():
    model = pixelcnn(256, dtype=jnp.bfloat16)
    variables = init(model, (4, 4, 3))
    x = jax.random.randint(jax.random.key(3), (2, 4, 4, 3), 0, 256)
    log_p = likelihood.log_prob(model, variables, x)
    assert log_p.dtype == jnp.float32 and bool(jnp.isfinite(log_p).all())
    reference = likelihood.log_prob(pixelcnn(256), variables, x)
    np.testing.assert_allclose(log_p, reference, rtol=0.05)


def test_bad_model_configs():
    with pytest.raises(ValueError, match="unknown model 'pixelcnnn'"):
        build_model(ml_collections.ConfigDict(dict(name="pixelcnnn", num_levels=2)))
    with pytest.raises(ValueError, match="bad hyperparameters"):
        build_model(ml_collections.ConfigDict(dict(name="pixelcnn", num_levels=2, depth=3)))
    for name, field, value, message in [
        ("pixelcnn", "hidden_dim", 0, "model.hidden_dim=0 must be at least 1"),
        ("pixelcnn_pp", "num_mixtures", 0, "model.num_mixtures=0 must be at least 1"),
        ("pixelcnn_pp", "num_mixtures", -1, "model.num_mixtures=-1 must be at least 1"),
        ("pixelcnn_pp", "dropout_rate", 1.5, r"model.dropout_rate=1.5 must be in \[0, 1\)"),
        ("gated_pixelcnn", "num_classes", -1, "model.num_classes=-1 must be at least 0"),
        ("row_lstm", "num_levels", 1, "model.num_levels=1 must be at least 2"),
    ]:
        config = ml_collections.ConfigDict({"name": name, "num_levels": 2} | {field: value})
        with pytest.raises(ValueError, match=message):
            build_model(config)
    model = pixelcnn(2)
    with pytest.raises(ValueError, match="unconditional"):
        model.init(jax.random.key(0), jnp.zeros((1, 3, 3, 1), jnp.int32), cond=jnp.zeros((1,)))
