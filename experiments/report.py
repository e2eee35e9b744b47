"""Tabulate sweeps: every member, every seed group, and a same-seed check;
or a folder of exported models: one row per model.

python -m experiments.report --workdir=ROOT [--workdir=ROOT2 ...] [--split=test]
python -m experiments.report --workdir=pretrained/binarized_mnist

A folder without sweep.json whose subfolders hold `experiments.export`'s
manifest.json gives the models table instead (the README's Results): model,
recipe and the overrides that change what is trained, steps, hardware,
CPU-hours, test NLL, the published figure (as the recipe's `reference`
names it: `configs.common.published`) and the gap. It prints the Markdown
table and writes nothing.

Reads each ROOT/sweep.json (written by experiments.sweep) and, per member,
ROOT/<name>/eval_<split>.json, runs.jsonl and metrics.jsonl. Writes
report.md, report.csv (one row per member) and report.png into the first
ROOT, and prints the Markdown:
- Members: model, dataset, seed, steps, wall time (the seconds of the
  train invocations summed, `provenance.invocations`: one killed outright
  counts up to its last checkpoint),
  NLL on the split (nats per image for binary data, K=2; bits/dim otherwise)
  beside the published number (`config.reference`), and the status of any
  member not finished: never started, stopped at a step, not evaluated.
- Across seeds: members whose configs are equal but for `seed`: the mean ±
  sample standard deviation over their distinct seeds, and n.
- Same config: members whose configs are identical, seed included (the same
  member in two ROOTs), must give the same bits. A relative NLL difference
  above 1e-6 is flagged. Beside each: the device kind and count, processes
  and CPU cores it ran on (runs.jsonl): only the same promise the same bits
  (on CPU, XLA splits its sums by the number of cores).
The split defaults to the one the sweep evaluated (sweep.json).
"""

import csv
import dataclasses
import json
import math
import pathlib
import re
import statistics

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from absl import flags  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from configs import common  # noqa: E402
from experiments import program  # noqa: E402
from experiments.sweeps.sweep_file import SWEEP_FILE, Member, Sweep  # noqa: E402
from pixel_models import data  # noqa: E402
from pixel_models.training import export, metric_writer, provenance, workdirs  # noqa: E402

_WORKDIRS = flags.DEFINE_multi_string("workdir", None, "Root of a sweep (repeat for more)")
_SPLIT = flags.DEFINE_string("split", None, "Evaluated split to report (default: the sweep's)")
flags.mark_flags_as_required(["workdir"])

TOLERANCE = 1e-6  # relative NLL difference between identical configs that is flagged


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one member of a sweep came to, as its files show it."""

    member: Member
    label: str  # its name, after its root when several are reported
    finished: bool  # evaluated on the split at its last step
    result: dict | None  # eval_<split>.json
    records: list[dict]  # runs.jsonl

    @property
    def status(self) -> str:
        """ "done", or how far it got."""
        if self.finished:
            return "done"
        target = self.member.config["num_train_steps"]
        ends = self._stepped
        if self.result is not None:
            return f"evaluated at step {self.result['step']} of {target}"
        if ends and ends[-1]["step"] == target:
            return "trained, not evaluated"
        if ends:
            how = "trained to" if ends[-1]["ended"] == "done" else f"{ends[-1]['ended']} at"
            return f"{how} step {ends[-1]['step']} of {target}"
        return "started, no step recorded" if self.member.workdir.exists() else "not started"

    @property
    def steps(self) -> int | None:
        if self.result is not None:
            return self.result["step"]
        ends = [run["step"] for run in self._stepped]
        return ends[-1] if ends else None

    @property
    def _stepped(self) -> list[dict]:
        """Its train invocations that recorded a step (`provenance.invocations`)."""
        return [run for run in provenance.invocations(self.records) if run["step"] is not None]

    @property
    def seconds(self) -> float:
        return sum(run["seconds"] for run in provenance.invocations(self.records))

    @property
    def devices(self) -> str:
        """The device kinds and counts its train and evaluate invocations ran on."""
        kinds = {
            f"{r['device_kind']} x{r['num_devices']} (processes {r['num_processes']}, "
            f"CPU cores {r['cpu_cores']})"
            for r in self.records
            if r["program"] != provenance.PROGRESS
        }
        return " + ".join(sorted(kinds)) or "unknown"

    @property
    def nll(self) -> tuple[float, str]:
        """The NLL as reported: nats per image for binary data, else bits/dim;
        a latent model's bound says which (e.g. "nats/image, bound (ELBO)")."""
        binary = self.member.config["model"]["num_levels"] == 2
        value, unit = (
            (self.result["nll_nats"], "nats/image")
            if binary
            else (self.result["bits_per_dim"], "bits/dim")
        )
        what = self.result.get("likelihood") or ""
        return value, f"{unit}, {what}" if what.startswith("bound") else unit


def load(roots: list[pathlib.Path], split: str | None) -> tuple[list[Outcome], list[str]]:
    """What the members of every root came to, and each root's split."""
    outcomes, splits = [], []
    for root in roots:
        sweep = Sweep.read(root)
        root_split = split or sweep.split
        splits.append(root_split)
        for member in sweep.members:
            label = member.name if len(roots) == 1 else f"{root}/{member.name}"
            outcomes.append(
                Outcome(
                    member=member,
                    label=label,
                    finished=member.finished(root_split),
                    result=member.result(root_split),
                    records=provenance.read(member.workdir),
                )
            )
    return outcomes, splits


def _key(config: dict, *without: str) -> str:
    return json.dumps({k: v for k, v in config.items() if k not in without}, sort_keys=True)


def _groups(outcomes: list[Outcome], *without: str) -> list[list[Outcome]]:
    """Finished outcomes whose configs are equal but for the fields `without`."""
    groups = {}
    for outcome in outcomes:
        if outcome.finished:
            groups.setdefault(_key(outcome.member.config, *without), []).append(outcome)
    return list(groups.values())


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes} min"


def _table(header: list[str], rows: list[list]) -> str:
    """A Markdown table; a `|` in a cell is escaped."""
    lines = [header, ["---"] * len(header)]
    lines += [[str(cell).replace("|", "\\|") for cell in row] for row in rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def member_table(outcomes: list[Outcome]) -> str:
    rows = []
    for o in outcomes:
        nll = "{:.4f} {}".format(*o.nll) if o.finished else "—"
        rows.append(
            [
                o.label,
                o.member.config["model"]["name"],
                o.member.config["dataset"]["name"],
                o.member.config["seed"],
                "—" if o.steps is None else o.steps,
                _duration(o.seconds),
                nll,
                o.member.config.get("reference", ""),
                o.status,
            ]
        )
    header = ["member", "model", "dataset", "seed", "steps", "wall time", "NLL", "published"]
    return _table([*header, "status"], rows)


def seed_table(outcomes: list[Outcome]) -> str:
    """Mean ± std over the distinct seeds of each group of equal configs."""
    rows = []
    for group in _groups(outcomes, "seed"):
        by_seed = {}
        for o in group:
            by_seed.setdefault(o.member.config["seed"], o.nll)
        values = [value for value, _ in by_seed.values()]
        unit = group[0].nll[1]
        spread = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
        first = group[0].member.config
        rows.append(
            [
                group[0].member.group,
                first["model"]["name"],
                first["dataset"]["name"],
                len(values),
                ", ".join(str(s) for s in sorted(by_seed)),
                f"{statistics.mean(values):.4f}{spread} {unit}",
            ]
        )
    return _table(["recipe", "model", "dataset", "n", "seeds", "NLL mean ± std"], rows)


def same_config_lines(outcomes: list[Outcome]) -> list[str]:
    """One line per set of identical configs: the same bits, or flagged."""
    lines = []
    for group in _groups(outcomes):
        if len(group) < 2:
            continue
        first = group[0].result["nll_nats"]
        worst = max(abs(o.result["nll_nats"] - first) / abs(first) for o in group)
        runs = "; ".join(f"`{o.label}` {o.result['nll_nats']!r} nats on {o.devices}" for o in group)
        if worst > TOLERANCE:
            verdict = (
                f"**FLAGGED: the same config gave other bits** (relative difference {worst:.2g})"
            )
        elif worst:
            verdict = f"same within {TOLERANCE:g} (relative difference {worst:.2g})"
        else:
            verdict = "same bits"
        lines.append(f"- {verdict}: {runs}")
    return lines or ["- no two finished members share a config"]


def report_markdown(outcomes: list[Outcome], roots: list[pathlib.Path], splits: list[str]) -> str:
    sources = ", ".join(
        f"`{root}` (split {split})" for root, split in zip(roots, splits, strict=True)
    )
    unfinished = [f"- `{o.label}`: {o.status}" for o in outcomes if not o.finished]
    parts = [
        "# Sweep report",
        f"Sweeps: {sources}. NLL: nats per image for binary data (K=2), else bits/dim. "
        "Wall time: the training invocations' seconds (runs.jsonl).",
        "## Members",
        member_table(outcomes),
        "## Across seeds (configs equal but for the seed)",
        seed_table(outcomes),
        f"## Same config, same bits (flagged above {TOLERANCE:g} relative)",
        "\n".join(same_config_lines(outcomes)),
        "## Not finished",
        "\n".join(unfinished) or "- none",
    ]
    return "\n\n".join(parts) + "\n"


def write_csv(outcomes: list[Outcome], path: pathlib.Path) -> None:
    header = ["member", "status", "model", "dataset", "seed", "steps", "num_train_steps"]
    header += ["wall_seconds", "split", "nll_nats", "bits_per_dim", "devices", "reference"]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for o in outcomes:
            result = o.result if o.finished else {}
            writer.writerow(
                [
                    o.label,
                    o.status,
                    o.member.config["model"]["name"],
                    o.member.config["dataset"]["name"],
                    o.member.config["seed"],
                    o.steps,
                    o.member.config["num_train_steps"],
                    round(o.seconds, 3),
                    result.get("split"),
                    result.get("nll_nats"),
                    result.get("bits_per_dim"),
                    o.devices,
                    o.member.config.get("reference", ""),
                ]
            )


def _wrap(name: str, width: int = 24) -> str:
    """`name` on lines of about `width` characters, broken before the dots
    that start its fields ("pixelcnn-tiny.seed=1" -> "pixelcnn-tiny\n.seed=1")."""
    lines = [""]
    for part in re.split(r"(?=\.[A-Za-z_])", name):
        if lines[-1] and len(lines[-1]) + len(part) > width:
            lines.append("")
        lines[-1] += part
    return "\n".join(lines)


def _plot_nll(ax, groups: list[list[Outcome]], ylabel: str) -> None:
    """Each finished member's NLL by recipe (a point marked with its seed),
    and the recipe's mean (a bar); recipe names wrapped under their column."""
    for x, group in enumerate(groups):
        values = [o.nll[0] for o in group]
        spread = [0.4 * (i + 0.5) / len(group) - 0.2 for i in range(len(group))]
        ax.scatter([x + d for d in spread], values, color=f"C{x}", zorder=3)
        for d, value, o in zip(spread, values, group, strict=True):
            ax.annotate(f"seed {o.member.config['seed']}", (x + d, value), fontsize="x-small")
        ax.hlines(statistics.mean(values), x - 0.3, x + 0.3, color=f"C{x}")
    ax.set_xticks(range(len(groups)), [_wrap(g[0].member.group) for g in groups])
    ax.set_xlim(-0.6, len(groups) - 0.4)  # room for the seeds' marks
    ax.set(ylabel=ylabel, title="NLL by recipe (bar: mean)")


def _plot_curves(ax, outcomes: list[Outcome]) -> None:
    """The periodic evaluation's bits/dim against step, per member (a line
    labelled with the member, for the figure's legend)."""
    for o in outcomes:
        if (o.member.workdir / metric_writer.METRICS_FILE).exists():
            rows = metric_writer.read_metrics(o.member.workdir)
            points = [(r["step"], r.get("eval_bits_per_dim")) for r in rows]
            points = [(step, value) for step, value in points if value is not None]
            if points:
                ax.plot(*zip(*points, strict=True), marker=".", label=o.label)
    ax.set(xlabel="step", ylabel="bits/dim on config.dataset.eval_split", title="Evaluation")


def _legend_below(fig: Figure, ax) -> None:
    """The legend of `ax`'s lines under all panels, in as many columns as fit
    across the figure; the figure is widened when one column does not fit,
    and made taller by the legend's rows."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    legend = fig.legend(handles, labels, loc="outside lower center", fontsize="small")
    column = legend.get_window_extent(fig.canvas.get_renderer()).width / fig.dpi
    line = legend.get_window_extent(fig.canvas.get_renderer()).height / fig.dpi / len(labels)
    legend.remove()
    fig.set_figwidth(max(fig.get_figwidth(), column + 0.2))
    columns = max(1, min(len(labels), int(fig.get_figwidth() // column)))
    fig.set_figheight(fig.get_figheight() + line * math.ceil(len(labels) / columns))
    fig.legend(handles, labels, loc="outside lower center", fontsize="small", ncols=columns)


def figure(outcomes: list[Outcome], splits: list[str]) -> Figure:
    """One panel of NLL by recipe per unit (nats/image, bits/dim), each as
    wide as its recipes need, then the evaluation curves, with their legend
    under the panels (member names are long)."""
    groups = _groups(outcomes, "seed")
    units = sorted({group[0].nll[1] for group in groups})
    by_unit = [[g for g in groups if g[0].nll[1] == unit] for unit in units]
    widths = [max(4.5, 2.0 * len(unit_groups)) for unit_groups in by_unit] + [6.0]
    fig, axes = plt.subplots(
        1,
        len(widths),
        figsize=(sum(widths), 4.8),
        dpi=120,
        width_ratios=widths,
        layout="constrained",
        squeeze=False,
    )
    fig.suptitle(f"Split {' / '.join(sorted(set(splits)))}")
    axes = list(axes.flat)
    for ax, unit, unit_groups in zip(axes, units, by_unit, strict=False):
        _plot_nll(ax, unit_groups, f"NLL ({unit})")
    _plot_curves(axes[-1], outcomes)
    for ax in axes:
        ax.grid(alpha=0.3)
    _legend_below(fig, axes[-1])
    return fig


def plot(outcomes: list[Outcome], splits: list[str], path: pathlib.Path) -> None:
    """`figure` written to `path` as PNG."""
    fig = figure(outcomes, splits)
    fig.savefig(path)
    plt.close(fig)


# Overrides that change how a run is watched and saved, not what it trains.
_BOOKKEEPING = {*workdirs.MUTABLE_FIELDS, "num_train_steps", "sample_every_steps"}


def _recipe(command: str) -> str:
    """`FILE.py:ARG` and the overrides that change the model, data or
    optimizer, from a train command line."""
    recipe, overrides = "", []
    for arg in command.split():
        if arg.startswith("--config="):
            recipe = arg.removeprefix("--config=").removeprefix("configs/")
        elif arg.startswith("--config."):
            field = arg.removeprefix("--config.").split("=")[0]
            if field not in _BOOKKEEPING:
                overrides.append(arg.removeprefix("--config."))
    return " ".join([f"`{recipe}`", *overrides])


def _bound_label(likelihood: str) -> str:
    """What follows a figure that is a bound (", bound (IWAE, k=1000)"); nothing
    after an exact NLL."""
    return f", {likelihood}" if likelihood.startswith("bound") else ""


def models_markdown(root: pathlib.Path) -> str:
    """The table of the exported models under `root` (ROOT/*/manifest.json),
    their NLL in nats for binary data, else bits/dim."""
    paths = sorted(root.glob(f"*/{export.MANIFEST_FILE}"))
    if not paths:
        raise FileNotFoundError(
            f"{root} has neither {SWEEP_FILE} (a sweep) nor */{export.MANIFEST_FILE} "
            "(exported models)"
        )
    rows = []
    for path in paths:
        manifest = json.loads(path.read_text())
        config = workdirs.get_config(path.parent)
        binary = config.model.num_levels == 2
        value = manifest["nll_nats"] if binary else manifest["bits_per_dim"]
        unit, digits = ("nats", 2) if binary else ("bits/dim", 3)
        shape = data.get_spec(config.dataset.name).image_shape
        published = common.published_in(config.reference, unit, shape)
        rows.append(
            [
                f"[{path.parent.name}]({path.parent})",  # the folder: variants of a model differ
                _recipe(manifest["commands"][0]),
                f"{manifest['step']:,}",
                ", ".join(manifest["hardware"]),
                f"{manifest['cpu_hours']:.1f}",
                f"{value:.{digits}f} {unit}"
                + ("" if manifest["split"] == "test" else f" ({manifest['split']})")
                + _bound_label(manifest.get("likelihood", "p(x)")),
                "—" if published is None else f"{published:.{digits}f} {unit}",
                "—" if published is None else f"{value - published:+.{digits}f}",
            ]
        )
    header = ["model", "recipe", "steps", "hardware", "CPU-hours", "test NLL", "published", "gap"]
    return _table(header, rows) + "\n"


def main(argv):
    program.setup(argv)
    roots = [pathlib.Path(w) for w in _WORKDIRS.value]
    if len(roots) == 1 and not (roots[0] / SWEEP_FILE).exists():
        try:
            print(models_markdown(roots[0]), end="")
        except (OSError, ValueError) as e:
            program.fail("report", e)
        return
    try:
        outcomes, splits = load(roots, _SPLIT.value)
    except (OSError, ValueError) as e:
        program.fail("report", e)
    markdown = report_markdown(outcomes, roots, splits)
    (roots[0] / "report.md").write_text(markdown)
    write_csv(outcomes, roots[0] / "report.csv")
    plot(outcomes, splits, roots[0] / "report.png")
    print(markdown)
    print(f"report: wrote {roots[0] / 'report.md'}, report.csv and report.png")


if __name__ == "__main__":
    program.start(main, joins_job=False)
