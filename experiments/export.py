r"""Export a trained run as a small model folder that `pixel_models.load` reads.

python -m experiments.export --workdir=DIR --output=pretrained/binarized_mnist/row_lstm \
    [--checkpoint_step=N|best] [--split=test] [--check_split=test[:500]] [--params=raw|ema]

Writes OUTPUT/config.json, OUTPUT/checkpoints/<step>/ (the step and the
evaluated parameters only: the EMA when the run keeps one; no optimizer
state) and OUTPUT/manifest.json:

- model, dataset, step, num_params, params_sha256 (of the parameters'
  bytes, leaves in tree order: `params_sha256`);
- the run's NLL on --split at that step (DIR/eval_<split>[_step<N>].json,
  from `experiments.evaluate`, which must have scored that step) and the
  published figure (`config.reference`);
- what the NLL is (`likelihood`: "p(x)", or a latent-variable model's
  bound, with its importance_samples and kl_nats);
- a check: the NLL of the exported model on --check_split, computed here
  (a latent-variable model's bound of the same k, its z drawn from key 0),
  which `tests/test_pretrained.py` recomputes;
- the train commands of the run (runs.jsonl), its training seconds and
  CPU-hours (seconds x the cores each invocation had), and the chosen
  step's validation NLL with how it was chosen.

--checkpoint_step=best takes the saved step with the lowest NLL on the run's
eval split (metrics.jsonl), the validation split of every recipe: test
figures are then reported for that step only. --params=raw ships the raw
parameters of a run that keeps an EMA, where evaluate scored them better on
validation (`--params=raw`, both splits: eval_<split>_step<N>_raw.json); the
manifest then quotes their validation NLL.
"""

import json
import pathlib

import jax
import numpy as np
from absl import flags

from experiments import program
from pixel_models import data
from pixel_models.trained_model import load
from pixel_models.training import checkpoints, train_state
from pixel_models.training.export import (
    MANIFEST_FILE,
    best_step,
    check_score,
    evaluated,
    params_sha256,
    save,
    training_record,
)

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a run made by experiments.train")
_OUTPUT = flags.DEFINE_string("output", None, "Folder to write (new, or an earlier export)")
_STEP = flags.DEFINE_string("checkpoint_step", "best", "A saved step, or best (validation NLL)")
_SPLIT = flags.DEFINE_string("split", "test", "Split whose evaluate result the manifest quotes")
_CHECK_SPLIT = flags.DEFINE_string(
    "check_split", "test[:500]", "Split scored here, for tests/test_pretrained.py"
)
_PARAMS = flags.DEFINE_enum(
    "params",
    None,
    train_state.PARAMS,
    "The parameters to ship, as evaluate scored them with --params (default: the run's own)",
)
flags.mark_flags_as_required(["workdir", "output"])


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
        trained = load(workdir, step, params=_PARAMS.value)
        result = evaluated(workdir, _SPLIT.value, step, _PARAMS.value)
        if _PARAMS.value is not None and validation is not None:  # chosen with them
            eval_split = trained.config.dataset.eval_split
            validation = evaluated(workdir, eval_split, step, _PARAMS.value)["nll_nats"]
        images = data.load_split(trained.config.dataset, _CHECK_SPLIT.value)
        check = -check_score(trained, images.batch(np.arange(len(images)))["image"], result)
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
        "likelihood": result.get("likelihood", "p(x)"),
        **{k: result[k] for k in ("importance_samples", "kl_nats") if k in result},
        "chosen_by": "lowest validation NLL" if validation is not None else "--checkpoint_step",
        "validation_nll_nats": validation,
        **training_record(workdir),
    }
    (output / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest))


if __name__ == "__main__":
    program.start(main)
