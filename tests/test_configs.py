import importlib

import jax
import pytest

from configs import common
from pixel_models import data
from pixel_models.training.experiment import Experiment

DATASETS = ["binarized_mnist", "mnist", "cifar10"]


def recipes():
    for name in DATASETS:
        module = importlib.import_module(f"configs.{name}")
        for model, recipe in module.RECIPES.items():
            options = ["", ",tiny"] + ([",conditional", ",conditional,tiny"] * recipe.conditional)
            for option in options:
                yield name, model + option


@pytest.mark.parametrize("dataset,arg", list(recipes()))
def test_every_recipe_builds(dataset, arg):
    config = importlib.import_module(f"configs.{dataset}").get_config(arg)
    spec = data.get_spec(config.dataset.name)
    assert config.model.num_levels == spec.num_levels
    assert config.reference
    experiment = Experiment.build(config, devices=jax.devices()[:1])  # traces the model
    assert sum(p.size for p in jax.tree.leaves(experiment.abstract_state.params)) > 0
    assert (config.conditioning == "label") == arg.endswith(("conditional", "conditional,tiny"))
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
    with pytest.raises(ValueError, match="no conditional mnist recipe for 'pixelcnn'"):
        mnist.get_config("pixelcnn,conditional")
    assert common.parse_arg("pixelcnn, tiny") == ("pixelcnn", {"tiny"})
