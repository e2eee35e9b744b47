"""Learning curves of a run: train and eval bits/dim against step, as a PNG.

python -m experiments.plot --workdir=DIR [--output=DIR/learning_curves.png]
"""

import pathlib

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from absl import flags  # noqa: E402

from experiments import program  # noqa: E402
from pixel_models.training import metric_writer  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a run made by experiments.train")
_OUTPUT = flags.DEFINE_string("output", None, "PNG to write (default: DIR/learning_curves.png)")
flags.mark_flags_as_required(["workdir"])


def plot(rows: list[dict], title: str, output: pathlib.Path) -> None:
    """Train `loss_bits_per_dim` and `eval_bits_per_dim` from metrics rows."""
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for key, label in (("loss_bits_per_dim", "train"), ("eval_bits_per_dim", "eval")):
        points = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        if points:
            ax.plot(
                *zip(*points, strict=True), marker="." if label == "eval" else None, label=label
            )
    ax.set(xlabel="step", ylabel="bits/dim", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(output)
    plt.close(fig)


def main(argv):
    del argv
    workdir = pathlib.Path(_WORKDIR.value)
    try:
        if not (workdir / metric_writer.METRICS_FILE).exists():
            raise FileNotFoundError(
                f"{workdir} has no {metric_writer.METRICS_FILE}: not a training run, or one "
                "that has logged no step yet"
            )
        rows = metric_writer.read_metrics(workdir)
    except OSError as e:
        program.fail("plot", e)
    output = pathlib.Path(_OUTPUT.value or workdir / "learning_curves.png")
    plot(rows, str(workdir), output)
    print(output)


if __name__ == "__main__":
    program.start(main, joins_job=False)
