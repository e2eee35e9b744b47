"""Run records (runs.jsonl): how a train invocation ended, the time of one
killed outright, and git's state where there is no checkout or no git."""

import json
import signal

import jax.numpy as jnp
import pytest

from pixel_models.training import export, provenance, steps, trainer
from tests.helpers import tiny_config


def poison(monkeypatch) -> None:
    """Every train step's loss becomes NaN."""
    original = steps.train_step

    def poisoned(model, optimizer, state, batch, **kwargs):
        new_state, metrics = original(model, optimizer, state, batch, **kwargs)
        return new_state, metrics | {"loss": jnp.nan * metrics["loss"]}

    monkeypatch.setattr(steps, "train_step", poisoned)


def preempt(monkeypatch) -> None:
    """A SIGTERM noted as the loop starts."""
    enter = trainer._StopRequest.__enter__

    def noted(self):
        enter(self).signal = signal.SIGTERM
        return self

    monkeypatch.setattr(trainer._StopRequest, "__enter__", noted)


@pytest.mark.parametrize(
    "stop,error,ended,step",  # step: the last good one, the one saved
    [
        (poison, trainer.TrainingDiverged, "diverged", 0),
        (preempt, trainer.Preempted, "preempted", 1),
    ],
)
def test_train_end_says_how_the_run_ended(
    tmp_path, data_dir, monkeypatch, stop, error, ended, step
):
    stop(monkeypatch)
    config = tiny_config(data_dir, log_every_steps=1)
    with pytest.raises(error):
        trainer.train(trainer.prepare(config, tmp_path), tmp_path)
    start, *progress, end = provenance.read(tmp_path)
    assert [row["step"] for row in progress] == ([step] if ended == "preempted" else [])
    assert start["program"] == "train" and start["config"] == json.loads(config.to_json())
    assert end["program"] == "train_end" and end["ended"] == ended
    assert end["start_step"] == 0 and end["step"] == step and end["seconds"] > 0


def test_a_run_killed_outright_counts_its_time_to_its_last_checkpoint(tmp_path, data_dir):
    """Each checkpoint adds a progress row; without its "train_end" (SIGKILL)
    an invocation is "killed" at its last checkpoint, with that time."""
    config = tiny_config(data_dir, num_train_steps=4, checkpoint_every_steps=2)
    trainer.train(trainer.prepare(config, tmp_path), tmp_path)
    rows = provenance.read(tmp_path)
    assert [row["program"] for row in rows] == ["train", *[provenance.PROGRESS] * 2, "train_end"]
    assert [row["step"] for row in rows[1:3]] == [2, 4]
    assert 0 < rows[1]["seconds"] < rows[2]["seconds"] <= rows[3]["seconds"]
    (done,) = provenance.invocations(rows)
    assert done == {k: rows[3][k] for k in ("start_step", "step", "seconds", "ended")}
    killed = provenance.invocations([*rows[:2], *rows])  # killed after step 2, then rerun
    assert killed[0] == {
        "start_step": 0,
        "step": 2,
        "seconds": rows[1]["seconds"],
        "ended": "killed",
    }
    assert killed[1] == done
    rerun = tmp_path / "rerun"
    rerun.mkdir()
    lines = [json.dumps(row) + "\n" for row in [*rows[:2], *rows]]
    (rerun / provenance.RECORDS_FILE).write_text("".join(lines))
    seconds = export.training_record(rerun)["train_seconds"]
    assert seconds == round(rows[1]["seconds"] + rows[3]["seconds"], 1)
    assert provenance.invocations([rows[0]]) == [
        {"start_step": None, "step": None, "seconds": 0.0, "ended": "killed"}
    ]


def test_git_state_is_null_outside_a_checkout_or_without_git(tmp_path, monkeypatch):
    in_checkout = provenance.git_state()
    assert in_checkout["git_commit"] is None or len(in_checkout["git_commit"]) == 40
    monkeypatch.setattr(provenance, "_CHECKOUT", tmp_path)
    assert provenance.git_state() == {"git_commit": None, "git_dirty": None}
    monkeypatch.undo()
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on it
    assert provenance.git_state() == {"git_commit": None, "git_dirty": None}


def test_a_record_cut_short_is_passed_over(tmp_path):
    (tmp_path / provenance.RECORDS_FILE).write_text('{"program": "train"}\n{"program": "tr')
    assert provenance.read(tmp_path) == [{"program": "train"}]
    assert provenance.read(tmp_path / "nothing") == []
