"""The trainer and its command lines: sharding equivalence, exact resume
after SIGKILL/SIGTERM, corrupt checkpoints, NaN stop, full-split evaluation,
and the one-line errors on bad input."""

import json
import os
import pathlib
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

import pixel_models
from configs import binarized_mnist
from pixel_models import data, likelihood
from pixel_models.training import (
    checkpoints,
    evaluation,
    metric_writer,
    steps,
    train_state,
    trainer,
    workdirs,
)
from pixel_models.training.experiment import Experiment
from tests.helpers import TINY, cli, run_ok, tiny_config


def restore(workdir, config, step=None) -> train_state.TrainState:
    """The newest checkpoint of `workdir` (or `step`), on the host."""
    experiment = Experiment.build(config)
    manager = checkpoints.make_manager(workdir, create=False)
    state, _ = checkpoints.restore_latest(manager, experiment.abstract_state, step)
    return jax.device_get(state)


def saved_steps(workdir) -> list[int]:
    folder = pathlib.Path(workdir) / "checkpoints"
    return (
        sorted(int(p.name) for p in folder.glob("*") if p.name.isdigit()) if folder.exists() else []
    )


def assert_bitwise_equal(a, b):
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_one_step_on_8_devices_equals_1_device(data_dir):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    out, _ = run_ok("tests.multi_device_check", env=env)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["devices"] == 8 and result["shards"] == [8, 1]
    assert result["loss_rel_diff"] < 1e-5
    assert result["params_rel_diff"] < 1e-5
    assert result["eval_rel_diff"] < 1e-5
    assert result["chunked_rel_diff"] < 1e-5
    assert result["chunked_collectives"] == ["all-reduce"]  # sums; no rows move
    assert "multiple of the number of devices (8)" in result["batch_error"]
    assert result["same_samples"]  # a sample batch sharded over 8 devices draws the same


def tensorboard_steps(workdir, tag: str) -> list[int]:
    """The steps of `tag` as TensorBoard shows them: its own reader over
    every event file, stale points of a resumed run purged."""
    return [event.step for event in tensorboard_events(workdir).Scalars(tag)]


def tensorboard_events(workdir):
    """TensorBoard's own reader over every event file of `workdir`, loaded."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(workdir / "tensorboard"))
    accumulator.Reload()
    return accumulator


@pytest.mark.slow
def test_killed_and_preempted_run_resumes_bitwise_identically(tmp_path, data_dir):
    steps_flags = [
        # 400 steps: after the SIGTERM stop, enough are left that SIGINT
        # always lands before the end (with 300 it sometimes finished first).
        "--config.num_train_steps=400",
        "--config.checkpoint_every_steps=20",
        "--config.log_every_steps=20",
        "--config.eval_every_steps=200",
        "--config.dataset.eval_split=validation[:64]",
    ]
    reference = cli(
        "experiments.train", f"--config={TINY}", f"--workdir={tmp_path / 'ref'}", *steps_flags
    )
    workdir = tmp_path / "run"
    command = [f"--config={TINY}", f"--workdir={workdir}", *steps_flags]
    chooser = random.Random(0)

    def interrupt(after_step: int, sig: int) -> tuple[int, str]:
        process = cli("experiments.train", *command)
        while not saved_steps(workdir) or saved_steps(workdir)[-1] < after_step:
            assert process.poll() is None, process.communicate()[1]
            time.sleep(0.01)
        time.sleep(chooser.uniform(0.0, 0.3))  # any moment, saves in flight included
        process.send_signal(sig)
        _, err = process.communicate(timeout=120)
        return process.returncode, err

    assert interrupt(40, signal.SIGKILL)[0] == -signal.SIGKILL
    assert interrupt(120, signal.SIGKILL)[0] == -signal.SIGKILL
    stopped = [170]
    for sig, status in [(signal.SIGTERM, 143), (signal.SIGINT, 130)]:
        # Once the new process has saved a step of its own.
        returncode, err = interrupt(stopped[-1] + 1, sig)
        assert returncode == status, err
        # One line, no traceback: the step it saved and how to go on.
        last_line = err.strip().splitlines()[-1]
        assert f"by {sig.name}; checkpoint saved" in last_line and "Traceback" not in err, err
        stopped.append(saved_steps(workdir)[-1])
        assert f"stopped at step {stopped[-1]} " in last_line
    stopped = stopped[1:]
    assert 170 < stopped[0] < stopped[1] < 400
    # Resume with the saved config alone.
    out, err = run_ok("experiments.train", f"--workdir={workdir}")
    assert "step 400" in out
    assert "eval:" not in err  # a log file gets no stub of the periodic evaluation's bar
    assert reference.wait(timeout=300) == 0, reference.communicate()[1]

    config = tiny_config(data_dir)
    assert_bitwise_equal(restore(workdir, config), restore(tmp_path / "ref", config))
    rows = metric_writer.read_metrics(workdir)
    train_steps = [r["step"] for r in rows if "loss" in r]
    # The killed runs' tails were dropped; SIGTERM and SIGINT logged the step they saved.
    assert train_steps == sorted({*range(20, 401, 20), *stopped})
    # TensorBoard shows each step once: each resume purged the killed run's tail.
    assert tensorboard_steps(workdir, "loss") == train_steps
    assert tensorboard_steps(workdir, "eval_bits_per_dim") == [200, 400]


@pytest.mark.slow
def test_two_processes_train_like_one_process_with_two_devices(tmp_path, data_dir):
    """Multi-host on one machine: 2 processes (gloo collectives, 1 CPU device
    each, each loading its own rows) against 1 process with 2 devices."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    flags = [
        f"--config={TINY}",
        "--config.num_train_steps=6",
        "--config.checkpoint_every_steps=3",
        "--config.eval_every_steps=6",
        "--config.dataset.eval_split=validation[:37]",
        "--config.eval_batch_size=8",
    ]
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo")
    processes = [
        cli(
            "experiments.train",
            *flags,
            f"--workdir={tmp_path / 'two'}",
            f"--coordinator_address=127.0.0.1:{port}",
            "--num_processes=2",
            f"--process_id={i}",
            env=env,
        )
        for i in range(2)
    ]
    env_one = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    single = cli("experiments.train", *flags, f"--workdir={tmp_path / 'one'}", env=env_one)
    outputs = [p.communicate(timeout=600) for p in (*processes, single)]
    assert [p.returncode for p in (*processes, single)] == [0, 0, 0], outputs
    summaries = [
        [line for line in out.splitlines() if line.startswith("step 6:")] for out, _ in outputs
    ]
    assert summaries[1] == []  # only process 0 prints the summary

    def numbers(summary: str) -> list[float]:  # the losses, bits/dim and counts it reports
        return [float(x) for x in re.findall(r"\d+\.?\d*", summary.split("; workdir")[0])]

    # gloo's sums and the local ones differ in the last float32 bits.
    np.testing.assert_allclose(numbers(summaries[0][0]), numbers(summaries[2][0]), rtol=1e-5)
    config = tiny_config(data_dir)
    two, one = restore(tmp_path / "two", config), restore(tmp_path / "one", config)
    for a, b in zip(jax.tree.leaves(two), jax.tree.leaves(one), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    """A tiny run of 20 steps with checkpoints at 10 and 20."""
    workdir = tmp_path_factory.mktemp("trained")
    config = tiny_config(data_dir)
    summary = trainer.train(trainer.prepare(config, workdir), workdir)
    return workdir, config, summary


@pytest.mark.slow
def test_a_conditional_model_trains_and_evaluates_on_real_labels(tmp_path, data_dir):
    """The CLIs feed the dataset's labels to the model: the evaluated NLL is
    the one under the true labels, and other labels give another."""
    workdir = tmp_path / "run"
    run_ok(
        "experiments.train",
        "--config=configs/mnist.py:gated_pixelcnn,conditional,tiny",
        f"--workdir={workdir}",
        "--config.num_train_steps=4",
        "--config.eval_every_steps=4",
        "--config.dataset.eval_split=train[50000:50016]",
    )
    out, _ = run_ok("experiments.evaluate", f"--workdir={workdir}", "--split=test[:24]")
    result = json.loads(out.strip().splitlines()[-1])
    assert result["conditioned_on"] == "label" and result["likelihood"] == "p(x | label)"
    assert result["num_examples"] == 24

    trained = pixel_models.load(workdir)
    test = data.load_split(trained.config.dataset, "test[:24]").batch(np.arange(24))
    nll = -trained.log_prob(test["image"], test["label"])
    np.testing.assert_allclose(result["nll_nats"], float(nll.mean()), rtol=1e-5)
    wrong = -trained.log_prob(test["image"], (test["label"] + 1) % 10)
    assert abs(float(wrong.mean()) - result["nll_nats"]) > 1e-3
    with pytest.raises(ValueError, match="class-conditional: give 24 labels"):
        trained.log_prob(test["image"])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 10\)"):
        trained.sample(2, jax.random.key(0), labels=[3, 10])
    # Samples of a conditional run: one row per label.
    output = tmp_path / "labels.png"
    args = ["--num_samples=2", "--labels=3,7", f"--output={output}"]
    run_ok("experiments.sample", f"--workdir={workdir}", *args)
    samples = np.load(output.with_suffix(".npy"))
    assert samples.shape == (4, 28, 28, 1)
    # From Python: one label per image, the same images for the same seed.
    labels = np.repeat([3, 7], 2)
    np.testing.assert_array_equal(trained.sample(4, jax.random.key(0), labels=labels), samples)
    width, height = Image.open(output).size
    assert height == 2 * 30 + 2 and width > 2 * 30 + 2  # a margin holds each row's label
    process = cli("experiments.sample", f"--workdir={workdir}", *args[:1], "--labels=10", args[2])
    assert "--labels must be in [0, 10)" in process.communicate(timeout=120)[1]


def test_a_dataset_without_labels_refuses_a_conditional_run(data_dir):
    with pytest.raises(ValueError, match="no conditional binarized_mnist recipe"):
        binarized_mnist.get_config("gated_pixelcnn,conditional")
    config = binarized_mnist.get_config("gated_pixelcnn,tiny")
    config.conditioning = "label"
    with pytest.raises(ValueError, match="binarized_mnist has no labels"):
        Experiment.build(config)


def test_training_writes_config_metrics_tensorboard_and_checkpoints(trained):
    workdir, config, summary = trained
    assert summary["step"] == 20 and summary["eval_num_examples"] == 64
    assert workdirs.load_config(workdir).to_dict() == json.loads(config.to_json())
    rows = metric_writer.read_metrics(workdir)
    train_rows = [r for r in rows if "loss" in r]
    assert [r["step"] for r in train_rows] == [5, 10, 15, 20]
    assert set(train_rows[0]) >= {
        "loss",
        "loss_bits_per_dim",
        "learning_rate",
        "grad_norm",
        "examples_per_sec",
    }
    assert train_rows[-1]["loss"] < train_rows[0]["loss"]
    assert [r["step"] for r in rows if "eval_bits_per_dim" in r] == [10, 20]
    assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
    assert saved_steps(workdir) == [10, 20]
    assert "bits/dim" in trainer.final_line(summary, config.num_train_steps)


def test_a_finished_run_has_nothing_to_train(trained, tmp_path, data_dir):
    workdir, config, _ = trained
    before = {p: p.stat().st_mtime_ns for p in workdir.rglob("*") if p.is_file()}
    again = trainer.train(trainer.prepare(config, workdir), workdir)
    assert trainer.final_line(again, config.num_train_steps).startswith(
        "nothing to train: the run is already at step 20 (num_train_steps=20)"
    )
    assert {p: p.stat().st_mtime_ns for p in workdir.rglob("*") if p.is_file()} == before
    zero = tiny_config(data_dir, num_train_steps=0)
    summary = trainer.train(trainer.prepare(zero, tmp_path), tmp_path)
    assert "already at step 0 (num_train_steps=0)" in trainer.final_line(summary, 0)
    assert not (tmp_path / workdirs.CONFIG_FILE).exists()


def test_tensorboard_serves_the_run(trained):
    """The README's `tensorboard --logdir` starts and lists the run's scalars."""
    import urllib.request

    workdir, _, _ = trained
    command = pathlib.Path(sys.executable).parent / "tensorboard"  # installed with the project
    server = subprocess.Popen(
        [command, f"--logdir={workdir / 'tensorboard'}", "--port=0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in server.stderr:
            if line.startswith("TensorBoard ") and " at http" in line:
                url = line.split(" at ")[1].split()[0]
                break
        else:
            pytest.fail("tensorboard exited without serving")
        with urllib.request.urlopen(url + "data/plugin/scalars/tags", timeout=60) as response:
            tags = json.loads(response.read())
    finally:
        server.kill()
        server.wait()
    assert {"loss", "eval_bits_per_dim"} <= set(tags["."])


def damage(checkpoint: pathlib.Path) -> None:
    """Truncate every array file of a saved step: reads fail while others are in flight."""
    for f in (checkpoint / "state").rglob("*"):
        if f.is_file() and f.parent.name == "d":
            f.write_bytes(f.read_bytes()[:10])


def test_corrupt_latest_checkpoint_falls_back_to_the_previous(trained, tmp_path, caplog):
    workdir, config, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy)
    damage(copy / "checkpoints" / "20")
    # From the command line: one warning line, none of orbax's asyncio noise;
    # the damaged step asked for by name is a one-line error.
    _, err = run_ok("experiments.evaluate", f"--workdir={copy}", "--split=test[:8]")
    assert "Traceback" not in err and "Event loop is closed" not in err, err
    assert "checkpoint at step 20 does not restore" in err and len(err.splitlines()) == 1, err
    named = cli(
        "experiments.evaluate", f"--workdir={copy}", "--split=test[:8]", "--checkpoint_step=20"
    )
    _, err = named.communicate(timeout=300)
    assert named.returncode == 1
    assert err.strip().splitlines() == [err.strip()] and "step 20 does not restore" in err, err

    experiment = Experiment.build(config)
    manager = checkpoints.make_manager(copy, create=False)
    state, data_state = checkpoints.restore_latest(manager, experiment.abstract_state)
    assert int(state.step) == 10 and data_state["next_index"] == 10
    assert "step 20 does not restore" in caplog.text
    # Training again deletes step 20, redoes steps 11..20 and ends where the intact run ended.
    trainer.train(trainer.prepare(config, copy), copy)
    assert_bitwise_equal(restore(copy, config), restore(workdir, config))


def test_evaluate_cli_scores_every_example(trained, data_dir):
    workdir, config, _ = trained
    out, _ = run_ok(
        "experiments.evaluate",
        f"--workdir={workdir}",
        "--split=test[:37]",
        "--batch_size=8",
        "--checkpoint_step=10",
    )
    # An explicit step has its own file: the newest step's eval_test_37.json is kept.
    assert not (workdir / "eval_test_37.json").exists()
    result = json.loads((workdir / "eval_test_37_step10.json").read_text())
    assert result == json.loads(out.strip().splitlines()[-1])
    assert result["num_examples"] == 37 and result["split"] == "test[:37]"
    assert result["step"] == 10 and result["params"] == "raw"
    assert result["conditioned_on"] is None and result["likelihood"] == "p(x)"

    state = restore(workdir, config, step=10)
    images = data.load_split(config.dataset, "test[:37]").batch(np.arange(37))["image"]
    nll = -likelihood.log_prob(Experiment.build(config).model, {"params": state.params}, images)
    np.testing.assert_allclose(result["nll_nats"], float(nll.mean()), rtol=1e-5)
    assert result["bits_per_dim"] == pytest.approx(result["nll_nats"] / (784 * np.log(2)))


def test_full_split_evaluation_pads_and_masks(data_dir, capfd):
    config = tiny_config(data_dir, eval_batch_size=8)
    experiment = Experiment.build(config)
    state = experiment.init_state()
    source = data.load_split(config.dataset, "test[:21]")
    capfd.readouterr()
    result = evaluation.evaluate(experiment, state.params, source)
    assert capfd.readouterr().err == ""  # not a terminal, and short: no progress-bar stub
    images = source.batch(np.arange(len(source)))["image"]
    nll = -likelihood.log_prob(experiment.model, {"params": state.params}, images)
    assert result["num_examples"] == 21
    np.testing.assert_allclose(result["nll_nats"], float(nll.mean()), rtol=1e-5)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, data_dir, monkeypatch):
    original = steps.train_step

    def poisoned(model, optimizer, state, batch, **kwargs):
        new_state, metrics = original(model, optimizer, state, batch, **kwargs)
        bad = state.step >= 6  # from the 7th step on
        metrics["loss"] = jnp.where(bad, jnp.nan, metrics["loss"])
        params = jax.tree.map(lambda p: jnp.where(bad, jnp.nan, p), new_state.params)
        return new_state.replace(params=params), metrics

    monkeypatch.setattr(steps, "train_step", poisoned)
    config = tiny_config(data_dir, checkpoint_every_steps=5, log_every_steps=1)
    with pytest.raises(trainer.TrainingDiverged, match="loss is nan at step 7"):
        trainer.train(trainer.prepare(config, tmp_path), tmp_path)
    assert saved_steps(tmp_path) == [5]
    state = restore(tmp_path, config)
    assert all(np.isfinite(p).all() for p in jax.tree.leaves(state.params))


def test_a_finished_run_is_extended_by_setting_its_steps(trained, tmp_path):
    """`train --workdir=DIR --config.num_train_steps=N`, no --config: DIR's
    saved run goes on, changed only as a resume may change it."""
    workdir = tmp_path / "run"
    shutil.copytree(trained[0], workdir)
    out, _ = run_ok("experiments.train", f"--workdir={workdir}", "--config.num_train_steps=22")
    assert out.startswith("step 22:")
    assert workdirs.load_config(workdir).num_train_steps == 22
    process = cli("experiments.train", f"--workdir={workdir}", "--config.seed=3")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1 and "holds a different run (seed: 0 -> 3)" in err, err


def test_changed_architecture_is_refused_but_more_steps_and_a_reference_are_allowed(trained):
    workdir, config, _ = trained
    wider = config.copy_and_resolve_references()
    wider.model.hidden_dim = 12
    with pytest.raises(ValueError, match="model.hidden_dim: 8 -> 12"):
        trainer.prepare(wider, workdir)
    longer = config.copy_and_resolve_references()
    longer.num_train_steps = 40
    longer.reference = "another paper's figure"  # a citation, not the run
    trainer.prepare(longer, workdir)


def test_ema_is_the_debiased_average_and_is_evaluated(tmp_path, data_dir):
    """The kept EMA is `optax.ema(decay, debias=True)` of the steps' parameters."""
    config = tiny_config(data_dir, ema_decay=0.9, num_train_steps=4, model=dict(dtype="bfloat16"))
    experiment = Experiment.build(config)
    state = experiment.init_state()
    images = data.load_split(config.dataset, "train[:8]").batch(np.arange(8))["image"]
    reference = optax.ema(0.9, debias=True)
    reference_state = reference.init(state.params)
    for _ in range(4):
        state, metrics = experiment.train_step(state, {"image": images})
        expected, reference_state = reference.update(state.params, reference_state)
    assert np.isfinite(metrics["loss"])
    for e, x in zip(*map(jax.tree.leaves, (state.ema_params, expected)), strict=True):
        np.testing.assert_allclose(e, x, rtol=1e-5, atol=1e-7)
    assert state.eval_params() is state.ema_params


def test_training_writes_sample_grids(tmp_path, data_dir):
    config = tiny_config(data_dir, num_train_steps=4, sample_every_steps=2, num_sample_images=4)
    trainer.train(trainer.prepare(config, tmp_path), tmp_path)
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step_2.png", "step_4.png"]
    images = tensorboard_events(tmp_path).Images("samples")
    assert [i.step for i in images] == [2, 4]
    assert (images[0].height, images[0].width) == (2 * 30 + 2, 2 * 30 + 2)  # 4 samples, 2x2


@pytest.mark.slow
def test_pixelcnn_pp_keeps_its_ema_and_dropout_stream_across_a_resume(tmp_path, data_dir):
    """PixelCNN++ trains with dropout and evaluates its Polyak average; a run
    stopped at step 4 and resumed ends where an unbroken run of 8 steps does,
    EMA included (the old Flax example lost it on restart)."""
    config = binarized_mnist.get_config("pixelcnn_pp,tiny")
    config.dataset.data_dir = str(data_dir)
    config.dataset.eval_split = "validation[:16]"
    config.update(num_train_steps=8, checkpoint_every_steps=4, eval_every_steps=8, ema_decay=0.9)
    assert config.model.dropout_rate > 0
    whole = trainer.train(trainer.prepare(config, tmp_path / "whole"), tmp_path / "whole")
    half = config.copy_and_resolve_references()
    half.num_train_steps = 4
    trainer.train(trainer.prepare(half, tmp_path / "split"), tmp_path / "split")
    resumed = trainer.train(trainer.prepare(config, tmp_path / "split"), tmp_path / "split")
    assert resumed["eval_nll_nats"] == whole["eval_nll_nats"]
    a, b = restore(tmp_path / "whole", config), restore(tmp_path / "split", config)
    assert_bitwise_equal(a, b)
    assert not np.array_equal(*(jax.tree.leaves(t)[0] for t in (a.params, a.ema_params)))
    # `load`, `evaluate` and `sample` take the EMA, or the raw parameters with params=raw.
    for params, expected in ((None, a.ema_params), ("ema", a.ema_params), ("raw", a.params)):
        loaded = pixel_models.load(tmp_path / "whole", params=params).params
        assert_bitwise_equal(loaded, expected)
    split = ["--split=validation[:16]", "--params=raw"]
    out, _ = run_ok("experiments.evaluate", f"--workdir={tmp_path / 'whole'}", *split)
    raw = json.loads((tmp_path / "whole" / "eval_validation_16_raw.json").read_text())
    assert raw["params"] == "raw" and json.loads(out) == raw
    assert not (tmp_path / "whole" / "eval_validation_16.json").exists()


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--config=configs/binarized_mnist.py:pixelcnnn,tiny"], "no binarized_mnist recipe"),
        ([f"--config={TINY}", "--config.optimizer.name=sgd"], "unknown optimizer 'sgd'"),
        ([f"--config={TINY}", "--config.dataset.data_dir=/nonexistent"], "missing: /nonexistent"),
        ([f"--config={TINY}", "--config.batch_size=0"], "batch_size=0 must be a positive"),
        ([], "no --config given and no saved config"),
        (["--config.num_train_steps=3"], "sets a field of a recipe: give --config=FILE:RECIPE"),
        (
            [f"--config={TINY}", "--config.num_train_step=3"],
            """no config field 'num_train_step'; did you mean "num_train_steps" instead""",
        ),
        (["--config=configs/nope.py"], "No such file or directory: 'configs/nope.py'"),
        ([f"--config={TINY}", "--config.model.dtype=float8"], "model.dtype='float8' is not a"),
        ([f"--config={TINY}", "--config.optimizer.learning_rate=-1e-3"], "must be a positive"),
    ],
)
def test_bad_input_exits_with_one_line_and_writes_nothing(tmp_path, flags, message):
    workdir = tmp_path / "run"
    process = cli("experiments.train", f"--workdir={workdir}", *flags)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("train: error:") and message in lines[0], err
    assert "Error:" not in lines[0]  # the reason, not the exception's name
    assert not workdir.exists()


def test_unwritable_workdir_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        workdirs.check_writable(blocker / "run")
    # Places even root cannot write to (permission bits do not stop root).
    for workdir in ("/proc/pixel_models_run", "/sys/pixel_models/run"):
        with pytest.raises(PermissionError, match="cannot create folders in /(proc|sys)"):
            workdirs.check_writable(workdir)
    workdirs.check_writable(tmp_path / "new" / "run")
    assert not (tmp_path / "new").exists() and list(tmp_path.iterdir()) == [blocker]


def test_a_workdir_without_checkpoints_takes_a_corrected_config(tmp_path, data_dir):
    config = tiny_config(data_dir)
    wrong = config.copy_and_resolve_references()
    wrong.model.hidden_dim = 4
    workdirs.save_config(wrong, tmp_path)  # a run that failed before its first checkpoint
    trainer.prepare(config, tmp_path)


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("learning_rate", -1e-3, "optimizer.learning_rate=-0.001 must be a positive number"),
        ("learning_rate", float("nan"), "must be a positive number"),
        ("warmup_steps", -5, "must be a whole number >= 0"),
        ("grad_clip_norm", -1.0, "must be >= 0"),
        ("decay", 1.5, "optimizer.decay=1.5 must be in [0, 1)"),
        ("decay_rate", 0.0, "must be in (0, 1]"),
    ],
)
def test_impossible_optimizer_values_are_refused(data_dir, field, value, message):
    config = tiny_config(data_dir)
    config.optimizer[field] = value
    with pytest.raises(ValueError, match=re.escape(message)):
        Experiment.build(config)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (dict(num_train_steps=-1), "num_train_steps=-1 must be a whole number >= 0"),
        (dict(keep_checkpoints=0), "keep_checkpoints=0 must be a whole number >= 1"),
        (dict(model=dict(num_levels=256)), "model.num_levels=256, but binarized_mnist"),
        (dict(model=dict(hidden_dim=-2)), "model.hidden_dim=-2 must be at least 1"),
        (dict(model=dict(kernel_size=2)), "model 'pixelcnn' does not build with these fields"),
    ],
)
def test_impossible_run_and_model_fields_are_refused(data_dir, overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Experiment.build(tiny_config(data_dir, **overrides))


def test_help_exits_0_with_the_program_and_multi_host_flags(tmp_path):
    out, _ = run_ok("experiments.train", "--help", timeout=120)
    for text in ("--workdir", "--print_config", "--coordinator_address", "--config.FIELD=VALUE"):
        assert text in out
    out, _ = run_ok("experiments.train", f"--config={TINY}", "--print_config", timeout=120)
    assert "num_train_steps: 20" in out and "learning_rate: 0.003" in out
    out, _ = run_ok("experiments.report", "--help", timeout=120)  # joins no JAX job
    assert "--workdir" in out and "--coordinator_address" not in out


def test_plot_writes_a_png(trained, tmp_path):
    workdir, _, _ = trained
    output = tmp_path / "c.png"
    run_ok("experiments.plot", f"--workdir={workdir}", f"--output={output}", timeout=120)
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_of_a_run_without_metrics_says_so(tmp_path):
    process = cli("experiments.plot", f"--workdir={tmp_path}")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1 and err.strip() == (
        f"plot: error: {tmp_path} has no metrics.jsonl: not a training run, or one that has "
        "logged no step yet"
    )
