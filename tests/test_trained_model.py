"""`pixel_models.load`: a run that the command lines trained gives, from
Python, the numbers the command lines give, and refuses what it cannot score."""

import json
import re

import jax
import numpy as np
import pytest

import pixel_models
from configs import binarized_mnist
from pixel_models.training import workdirs
from tests.helpers import TINY, cli, run_ok

SPLIT = "test[:40]"


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """A tiny PixelCNN trained, evaluated and sampled by the command lines."""
    workdir = tmp_path_factory.mktemp("cli_run")
    run_ok(
        "experiments.train",
        f"--config={TINY}",
        f"--workdir={workdir}",
        "--config.num_train_steps=4",
        "--config.eval_every_steps=0",
    )
    run_ok("experiments.evaluate", f"--workdir={workdir}", f"--split={SPLIT}")
    run_ok(
        "experiments.sample",
        f"--workdir={workdir}",
        "--num_samples=3",
        f"--output={workdir / 'samples.png'}",
        "--seed=5",
    )
    return workdir


@pytest.fixture(scope="module")
def trained(cli_run):
    return pixel_models.load(cli_run)


@pytest.fixture(scope="module")
def test_images(trained):
    return pixel_models.data.load_split(trained.config.dataset, SPLIT).batch(np.arange(40))["image"]


def test_load_gives_the_evaluate_cli_nll(cli_run, trained, test_images):
    evaluated = json.loads((cli_run / "eval_test_40.json").read_text())
    assert trained.step == evaluated["step"] == 4
    nll = -trained.log_prob(test_images)
    assert nll.shape == (40,)
    np.testing.assert_allclose(nll.mean(), evaluated["nll_nats"], rtol=1e-5)
    np.testing.assert_allclose(
        trained.bits_per_dim(test_images).mean(), evaluated["bits_per_dim"], rtol=1e-5
    )


def test_load_draws_the_sample_cli_images(cli_run, trained):
    samples = trained.sample(3, jax.random.key(5))
    assert samples.dtype == np.uint8 and samples.shape == (3, 28, 28, 1)
    np.testing.assert_array_equal(samples, np.load(cli_run / "samples.npy"))
    naive = trained.sample(3, jax.random.key(5), sampler="naive")
    np.testing.assert_array_equal(naive, samples)


def test_complete_keeps_the_given_rows(trained, test_images):
    completed = trained.complete(test_images[:2], rows=20, rng=jax.random.key(0))
    assert completed.dtype == np.uint8 and completed.shape == (2, 28, 28, 1)
    np.testing.assert_array_equal(completed[:, :20], test_images[:2, :20])


@pytest.mark.parametrize(
    "images,message",
    [
        (
            np.full((2, 28, 28, 1), 255, np.uint8),
            r"integer levels in \[0, 2\), got values in \[255",
        ),
        (np.full((2, 28, 28, 1), 0.5, np.float32), "not scaled floats"),
        (np.full((2, 28, 28, 1), -1), r"got values in \[-1"),
        (np.zeros((28, 28, 1), np.uint8), r"images must be \[B, 28, 28, 1\]"),
        (np.zeros((2, 32, 32, 3), np.uint8), r"images must be \[B, 28, 28, 1\]"),
    ],
)
def test_impossible_images_are_refused(trained, images, message):
    with pytest.raises(ValueError, match=message):
        trained.log_prob(images)


def test_conditioning_an_unconditional_run_is_refused(trained, test_images):
    with pytest.raises(ValueError, match="unconditional"):
        trained.sample(2, jax.random.key(0), labels=[1, 2])
    with pytest.raises(ValueError, match="unconditional"):
        trained.log_prob(test_images[:2], cond=np.array([1, 2]))


def test_a_folder_without_a_run_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a training run"):
        pixel_models.load(tmp_path)


def test_a_run_without_checkpoints_says_to_train_it(tmp_path):
    """A run whose training saved its config but no checkpoint yet: load and
    the sample CLI say where they looked and how to make one."""
    workdirs.save_config(binarized_mnist.get_config("pixelcnn,tiny"), tmp_path)
    message = (
        f"no checkpoint in {tmp_path}/checkpoints: train it first "
        f"(python -m experiments.train --workdir={tmp_path})"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        pixel_models.load(tmp_path)
    process = cli("experiments.sample", f"--workdir={tmp_path}", f"--output={tmp_path / 'g.png'}")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1 and err.strip().splitlines()[-1] == f"sample: error: {message}"


@pytest.mark.parametrize(
    "flag,message",
    [
        (
            "--batch_size=0",
            "eval_batch_size=0 must be a positive multiple of the number of devices (1), e.g. "
            "--batch_size=1 for evaluate, --config.eval_batch_size=1 for train",
        ),
        ("--importance_samples=10", "--importance_samples: pixelcnn has an exact likelihood"),
    ],
)
def test_evaluate_refuses_a_flag_that_does_not_apply_naming_it(cli_run, flag, message):
    process = cli("experiments.evaluate", f"--workdir={cli_run}", flag)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert err.strip().splitlines()[-1] == f"evaluate: error: {message}"


def test_the_ema_of_a_run_without_one_is_refused(cli_run):
    with pytest.raises(ValueError, match="keeps no EMA"):
        pixel_models.load(cli_run, params="ema")
    assert pixel_models.load(cli_run, params="raw").step == 4
