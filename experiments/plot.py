"""Learning curves of a run: train and eval NLL against step and against
training hours, with the published figure the recipe names, as a PNG.

python -m experiments.plot --workdir=DIR [--output=DIR/learning_curves.png]

Binary images (K=2) are plotted in nats per image, as the papers give them;
others in bits/dim. The hours are the training steps' own time (from
`examples_per_sec` in metrics.jsonl: no evaluation or start-up), times the
CPU cores the run had on CPU (runs.jsonl): CPU-hours. The published line is
the first "N nats" or "N bits/dim" of `config.reference`, unless it says
there is no published figure.
"""

import pathlib

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from absl import flags  # noqa: E402

from configs import common  # noqa: E402
from experiments import program  # noqa: E402
from pixel_models import data  # noqa: E402
from pixel_models.training import metric_writer, provenance, workdirs  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a run made by experiments.train")
_OUTPUT = flags.DEFINE_string("output", None, "PNG to write (default: DIR/learning_curves.png)")
flags.mark_flags_as_required(["workdir"])


def training_hours(rows: list[dict], batch_size: int, cores: int) -> dict[int, float]:
    """Cumulative training hours (x `cores`) at each logged step."""
    hours, total, previous = {}, 0.0, 0
    for row in rows:
        if row.get("examples_per_sec"):
            total += (row["step"] - previous) * batch_size / row["examples_per_sec"] * cores / 3600
            previous = row["step"]
        hours[row["step"]] = total
    return hours


def plot(workdir: pathlib.Path, output: pathlib.Path) -> None:
    """The two panels of `workdir`'s curves, saved to `output`."""
    rows = metric_writer.read_metrics(workdir)
    config = workdirs.load_config(workdir)
    spec = data.get_spec(config.dataset.name)
    unit = "nats" if config.model.num_levels == 2 else "bits/dim"
    keys = {
        "nats": ("loss", "eval_nll_nats"),
        "bits/dim": ("loss_bits_per_dim", "eval_bits_per_dim"),
    }
    records = [r for r in provenance.read(workdir) if r["program"] == "train"]
    on_cpu = all(r.get("device_kind") == "cpu" for r in records)
    cores = max((r.get("cpu_cores") or 1 for r in records), default=1) if on_cpu else 1
    hours = training_hours(rows, config.batch_size, cores)
    line = common.published_in(config.get("reference", ""), unit, spec.image_shape)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), dpi=120, sharey=True)
    for ax, x_of, xlabel in (
        (axes[0], lambda step: step, "step"),
        (axes[1], hours.get, "training CPU-hours" if on_cpu else "training hours"),
    ):
        for key, label in zip(keys[unit], ("train", config.dataset.eval_split), strict=True):
            points = [(x_of(r["step"]), r[key]) for r in rows if r.get(key) is not None]
            if points:
                ax.plot(
                    *zip(*points, strict=True),
                    marker="." if label != "train" else None,
                    label=label,
                )
        if line is not None:
            ax.axhline(line, color="k", linestyle="--", linewidth=1, label=f"published {line:.4g}")
        ax.set(xlabel=xlabel, ylabel=f"NLL ({unit})")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"{config.model.name} on {config.dataset.name}: {workdir}")
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
    except OSError as e:
        program.fail("plot", e)
    output = pathlib.Path(_OUTPUT.value or workdir / "learning_curves.png")
    plot(workdir, output)
    print(output)


if __name__ == "__main__":
    program.start(main, joins_job=False)
