r"""Exact test-set NLL of a trained run: every example of the split once.

python -m experiments.evaluate --workdir=DIR [--split=test] [--checkpoint_step=N] \
    [--params=raw|ema] [--importance_samples=K] [--data_dir=D]

Reads DIR/config.json and the newest checkpoint (or step N), scores the split
with the run's evaluated parameters (the EMA when it keeps one; --params
chooses) sharded over all devices, and writes DIR/eval_<split>.json (with
--checkpoint_step=N: DIR/eval_<split>_step<N>.json, so the newest result is
kept; with --params other than the run's own, a `_raw` or `_ema` suffix):
split, num_examples, nll_nats (mean per image), bits_per_dim, step, params
(raw or ema), conditioned_on (null, "label", or the auto-encoder's
"code(x)") and likelihood (what the NLL is of, e.g. "p(x | label)").
A latent-variable model (the VAE) has no exact NLL: it reports the negative
of a lower bound on log p(x), the importance-weighted bound with
--importance_samples=K (default 1000; 1: the ELBO), says so in `likelihood`
("bound (IWAE, k=1000)"), and adds kl_nats and importance_samples.
Prints the same as one JSON line, and records the invocation in DIR/runs.jsonl.
"""

import json
import os

import jax
from absl import flags

from experiments import program
from pixel_models import embeddings
from pixel_models.trained_model import load_embedding_network
from pixel_models.training import checkpoints, evaluation, provenance, train_state, workdirs
from pixel_models.training.experiment import Experiment

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a run made by experiments.train")
_SPLIT = flags.DEFINE_string("split", "test", "Split to score, e.g. test, validation, train[:1000]")
_STEP = flags.DEFINE_integer("checkpoint_step", None, "Checkpoint to score (default: newest)")
_PARAMS = flags.DEFINE_enum(
    "params", None, train_state.PARAMS, "Parameters to score (default: the EMA if kept, else raw)"
)
_SAMPLES = flags.DEFINE_integer(
    "importance_samples",
    None,
    "Importance samples of a latent-variable model's bound (default 1000; 1: the ELBO)",
)
_BATCH = flags.DEFINE_integer("batch_size", None, "Global eval batch (default: eval_batch_size)")
_DATA_DIR = flags.DEFINE_string(
    "data_dir",
    None,
    "Data folder (default: the run's dataset.data_dir, else $PIXEL_MODELS_DATA_DIR)",
)
flags.mark_flags_as_required(["workdir"])


# The IWAE paper estimates its test figures with 5,000; 1,000 costs a fifth of that.
DEFAULT_IMPORTANCE_SAMPLES = 1000


def _importance_samples(experiment: Experiment) -> int:
    """--importance_samples for a latent-variable model (default
    `DEFAULT_IMPORTANCE_SAMPLES`); 1 for an exact one, which refuses it."""
    value = _SAMPLES.value
    if not experiment.model.LATENT:
        if value is not None:
            raise ValueError(
                f"--importance_samples: {experiment.config.model.name} has an exact likelihood"
            )
        return 1
    if value is None:
        return DEFAULT_IMPORTANCE_SAMPLES
    if value < 1:
        raise ValueError(f"--importance_samples={value} must be >= 1")
    return value


def main(argv):
    program.setup(argv)
    workdir = _WORKDIR.value
    try:
        config = workdirs.load_config(workdir)
        if config is None:
            raise FileNotFoundError(f"{workdir} has no {workdirs.CONFIG_FILE}: not a training run")
        if _DATA_DIR.value is not None:
            config.dataset.data_dir = _DATA_DIR.value
        if _BATCH.value is not None:
            config.eval_batch_size = _BATCH.value
        experiment = Experiment.build(config)
        num_samples = _importance_samples(experiment)
        use_ema = train_state.uses_ema(config, _PARAMS.value)
        source = embeddings.load_split(config, _SPLIT.value, load_embedding_network(config))
        manager = checkpoints.make_manager(workdir, create=False)
        abstract_params = experiment.abstract_state.params
        params, step = checkpoints.restore_eval_params(
            manager, abstract_params, use_ema, _STEP.value
        )
        manager.close()
    except (ValueError, OSError) as e:
        program.fail("evaluate", e)
    result = {"split": _SPLIT.value}
    result.update(evaluation.evaluate(experiment, params, source, num_samples))
    result.update(
        step=step,
        params="ema" if use_ema else "raw",
        model=config.model.name,
        dataset=config.dataset.name,
        conditioned_on=experiment.conditioned_on,
        likelihood=experiment.likelihood(num_samples),
    )
    if jax.process_index() == 0:
        params = None if use_ema == experiment.use_ema else result["params"]
        path = evaluation.output_path(workdir, _SPLIT.value, _STEP.value, params)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        os.replace(tmp, path)
    provenance.record(workdir, "evaluate", config, result=result)
    print(json.dumps(result))


if __name__ == "__main__":
    program.start(main, stops_at_once=True)
