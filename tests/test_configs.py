import importlib

import jax
import pytest

from configs import common
from pixel_models import data
from pixel_models.data import splits
from pixel_models.training.experiment import Experiment

DATASETS = ["binarized_mnist", "mnist", "cifar10", "imagenet32", "imagenet64"]


def recipes():
    for name in DATASETS:
        module = importlib.import_module(f"configs.{name}")
        for model, recipe in module.RECIPES.items():
            options = ["", ",tiny"] + ([",conditional", ",conditional,tiny"] * recipe.conditional)
            options += [f",{variant}" for variant in recipe.variants]
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
    if arg.endswith("tiny"):  # the first examples of the recipe's own eval split
        sizes = {base: spec.num_examples(base) for base in spec.splits}
        (base, part), *rest = splits.split_slices(config.dataset.eval_split, sizes)
        assert not rest and len(range(sizes[base])[part]) == common.TINY_EVAL_EXAMPLES
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


def test_split_head():
    assert splits.head("validation", 8) == "validation[:8]"
    assert splits.head("train[45000:]", 8) == "train[45000:45008]"
    assert splits.head("train[10:12]", 8) == "train[10:12]"
    for spec in ["train[:90%]", "train+test"]:
        with pytest.raises(ValueError, match="cannot take the first 8"):
            splits.head(spec, 8)


def variants():
    for name in DATASETS:
        module = importlib.import_module(f"configs.{name}")
        for model, recipe in module.RECIPES.items():
            for variant in recipe.variants:
                yield name, model, variant


@pytest.mark.parametrize("dataset,model,variant", list(variants()))
def test_variants_change_their_recipe_only(dataset, model, variant):
    module = importlib.import_module(f"configs.{dataset}")
    config = module.get_config(f"{model},{variant}")
    assert config != module.get_config(model)
    for field, value in module.RECIPES[model].variants[variant].items():  # none overwritten
        for key, want in value.items() if isinstance(value, dict) else [(None, value)]:
            assert (config[field] if key is None else config[field][key]) == want, (field, key)
    for other, recipe in module.RECIPES.items():
        if variant not in recipe.variants:
            with pytest.raises(ValueError, match="unknown config option"):
                module.get_config(f"{other},{variant}")


@pytest.mark.parametrize("sweep,count", [("cpu20", 3), ("seeds", 6)])
def test_binarized_mnist_sweeps_resolve(sweep, count, tmp_path):
    # A subprocess: experiments.sweep defines absl flags other programs' tests define too.
    from tests.helpers import run_ok

    out, _ = run_ok(
        "experiments.sweep",
        f"--config=configs/binarized_mnist.py:{sweep}",
        f"--workdir={tmp_path}",
        "--dry_run",
    )
    names = [line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("[")]
    assert len(set(names)) == len(names) == count, out
