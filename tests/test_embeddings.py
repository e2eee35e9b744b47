"""Conditioning on a trained network's embeddings (`pixel_models.embeddings`):
the data path, `load`, sampling from held-out images' embeddings and between
two, and the refusals. The embedding network is the shipped VAE."""

import json

import jax
import numpy as np
import pytest
from PIL import Image

from configs import binarized_mnist
from pixel_models import data, embeddings, load
from pixel_models.trained_model import load_embedding_network
from pixel_models.training import trainer
from pixel_models.training.experiment import Experiment
from tests.helpers import ROOT, cli, run_ok

VAE = ROOT / "pretrained/binarized_mnist/vae"


def embedded_config(data_dir):
    """`gated_pixelcnn,tiny,embedding` on 256 training images, the VAE by its absolute path."""
    config = binarized_mnist.get_config("gated_pixelcnn,tiny,embedding")
    config.embedding.workdir = str(VAE)
    config.dataset.update(
        data_dir=str(data_dir), train_split="train[:256]", eval_split="validation[:8]"
    )
    config.update(num_train_steps=4, eval_every_steps=4, checkpoint_every_steps=4)
    return config


@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory, data_dir):
    """A 4-step run conditioned on the VAE's embeddings: `(Run, workdir)`."""
    workdir = tmp_path_factory.mktemp("embedded")
    run = trainer.prepare(embedded_config(data_dir), workdir)
    trainer.train(run, workdir)
    return run, workdir


@pytest.fixture(scope="module")
def test_images(data_dir):
    config = binarized_mnist.get_config("vae")
    config.dataset.data_dir = str(data_dir)
    return data.load_split(config.dataset, "test[:6]").batch(np.arange(6))["image"]


def test_each_example_carries_the_networks_code_of_its_own_image(embedded_run):
    run, workdir = embedded_run
    assert run.experiment.batch_keys == ("image", "embedding")
    assert run.experiment.likelihood() == "p(x | embedding)"  # what evaluate writes
    metrics = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert any("eval_nll_nats" in row for row in metrics)
    indices = np.array([5, 0, 200, 17])
    for source in (run.train_data, run.eval_data):
        batch = source.batch(indices % len(source))
        assert batch["embedding"].shape == (4, 50) and batch["embedding"].dtype == np.float32
        np.testing.assert_allclose(
            batch["embedding"], load(VAE).code(batch["image"]), rtol=1e-5, atol=1e-6
        )


def test_load_scores_each_image_given_its_own_embedding(embedded_run, test_images):
    _, workdir = embedded_run
    trained = load(workdir)
    assert trained.embedding_network.config.model.name == "vae"
    own = trained.code(test_images)
    given_own = trained.log_prob(test_images, cond=own)
    np.testing.assert_allclose(trained.log_prob(test_images), given_own, rtol=1e-6)
    # The embedding is used: another image's changes the score.
    swapped = trained.log_prob(test_images, cond=own[::-1].copy())
    assert np.abs(swapped - given_own).max() > 1e-3


def test_samples_need_embeddings_of_the_right_shape(embedded_run, test_images):
    trained = load(embedded_run[1])
    rng = jax.random.key(0)
    with pytest.raises(ValueError, match="conditioned on embeddings: give cond"):
        trained.sample(2, rng)
    with pytest.raises(ValueError, match=r"embeddings must be floats \[2, 50\]"):
        trained.sample(2, rng, cond=np.zeros((3, 50), np.float32))
    with pytest.raises(ValueError, match="labels given|must be floats"):
        trained.sample(2, rng, labels=[1, 2])
    samples = trained.sample(2, rng, cond=trained.code(test_images[:2]))
    assert samples.shape == (2, 28, 28, 1) and samples.max() <= 1
    completed = trained.complete(test_images[:2], 14, rng)
    np.testing.assert_array_equal(completed[:, :14], test_images[:2, :14])


def test_cli_samples_given_held_out_embeddings_and_between_two(embedded_run, tmp_path):
    workdir = embedded_run[1]
    given = tmp_path / "given.png"
    codes = "--code_split=test[:4]"
    args = [f"--workdir={workdir}", "--num_samples=2", "--num_completions=3", codes]
    run_ok("experiments.sample", *args, f"--output={given}")
    # Per test image a row: the image, then 3 samples given its embedding.
    assert np.load(given.with_suffix(".npy")).shape == (6, 28, 28, 1)
    assert Image.open(given).size == (4 * 30 + 2, 2 * 30 + 2)
    between = tmp_path / "between.png"
    args = [f"--workdir={workdir}", "--interpolate=0,3", "--interpolation_steps=3", codes]
    run_ok("experiments.sample", *args, f"--output={between}")
    assert np.load(between.with_suffix(".npy")).shape == (3, 28, 28, 1)


@pytest.mark.parametrize(
    "change,message",
    [
        (dict(workdir="no/such/run"), "embedding.workdir=no/such/run: no/such/run has no"),
        (
            dict(workdir=str(ROOT / "pretrained/binarized_mnist/pixelcnn")),
            "pixelcnn has no code of an image",
        ),
        (dict(dim=49), "embedding.dim=49, but embedding.workdir=.* gives 50"),
    ],
)
def test_a_bad_embedding_network_is_refused(data_dir, change, message):
    config = embedded_config(data_dir)
    config.embedding.update(change)
    with pytest.raises(ValueError, match=message):
        load_embedding_network(config)


def test_an_embedding_run_without_its_network_is_refused(data_dir):
    config = embedded_config(data_dir)
    del config.embedding
    with pytest.raises(ValueError, match="conditioning='embedding' needs config.embedding"):
        Experiment.build(config, devices=jax.devices()[:1])


def test_embeddings_of_another_length_than_the_split_are_refused(data_dir):
    source = data.ImageSource.from_arrays(np.zeros((5, 28, 28, 1), np.uint8))
    with pytest.raises(ValueError, match="4 embeddings for a split of 5 examples"):
        embeddings.EmbeddedSource(source, np.zeros((4, 50), np.float32))


def test_train_refuses_a_missing_network_with_one_line(tmp_path):
    config = "--config=configs/binarized_mnist.py:gated_pixelcnn,tiny,embedding"
    process = cli(
        "experiments.train", config, f"--workdir={tmp_path}", "--config.embedding.workdir=nowhere"
    )
    _, err = process.communicate(timeout=120)
    assert process.returncode != 0
    assert err.strip().splitlines()[-1].startswith("train: error: embedding.workdir=nowhere"), err
