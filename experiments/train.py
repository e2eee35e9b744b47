"""Train any registered model; resume automatically.

python -m experiments.train --config=configs/binarized_mnist.py:pixelcnn --workdir=DIR \
    [--config.batch_size=64 ...]
python -m experiments.train --workdir=DIR          # resume DIR with its saved config

Writes DIR/config.json, DIR/checkpoints, DIR/metrics.jsonl, DIR/tensorboard.
Exit status: 0 done, 1 bad input or diverged (one line says why), 143 stopped
by SIGTERM after saving a checkpoint (run the same command to resume).
"""

import sys

import jax
from absl import app, flags
from ml_collections import config_flags

from experiments import launch
from pixel_models import run_config, trainer

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Recipe, e.g. configs/cifar10.py:pixelcnn (default: the one saved in workdir)"
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for checkpoints, metrics and config")
flags.mark_flags_as_required(["workdir"])


def main(argv):
    launch.setup(argv)
    workdir = _WORKDIR.value
    try:
        config = _CONFIG.value or run_config.load_config(workdir)
        if config is None:
            raise ValueError(f"no --config given and no saved config in {workdir}")
        run = trainer.prepare(config, workdir)
    except (ValueError, OSError) as e:
        launch.fail("train", e)
    try:
        summary = trainer.train(run, workdir)
    except trainer.TrainingDiverged as e:
        launch.fail("train", e)
    except trainer.Preempted as e:
        print(f"train: {e}", file=sys.stderr)
        sys.exit(143)
    if jax.process_index() == 0:
        print(trainer.final_line(summary))


if __name__ == "__main__":
    app.run(main, flags_parser=launch.parse_flags)
