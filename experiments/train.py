r"""Train any registered model; resume automatically.

python -m experiments.train --config=configs/binarized_mnist.py:pixelcnn --workdir=DIR \
    [--config.batch_size=64 ...]
python -m experiments.train --workdir=DIR          # resume DIR with its saved config
python -m experiments.train --workdir=DIR --config.num_train_steps=N   # ... and train it longer

python -m experiments.train --config=configs/binarized_mnist.py:pixelcnn --print_config

Writes DIR/config.json, DIR/checkpoints, DIR/metrics.jsonl, DIR/tensorboard, and
the invocation's records (command, versions, devices, git commit) to
DIR/runs.jsonl.
Exit status: 0 done (or nothing left to train), 1 bad input or diverged (one
line says why), 143 / 130 stopped by SIGTERM / Ctrl-C after saving a
checkpoint (run the same command to resume).
"""

import sys

import jax
from absl import flags
from ml_collections import config_flags

from experiments import program
from pixel_models.training import trainer, workdirs

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Recipe, e.g. configs/cifar10.py:pixelcnn (default: the one saved in workdir)"
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for checkpoints, metrics and config")
_PRINT_CONFIG = flags.DEFINE_bool(
    "print_config", False, "Print the resolved config (every --config.FIELD) and exit"
)


def main(argv):
    program.setup(argv, one_arena=program.one_arena_for(_CONFIG))
    workdir = _WORKDIR.value
    if _PRINT_CONFIG.value and _CONFIG.value is not None:
        print(_CONFIG.value)
        return
    try:
        if workdir is None:
            raise ValueError("--workdir is required (the folder of the run)")
        config = _CONFIG.value or workdirs.load_config(workdir)
        if config is None:
            raise ValueError(f"no --config given and no saved config in {workdir}")
        if _PRINT_CONFIG.value:
            print(config)
            return
        run = trainer.prepare(config, workdir)
    except (ValueError, OSError) as e:
        program.fail("train", e)
    try:
        summary = trainer.train(run, workdir)
    except trainer.TrainingDiverged as e:
        program.fail("train", e)
    except trainer.Preempted as e:
        print(f"train: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    if jax.process_index() == 0:
        print(trainer.final_line(summary, run.experiment.config.num_train_steps))


if __name__ == "__main__":
    program.start(main, saved_config=True)
