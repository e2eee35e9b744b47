"""A run exported as a small model folder (`experiments.export`): the
config, the evaluated parameters of one step, and a manifest that says what
they are and how they were made. `pixel_models.load` reads it like a run."""

import hashlib
import json
import pathlib

import jax
import numpy as np
import orbax.checkpoint as ocp

from pixel_models.trained_model import TrainedModel
from pixel_models.training import checkpoints, evaluation, metric_writer, provenance, workdirs

MANIFEST_FILE = "manifest.json"
# A shipped model is committed to git, so no file of it may be large: orbax
# writes each array as one chunk and packs chunks into data files of up to
# 2 GB unless told otherwise.
MAX_FILE_BYTES = 1 << 20


def params_sha256(params) -> str:
    """sha256 of the parameters' bytes, leaves in tree order (float32, C order)."""
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(params):
        digest.update(np.ascontiguousarray(np.asarray(leaf, np.float32)).tobytes())
    return digest.hexdigest()


def best_step(workdir: pathlib.Path, saved: list[int]) -> tuple[int, float]:
    """The saved step with the lowest eval-split NLL in metrics.jsonl, and that NLL."""
    scored = {
        row["step"]: row["eval_nll_nats"]
        for row in metric_writer.read_metrics(workdir)
        if "eval_nll_nats" in row and row["step"] in saved
    }
    if not scored:
        raise ValueError(f"{workdir}: no saved step was evaluated (metrics.jsonl)")
    step = min(scored, key=scored.get)
    return step, scored[step]


def evaluated(workdir: pathlib.Path, split: str, step: int, params: str | None = None) -> dict:
    """`experiments.evaluate`'s result on `split` at `step`: its newest
    result, or the one it wrote for that step explicitly; with `params`, the
    one it wrote for that step with `--params=params`."""
    if params is None:
        paths = (
            evaluation.output_path(workdir, split),
            evaluation.output_path(workdir, split, step),
        )
    else:
        paths = (evaluation.output_path(workdir, split, step, params),)
    for path in paths:
        if path.exists() and json.loads(path.read_text())["step"] == step:
            return json.loads(path.read_text())
    command = f"python -m experiments.evaluate --workdir={workdir} --split={split}"
    command += f" --checkpoint_step={step}" + ("" if params is None else f" --params={params}")
    raise ValueError(f"{workdir}: no {split} result of step {step}: {command}")


def training_record(workdir: pathlib.Path) -> dict:
    """The run's train commands, training seconds and CPU-hours (runs.jsonl;
    an invocation killed outright counts up to its last checkpoint)."""
    records = provenance.read(workdir)
    starts = [r for r in records if r["program"] == "train"]
    cores = max((r.get("cpu_cores") or 1 for r in starts), default=1)
    seconds = sum(run["seconds"] for run in provenance.invocations(records))
    return {
        "commands": [" ".join(r["command"][1:]) for r in starts],
        "train_seconds": round(seconds, 1),
        "cpu_hours": round(seconds * cores / 3600, 3),
        "hardware": sorted({f"{r['device_kind']} x{r['num_devices']}" for r in starts}),
    }


def save(trained: TrainedModel, output: pathlib.Path, use_ema: bool) -> None:
    """OUTPUT/config.json and OUTPUT/checkpoints/<step>/ (step and parameters)."""
    output.mkdir(parents=True, exist_ok=True)
    config = trained.config
    if not use_ema and config.get("ema_decay"):  # raw parameters of a run with an EMA:
        config = config.copy_and_resolve_references()  # `load` then reads them, not an EMA
        config.ema_decay = 0.0
    workdirs.save_config(config, output)
    name = "ema_params" if use_ema else "params"
    write_checkpoint(output, trained.step, {"step": np.int32(trained.step), name: trained.params})
    # Orbax's commit markers name the absolute folder they were written to; a
    # shipped model restores without them and must not carry this machine's paths.
    for marker in (output / "checkpoints").rglob("commit_success.txt"):
        marker.unlink()


def write_checkpoint(
    output: pathlib.Path, step: int, state: dict, max_file_bytes: int = MAX_FILE_BYTES
) -> None:
    """`state` as OUTPUT/checkpoints/<step>/state, in files of at most
    `max_file_bytes` each: one file per chunk of an array, each chunk at
    most that size (no OCDBT, which packs chunks into larger data files)."""
    handler = ocp.PyTreeCheckpointHandler(use_ocdbt=False)
    manager = checkpoints.make_manager(output, keep=1, handler=handler)
    save_args = jax.tree.map(lambda _: ocp.SaveArgs(chunk_byte_size=max_file_bytes), state)
    args = ocp.args.PyTreeSave(state, save_args=save_args)
    manager.save(step, args=ocp.args.Composite(state=args))
    manager.wait_until_finished()
    manager.close()


def check_score(trained: TrainedModel, images: np.ndarray, result: dict) -> float:
    """The mean score of `images` that a manifest's check quotes: log p(x), or
    for a latent-variable model the bound its evaluation reported
    (`result["importance_samples"]`, 1: the ELBO), its z drawn from key 0."""
    if not trained.model.LATENT:
        return float(trained.log_prob(images).mean())
    num_samples = result.get("importance_samples", 1)
    return float(trained.bound(images, jax.random.key(0), num_samples).mean())
