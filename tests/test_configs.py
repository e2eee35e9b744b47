import importlib
import json
import math

import jax
import ml_collections
import pytest

from configs import common
from pixel_models import data
from pixel_models.data import splits
from pixel_models.training import steps
from pixel_models.training.experiment import Experiment

DATASETS = ["binarized_mnist", "mnist", "cifar10", "imagenet32", "imagenet64"]


def recipes():
    for name in DATASETS:
        module = importlib.import_module(f"configs.{name}")
        for model in module.RECIPES:
            conditional = model in module.CONDITIONAL
            embedded = (
                model in getattr(module, "EMBEDDING", common.EmbeddingNetwork("", 0, ())).recipes
            )
            options = ["", ",tiny"] + [",conditional", ",conditional,tiny"] * conditional
            for option in options + [",embedding", ",embedding,tiny"] * embedded:
                yield name, model + option


@pytest.mark.parametrize("dataset,arg", list(recipes()))
def test_every_recipe_builds(dataset, arg):
    config = importlib.import_module(f"configs.{dataset}").get_config(arg)
    spec = data.get_spec(config.dataset.name)
    assert config.model.num_levels == spec.num_levels
    assert config.reference
    experiment = Experiment.build(config, devices=jax.devices()[:1])  # traces the model
    assert sum(p.size for p in jax.tree.leaves(experiment.abstract_state.params)) > 0
    options = set(arg.split(",")[1:])
    conditioning = "label" if "conditional" in options else "none"
    assert config.conditioning == ("embedding" if "embedding" in options else conditioning)
    if arg.endswith("tiny"):  # the first examples of the recipe's own eval split
        sizes = {base: spec.num_examples(base) for base in spec.splits}
        (base, part), *rest = splits.split_slices(config.dataset.eval_split, sizes)
        assert not rest and len(range(sizes[base])[part]) == common.TINY_EVAL_EXAMPLES


def test_tiny_is_the_same_architecture_shrunk():
    for dataset, arg in recipes():
        if arg.endswith("tiny"):
            continue
        module = importlib.import_module(f"configs.{dataset}")
        paper, tiny = module.get_config(arg).model, module.get_config(f"{arg},tiny").model
        assert tiny.keys() == paper.keys() and tiny.name == paper.name, arg
        assert tiny.hidden_dim < paper.hidden_dim, arg
        for field, value in paper.items():
            assert tiny[field] <= value if isinstance(value, int) else tiny[field] == value, field


def test_bad_args():
    from configs import mnist

    with pytest.raises(ValueError, match="unknown config option"):
        mnist.get_config("pixelcnn,huge")
    with pytest.raises(ValueError, match="no mnist recipe for model 'row_lstmm'"):
        mnist.get_config("row_lstmm")
    with pytest.raises(ValueError, match="no conditional mnist recipe for 'pixelcnn'"):
        mnist.get_config("pixelcnn,conditional")
    with pytest.raises(ValueError, match="unknown config option"):  # a sweep now, not an option
        importlib.import_module("configs.binarized_mnist").get_config("pixelcnn,cpu20")
    parsed = common.parse_arg("pixelcnn, tiny", "mnist", ["pixelcnn"])
    assert parsed == common.Arg("pixelcnn", tiny=True, conditional=False)
    binarized_mnist = importlib.import_module("configs.binarized_mnist")
    with pytest.raises(ValueError, match="no binarized_mnist recipe for 'pixelcnn' conditioned on"):
        binarized_mnist.get_config("pixelcnn,embedding")
    with pytest.raises(ValueError, match="conditional .labels. or embedding, not both"):
        common.parse_arg("m,conditional,embedding", "d", ["m"], conditional=["m"], embedded=["m"])


def test_split_head():
    assert splits.head("validation", 8) == "validation[:8]"
    assert splits.head("train[45000:]", 8) == "train[45000:45008]"
    assert splits.head("train[10:12]", 8) == "train[10:12]"
    for spec in ["train[:90%]", "train+test"]:
        with pytest.raises(ValueError, match="cannot take the first 8"):
            splits.head(spec, 8)


# Every recipe's `cpu_chunk_pixels` as its recipe set it before the rule
# (`steps.cpu_chunk_pixels`) replaced the field: the same for every option.
CPU_CHUNK_PIXELS = {
    "binarized_mnist": dict(
        pixelcnn=2048,
        row_lstm=0,
        diagonal_bilstm=0,
        gated_pixelcnn=2048,
        pixelcnn_pp=8192,
        multiscale_pixelrnn=0,
        vae=0,
        pixel_vae=2048,
        draw=0,
    ),
    "mnist": dict(pixelcnn=2048, gated_pixelcnn=2048),
    "cifar10": dict(
        pixelcnn=2048,
        row_lstm=0,
        diagonal_bilstm=0,
        gated_pixelcnn=2048,
        pixelcnn_autoencoder=2048,
        pixelcnn_pp=8192,
        vae=0,
        pixel_vae=2048,
    ),
    "imagenet32": dict(row_lstm=0, multiscale_pixelrnn=0, gated_pixelcnn=2048),
    "imagenet64": dict(gated_pixelcnn=2048, multiscale_pixelrnn=0),
}


def test_cpu_chunk_pixels_rule_gives_every_recipe_its_former_value():
    args = list(recipes())
    assert {(d, a.split(",")[0]) for d, a in args} == {
        (d, m) for d, models in CPU_CHUNK_PIXELS.items() for m in models
    }
    for dataset, arg in args:
        config = importlib.import_module(f"configs.{dataset}").get_config(arg)
        assert config.cpu_chunk_pixels is None, (dataset, arg)  # the rule
        want = CPU_CHUNK_PIXELS[dataset][config.model.name]
        assert steps.cpu_chunk_pixels(config) == want, (dataset, arg)


def test_cpu_chunk_pixels_field_overrides_the_rule():
    from configs import binarized_mnist

    config = binarized_mnist.get_config("pixelcnn,tiny")  # batches of 8 and 64 images of 784 pixels
    for field, chunk_pixels, chunks in [(None, 2048, (2, 2)), (784, 784, (1, 1)), (0, 0, (8, 64))]:
        config.cpu_chunk_pixels = field
        assert steps.cpu_chunk_pixels(config) == chunk_pixels
        experiment = Experiment.build(config, devices=jax.devices("cpu")[:1])
        assert (experiment.train_chunk_size, experiment.eval_chunk_size) == chunks
    # A saved config (config.json) of an older run holds the number its recipe
    # set; one of a newer run holds null: the rule.
    saved = json.loads(binarized_mnist.get_config("row_lstm").to_json())
    for field, chunk_pixels in [(2048, 2048), (0, 0), (None, 0)]:
        saved["cpu_chunk_pixels"] = field
        assert steps.cpu_chunk_pixels(ml_collections.ConfigDict(saved)) == chunk_pixels


def test_cpu_chunk_pixels_flag_overrides_the_rule(tmp_path):
    from tests.helpers import run_ok

    for flag, shown in [([], "null"), (["--config.cpu_chunk_pixels=784"], "784")]:
        out, _ = run_ok(
            "experiments.train",
            "--config=configs/binarized_mnist.py:row_lstm,tiny",
            f"--workdir={tmp_path}",
            "--print_config",
            *flag,
        )
        assert f"cpu_chunk_pixels: {shown}\n" in out, out


@pytest.mark.parametrize("sweep,count", [("cpu20", 3), ("seeds", 6), ("zoo", 5)])
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


@pytest.mark.parametrize(
    "reference,figure",
    [
        ("PixelRNN paper Table 4: Row LSTM 80.54 nats", (80.54, "nats")),
        ("DRAW paper Table 2: 80.97 nats (a bound; 87.40 without attention)", (80.97, "nats")),
        ("PixelRNN paper Table 6: 3.86 bits/dim (32x32 validation)", (3.86, "bits/dim")),
        (
            "no published class-conditional CIFAR-10 figure; compare with the unconditional "
            "3.03 bits/dim",
            None,
        ),
        ("a paper with no figure", None),
    ],
)
def test_a_reference_names_its_published_figure(reference, figure):
    assert common.published(reference) == figure


def test_a_published_figure_is_converted_to_the_unit_asked_for():
    """`report` and `plot` both read a figure in their column's unit: nats per
    image of D subpixels is bits/dim times D * ln 2."""
    shape = (32, 32, 3)
    assert common.published_in("CIFAR-10 3.00 bits/dim", "bits/dim", shape) == 3.00
    nats = common.published_in("CIFAR-10 3.00 bits/dim", "nats", shape)
    assert nats == pytest.approx(3.00 * 3072 * math.log(2.0))
    assert common.published_in(f"{nats} nats", "bits/dim", shape) == pytest.approx(3.00)
    assert common.published_in("no published figure", "nats", shape) is None
