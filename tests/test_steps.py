"""The train and eval steps take a batch in sequential chunks without changing the result."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import binarized_mnist
from pixel_models import build_model
from pixel_models.training import steps, train_state
from pixel_models.training.optimizers import make_optimizer


@pytest.fixture(scope="module")
def tiny_pixelcnn():
    model = build_model(binarized_mnist.get_config("pixelcnn,tiny").model)
    image = jnp.asarray(np.random.default_rng(0).integers(0, 2, (12, 6, 5, 1)), jnp.int32)
    return model, model.init(jax.random.PRNGKey(0), image)["params"], image


@pytest.mark.parametrize("chunk_size", [1, 4])
def test_chunked_eval_step_equals_whole_batch(tiny_pixelcnn, chunk_size):
    model, params, image = tiny_pixelcnn
    mask = jnp.arange(12) % 5 != 2  # padded rows land in several chunks
    batch = {"image": image, "mask": mask}
    whole = jax.jit(functools.partial(steps.eval_step, model))(params, batch)
    chunked = jax.jit(functools.partial(steps.eval_step, model, chunk_size=chunk_size))(
        params, batch
    )
    assert int(chunked["count"]) == int(whole["count"]) == 10
    np.testing.assert_allclose(chunked["nll_sum"], whole["nll_sum"], rtol=1e-6)


def test_chunked_train_step_equals_whole_batch(tiny_pixelcnn):
    model, _, image = tiny_pixelcnn
    optimizer = make_optimizer(binarized_mnist.get_config("pixelcnn,tiny").optimizer)
    state = train_state.create_train_state(model, optimizer, jax.random.PRNGKey(0), image)
    results = []
    for chunk_size in (None, 3):
        step = jax.jit(functools.partial(steps.train_step, model, optimizer, chunk_size=chunk_size))
        results.append(jax.device_get(step(state, {"image": image})))
    (whole, whole_metrics), (chunked, chunked_metrics) = results
    for key in ("loss", "grad_norm"):
        np.testing.assert_allclose(chunked_metrics[key], whole_metrics[key], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(chunked.params), jax.tree.leaves(whole.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_chunk_size_must_divide_the_batch(tiny_pixelcnn):
    model, params, image = tiny_pixelcnn
    with pytest.raises(ValueError, match="does not divide the batch of 12"):
        steps.eval_step(model, params, {"image": image, "mask": jnp.ones(12, bool)}, chunk_size=5)


def test_step_chunk_size_policy():
    mnist, cifar = (28, 28, 1), (32, 32, 3)
    # CPU: at most 16,384 pixels per device at a time, dividing its share.
    assert steps.step_chunk_size(32, 1, mnist, "cpu", 16_384) == 16
    assert steps.step_chunk_size(64, 1, mnist, "cpu", 16_384) == 16
    assert steps.step_chunk_size(64, 1, cifar, "cpu", 16_384) == 16
    assert steps.step_chunk_size(24, 1, mnist, "cpu", 16_384) == 12
    assert steps.step_chunk_size(64, 8, mnist, "cpu", 16_384) == 64  # 8 images per device
    assert steps.step_chunk_size(64, 8, mnist, "cpu", 784) == 8  # 1 per device
    assert steps.step_chunk_size(8, 1, (256, 256, 3), "cpu", 16_384) == 1
    # 0 turns chunks off; accelerators always take the whole batch.
    assert steps.step_chunk_size(64, 1, mnist, "cpu", 0) == 64
    assert steps.step_chunk_size(64, 1, mnist, "gpu", 16_384) == 64
    assert steps.step_chunk_size(64, 4, mnist, "tpu", 16_384) == 64
    with pytest.raises(ValueError, match="must be >= 0"):
        steps.step_chunk_size(64, 1, mnist, "cpu", -1)
