"""The one training loop, for every model in the registry.

`prepare` checks everything a run needs (config, data, devices, workdir)
before anything is written; `train` then runs it in `workdir`, resuming from
the newest checkpoint there, so that the same command continues a stopped
run. A run killed at any moment and restarted ends with the same parameters
as one that never stopped: the state, the RNG and the input position all come
back from the checkpoint.
"""

import dataclasses
import pathlib
import signal
import sys
import time

import jax
import ml_collections
import numpy as np

from pixel_models import data, embeddings, likelihood
from pixel_models.data import input_pipeline
from pixel_models.sampling import canvases, grid
from pixel_models.trained_model import load_embedding_network
from pixel_models.training import checkpoints, evaluation, metric_writer, provenance, workdirs
from pixel_models.training.experiment import Experiment
from pixel_models.training.progress import progress_bar


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class Preempted(RuntimeError):
    """SIGTERM, SIGINT (Ctrl-C) or a multi-host preemption notice: a checkpoint
    was saved. `exit_code` is the shell's for the signal (143, 130)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


@dataclasses.dataclass(frozen=True)
class Run:
    """A validated run: its experiment and its data, ready to train."""

    experiment: Experiment
    train_data: data.ImageSource | embeddings.EmbeddedSource
    eval_data: data.ImageSource | embeddings.EmbeddedSource


def prepare(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> Run:
    """Check the config, the devices, the data and the workdir; write nothing.

    Raises ValueError / OSError with a one-line reason.
    """
    workdirs.check_writable(workdir)
    saved = workdirs.load_config(workdir) if pathlib.Path(workdir).is_dir() else None
    if saved is not None and checkpoints.has_checkpoints(workdir):
        workdirs.check_compatible(config, saved, workdir)
    experiment = Experiment.build(config)
    network = load_embedding_network(config)
    train_data = embeddings.load_split(config, config.dataset.train_split, network)
    eval_data = embeddings.load_split(config, config.dataset.eval_split, network)
    return Run(experiment, train_data, eval_data)


class _StopRequest:
    """Notes SIGTERM and SIGINT (Ctrl-C) instead of dying, so the loop can
    save and exit; a second Ctrl-C stops at once, without saving."""

    _SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signal: signal.Signals | None = None

    def __enter__(self):
        # On many hosts JAX's preemption service owns SIGTERM; orbax's
        # `reached_preemption` reports it to every process at the same step.
        # There Ctrl-C stays a KeyboardInterrupt: one process cannot save alone.
        if jax.process_count() == 1:
            self._previous = {s: signal.signal(s, self._handle) for s in self._SIGNALS}
        return self

    def _handle(self, signum, frame):
        del frame
        if self.signal == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum)

    def __exit__(self, *exc):
        if jax.process_count() == 1:
            for s, handler in self._previous.items():
                signal.signal(s, handler)

    def stopped(self, manager, step: int) -> Preempted | None:
        """The exception to raise after saving `step`, if a stop was asked for."""
        if self.signal is None and not manager.reached_preemption(step):
            return None
        name = self.signal.name if self.signal else "a preemption notice"
        return Preempted(
            f"stopped at step {step} by {name}; checkpoint saved, run the same command to resume",
            128 + (self.signal or signal.SIGTERM),
        )


def _is_due(step: int, every: int, last: int) -> bool:
    return step == last or (every > 0 and step % every == 0)


def train(run: Run, workdir: str | pathlib.Path) -> dict:
    """Train `run` in `workdir` to `config.num_train_steps`; returns the summary.

    Raises TrainingDiverged on a non-finite loss and Preempted after saving on
    SIGTERM or SIGINT. A run already at `num_train_steps` trains nothing;
    any other call adds a "train" and a "train_end" record to the workdir's
    runs.jsonl, and a "train_progress" row at each checkpoint (`provenance`).
    """
    began = time.perf_counter()
    experiment, config = run.experiment, run.experiment.config
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    manager = checkpoints.make_manager(workdir, config.keep_checkpoints)
    restored = checkpoints.restore_latest(manager, experiment.abstract_state, delete_damaged=True)
    start = 0 if restored is None else int(restored[0].step)
    summary = {"workdir": str(workdir), "start_step": start, "step": start}
    if start >= config.num_train_steps:
        manager.close()
        return summary  # nothing to train (`final_line` says so); nothing written
    if jax.process_index() == 0:
        workdirs.save_config(config, workdir)
    provenance.record(workdir, "train", config)
    ended = "failed"  # unless the loop says otherwise: an error, a second Ctrl-C
    iterator = input_pipeline.train_iterator(
        input_pipeline.train_batches(run.train_data, config.batch_size, config.seed)
    )
    if restored is None:
        state = experiment.init_state()
    else:
        state, data_state = restored
        iterator.set_state(data_state)
    last = config.num_train_steps
    if start and jax.process_index() == 0:
        print(f"resuming from the checkpoint at step {start}", file=sys.stderr)
    writer = metric_writer.MetricWriter(workdir, resume_step=start)
    progress = progress_bar(
        total=last, initial=start, unit="step", desc="train", dynamic_ncols=True
    )
    pending, interval_start = [], time.perf_counter()
    try:
        with _StopRequest() as stop:
            for step in range(start + 1, last + 1):
                batch = experiment.device_batch(next(iterator))
                state, metrics = experiment.train_step(state, batch)
                pending.append(metrics)
                progress.update()
                preempted = stop.stopped(manager, step)
                save = preempted is not None or _is_due(step, config.checkpoint_every_steps, last)
                if save or _is_due(step, config.log_every_steps, last):
                    # Check the losses before any checkpoint: never save a NaN state.
                    # Timed once the interval's steps are done, not dispatched.
                    jax.block_until_ready(pending)
                    seconds = time.perf_counter() - interval_start
                    scalars = _train_scalars(experiment, pending, step, seconds)
                    writer.write(step, scalars)
                    progress.set_postfix(loss=f"{scalars['loss']:.2f}", refresh=False)
                    pending, interval_start = [], time.perf_counter()
                    summary.update(step=step, train_loss_nats=scalars["loss"])
                if _is_due(step, config.eval_every_steps, last):
                    result = evaluation.evaluate(experiment, state.eval_params(), run.eval_data)
                    scored = ("nll_nats", "bits_per_dim", "kl_nats")  # kl: latent models
                    writer.write(step, {f"eval_{k}": result[k] for k in scored if k in result})
                    summary.update(
                        eval_split=config.dataset.eval_split,
                        **{f"eval_{k}": v for k, v in result.items()},
                    )
                    interval_start = time.perf_counter()
                sample_every = config.get("sample_every_steps", 0)
                if sample_every and _is_due(step, sample_every, last):
                    _write_samples(run, state.eval_params(), step, writer, workdir)
                    interval_start = time.perf_counter()
                if save:
                    checkpoints.save(manager, state, iterator.get_state(), step)
                    provenance.record_progress(workdir, start, step, time.perf_counter() - began)
                if preempted is not None:
                    ended = "preempted"
                    raise preempted
        ended = "done"
    except TrainingDiverged:
        ended = "diverged"
        raise
    finally:
        manager.wait_until_finished()  # a save in flight completes, whatever happened
        progress.close()
        writer.close()
        # The last logged step: `state` may be donated away by a step that failed.
        provenance.record(
            workdir,
            "train_end",
            config,
            start_step=start,
            step=summary["step"],
            seconds=time.perf_counter() - began,
            ended=ended,
        )
    summary["step"] = int(state.step)
    return summary


def _write_samples(
    run: Run, params, step: int, writer: metric_writer.MetricWriter, workdir: pathlib.Path
) -> None:
    """A grid of `config.num_sample_images` fast samples (one per class for a
    class-conditional run; decodings of eval images for the auto-encoder, and
    samples given their embeddings for a run conditioned on them) to
    TensorBoard ("samples") and `workdir/samples/step_<step>.png`."""
    experiment = run.experiment
    config, model, variables = experiment.config, experiment.model, {"params": params}
    num = config.get("num_sample_images", 16)
    labels, images = None, None
    if experiment.cond_key == "label":
        labels = list(range(data.get_spec(config.dataset.name).num_classes))
        num = max(1, num // len(labels))
    codes = None
    if model.ENCODES or experiment.cond_key == "embedding":
        batch = run.eval_data.batch(np.arange(min(num, len(run.eval_data))))
        images, codes, num = batch["image"], batch.get("embedding"), 1
    canvas = canvases.for_model(
        model, variables, experiment.image_shape, num, labels, images, codes
    )
    rng = jax.random.fold_in(jax.random.key(config.seed), step)
    samples = canvases.draw(canvas, model, variables, experiment.mesh, rng)
    image = canvas.grid(samples, config.model.num_levels)
    writer.image(step, "samples", image)
    if jax.process_index() == 0:
        folder = workdir / "samples"
        folder.mkdir(exist_ok=True)
        grid.save_png(folder / f"step_{step}.png", image)


def _train_scalars(
    experiment: Experiment, pending: list[dict], step: int, seconds: float
) -> dict[str, float]:
    """Means of the metrics of the last `len(pending)` steps; raises
    TrainingDiverged if any loss among them is not finite."""
    values = jax.device_get(pending)
    losses = np.array([v["loss"] for v in values], np.float64)
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        first = step - len(losses) + 1 + int(bad[0])
        raise TrainingDiverged(
            f"loss is {losses[bad[0]]} at step {first}; stopped without saving it. "
            "The newest checkpoint is the last good state: lower optimizer.learning_rate "
            "or set optimizer.grad_clip_norm, then resume"
        )
    loss = float(losses.mean())
    return {
        "loss": loss,
        "loss_bits_per_dim": float(likelihood.bits_per_dim(loss, experiment.image_shape)),
        "grad_norm": float(np.mean([v["grad_norm"] for v in values])),
        "learning_rate": float(experiment.learning_rate(step - 1)),
        "examples_per_sec": len(values) * experiment.config.batch_size / max(seconds, 1e-9),
    }


def final_line(summary: dict, num_train_steps: int) -> str:
    """One line for the end of a run."""
    if "train_loss_nats" not in summary:
        return (
            f"nothing to train: the run is already at step {summary['step']} "
            f"(num_train_steps={num_train_steps}); workdir {summary['workdir']}"
        )
    text = f"step {summary['step']}: train loss {summary['train_loss_nats']:.3f} nats"
    if "eval_nll_nats" in summary:
        text += (
            f"; {summary['eval_split']} {summary['eval_nll_nats']:.3f} nats"
            f" = {summary['eval_bits_per_dim']:.4f} bits/dim"
            f" ({summary['eval_num_examples']} images)"
        )
    return text + f"; workdir {summary['workdir']}"
