r"""Export a trained run as a small model folder that `pixel_models.load` reads.

python -m experiments.export --workdir=DIR --output=pretrained/binarized_mnist/row_lstm \
    [--checkpoint_step=N|best] [--split=test] [--check_split=test[:500]]

Writes OUTPUT/config.json, OUTPUT/checkpoints/<step>/ (the step and the
evaluated parameters only: the EMA when the run keeps one; no optimizer
state) and OUTPUT/manifest.json:

- model, dataset, step, num_params, params_sha256 (of the parameters'
  bytes, leaves in tree order: `params_sha256`);
- the run's NLL on --split at that step (DIR/eval_<split>[_step<N>].json,
  from `experiments.evaluate`, which must have scored that step) and the
  published figure (`config.reference`);
- a check: the NLL of the exported model on --check_split, computed here,
  which `tests/test_pretrained.py` recomputes;
- the train commands of the run (runs.jsonl), its training seconds and
  CPU-hours (seconds x the cores each invocation had), and the chosen
  step's validation NLL with how it was chosen.

--checkpoint_step=best takes the saved step with the lowest NLL on the run's
eval split (metrics.jsonl), the validation split of every recipe: test
figures are then reported for that step only.
"""

import hashlib
import json
import pathlib

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import flags

from experiments import program
from pixel_models import data
from pixel_models.trained_model import TrainedModel, load
from pixel_models.training import checkpoints, evaluation, metric_writer, provenance, workdirs

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a run made by experiments.train")
_OUTPUT = flags.DEFINE_string("output", None, "Folder to write (new, or an earlier export)")
_STEP = flags.DEFINE_string("checkpoint_step", "best", "A saved step, or best (validation NLL)")
_SPLIT = flags.DEFINE_string("split", "test", "Split whose evaluate result the manifest quotes")
_CHECK_SPLIT = flags.DEFINE_string(
    "check_split", "test[:500]", "Split scored here, for tests/test_pretrained.py"
)
flags.mark_flags_as_required(["workdir", "output"])

MANIFEST_FILE = "manifest.json"


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


def evaluated(workdir: pathlib.Path, split: str, step: int) -> dict:
    """`experiments.evaluate`'s result on `split` at `step`: its newest
    result, or the one it wrote for that step explicitly."""
    for path in (
        evaluation.output_path(workdir, split),
        evaluation.output_path(workdir, split, step),
    ):
        if path.exists() and json.loads(path.read_text())["step"] == step:
            return json.loads(path.read_text())
    command = f"python -m experiments.evaluate --workdir={workdir} --split={split}"
    raise ValueError(
        f"{workdir}: no {split} result of step {step}: {command} --checkpoint_step={step}"
    )


def training_record(workdir: pathlib.Path) -> dict:
    """The run's train commands, training seconds and CPU-hours (runs.jsonl)."""
    records = provenance.read(workdir)
    ends = [r for r in records if r["program"] == "train_end"]
    starts = [r for r in records if r["program"] == "train"]
    cores = max((r.get("cpu_cores") or 1 for r in starts), default=1)
    seconds = sum(r["seconds"] for r in ends)
    return {
        "commands": [" ".join(r["command"][1:]) for r in starts],
        "train_seconds": round(seconds, 1),
        "cpu_hours": round(seconds * cores / 3600, 3),
        "hardware": sorted({f"{r['device_kind']} x{r['num_devices']}" for r in starts}),
    }


def save(trained: TrainedModel, output: pathlib.Path, use_ema: bool) -> None:
    """OUTPUT/config.json and OUTPUT/checkpoints/<step>/ (step and parameters)."""
    output.mkdir(parents=True, exist_ok=True)
    workdirs.save_config(trained.config, output)
    manager = checkpoints.make_manager(output, keep=1)
    name = "ema_params" if use_ema else "params"
    state = {"step": np.int32(trained.step), name: trained.params}
    manager.save(trained.step, args=ocp.args.Composite(state=ocp.args.StandardSave(state)))
    manager.wait_until_finished()
    manager.close()


def main(argv):
    program.setup(argv)
    workdir, output = pathlib.Path(_WORKDIR.value), pathlib.Path(_OUTPUT.value)
    try:
        manager = checkpoints.make_manager(workdir, create=False)
        saved = sorted(manager.all_steps())
        manager.close()
        validation = None
        if _STEP.value == "best":
            step, validation = best_step(workdir, saved)
        else:
            step = int(_STEP.value)
        trained = load(workdir, step)
        result = evaluated(workdir, _SPLIT.value, step)
        images = data.load_split(trained.config.dataset, _CHECK_SPLIT.value)
        check = -trained.log_prob(images.batch(np.arange(len(images)))["image"]).mean()
    except (ValueError, OSError) as e:
        program.fail("export", e)
    use_ema = result["params"] == "ema"
    save(trained, output, use_ema)
    manifest = {
        "model": trained.config.model.name,
        "dataset": trained.config.dataset.name,
        "step": step,
        "params": result["params"],
        "num_params": sum(int(np.size(leaf)) for leaf in jax.tree.leaves(trained.params)),
        "params_sha256": params_sha256(trained.params),
        "split": result["split"],
        "nll_nats": result["nll_nats"],
        "bits_per_dim": result["bits_per_dim"],
        "reference": trained.config.get("reference", ""),
        "check": {"split": _CHECK_SPLIT.value, "nll_nats": float(check)},
        "chosen_by": "lowest validation NLL" if validation is not None else "--checkpoint_step",
        "validation_nll_nats": validation,
        **training_record(workdir),
    }
    (output / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest))


if __name__ == "__main__":
    program.start(main)
