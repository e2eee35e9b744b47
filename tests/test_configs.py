import importlib

import jax
import jax.numpy as jnp
import pytest

from configs import common
from pixel_models import build_model, data
from pixel_models.training import train_state
from pixel_models.training.optimizers import make_optimizer

DATASETS = ["binarized_mnist", "mnist", "cifar10"]


def recipes():
    for name in DATASETS:
        module = importlib.import_module(f"configs.{name}")
        for model in module.RECIPES:
            for arg in (model, f"{model},tiny"):
                yield name, arg


@pytest.mark.parametrize("dataset,arg", list(recipes()))
def test_every_recipe_builds(dataset, arg):
    config = importlib.import_module(f"configs.{dataset}").get_config(arg)
    spec = data.get_spec(config.dataset.name)
    assert config.model.num_levels == spec.num_levels
    assert config.reference
    model, optimizer = build_model(config.model), make_optimizer(config.optimizer)
    image = jnp.zeros((1, *spec.image_shape), jnp.int32)
    state = jax.eval_shape(
        lambda: train_state.create_train_state(model, optimizer, jax.random.PRNGKey(0), image)
    )
    assert sum(p.size for p in jax.tree.leaves(state.params)) > 0
    # The PixelRNNs' row scans take their batches whole on CPU.
    if config.model.name in ("row_lstm", "diagonal_bilstm"):
        assert config.cpu_chunk_pixels == 0


def test_tiny_is_smaller_than_the_paper_model():
    from configs import cifar10

    paper, tiny = cifar10.get_config("pixelcnn"), cifar10.get_config("pixelcnn,tiny")
    assert tiny.model.hidden_dim < paper.model.hidden_dim
    assert tiny.model.name == paper.model.name


def test_bad_args():
    from configs import mnist

    with pytest.raises(ValueError, match="unknown config option"):
        mnist.get_config("pixelcnn,huge")
    with pytest.raises(ValueError, match="no mnist recipe for model 'row_lstmm'"):
        mnist.get_config("row_lstmm")
    assert common.parse_arg("pixelcnn, tiny") == ("pixelcnn", {"tiny"})
