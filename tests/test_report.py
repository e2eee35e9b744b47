"""experiments.report over two sweep roots written here: the member table
(with unfinished members), seed statistics, the same-config check that
flags a doctored result, the files it writes, and a figure whose long
names neither leave it nor cover another panel."""

import csv
import json
import math
import pathlib

from configs import binarized_mnist, mnist
from experiments import report
from pixel_models.training import evaluation, metric_writer, provenance
from tests.helpers import cli, run_ok

SPLIT = "test[:16]"


def member_config(dataset, seed: int) -> dict:
    config = dataset.get_config("pixelcnn,tiny")
    config.seed, config.num_train_steps = seed, 4
    return json.loads(config.to_json())


def record(program: str, **fields) -> dict:
    where = {"device_kind": "cpu", "num_devices": 1, "num_processes": 1, "cpu_cores": 2}
    return {"program": program, **where, **fields}


def write_root(root: pathlib.Path, members: list[tuple]) -> None:
    """A sweep root as experiments.sweep leaves it: `members` are (name,
    group, config, test NLL in nats or None, runs.jsonl records)."""
    entries = []
    for name, group, config, nll, records in members:
        entries.append({"name": name, "group": group, "config": config})
        workdir = root / name
        if records:
            workdir.mkdir(parents=True)
            lines = [json.dumps(r) + "\n" for r in records]
            (workdir / provenance.RECORDS_FILE).write_text("".join(lines))
        if nll is not None:
            bits = nll / (28 * 28 * math.log(2))
            result = {"split": SPLIT, "step": 4, "nll_nats": nll, "bits_per_dim": bits}
            evaluation.output_path(workdir, SPLIT).write_text(json.dumps(result))
    root.mkdir(parents=True, exist_ok=True)
    (root / "sweep.json").write_text(json.dumps({"split": SPLIT, "members": entries}))


def table_rows(markdown: str) -> dict[str, list[str]]:
    """The rows of the Markdown tables, by their first cell."""
    rows = [line.strip("|").split("|") for line in markdown.splitlines() if line.startswith("|")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows}


def finished(seconds: float) -> list[dict]:
    return [
        record("train"),
        record("train_end", start_step=0, step=4, seconds=seconds, ended="done"),
        record("evaluate"),
    ]


def test_report_tabulates_members_seeds_and_flags_other_bits(tmp_path):
    seed = {s: member_config(binarized_mnist, s) for s in range(4)}
    # Killed outright at step 3: its time counts up to its checkpoint at step 2.
    stopped = [
        record("train"),
        {"program": provenance.PROGRESS, "start_step": 0, "step": 2, "seconds": 3.0},
    ]
    resumed = [*stopped, *finished(5.0)]
    first, second = tmp_path / "first", tmp_path / "second"
    write_root(
        first,
        [
            ("pixelcnn-tiny.seed=0", "pixelcnn-tiny", seed[0], 100.0, resumed),
            ("pixelcnn-tiny.seed=1", "pixelcnn-tiny", seed[1], 102.0, finished(4.0)),
            ("pixelcnn-tiny.seed=2", "pixelcnn-tiny", seed[2], None, stopped),
            ("pixelcnn-tiny.seed=3", "pixelcnn-tiny", seed[3], None, []),
            ("mnist", "mnist", member_config(mnist, 0), 800.0, finished(6.0)),
        ],
    )
    write_root(
        second,
        [
            ("pixelcnn-tiny.seed=0", "pixelcnn-tiny", seed[0], 100.0, finished(7.0)),
            ("pixelcnn-tiny.seed=1", "pixelcnn-tiny", seed[1], 102.0 * (1 + 1e-5), finished(7.0)),
        ],
    )
    out, _ = run_ok("experiments.report", f"--workdir={first}", f"--workdir={second}")
    markdown = (first / "report.md").read_text()
    assert markdown in out
    rows = table_rows(markdown)
    assert rows[f"{first}/pixelcnn-tiny.seed=0"] == [
        *["pixelcnn", "binarized_mnist", "0", "4", "8.0 s", "100.0000 nats/image"],
        *["PixelRNN paper Table 4: PixelCNN 81.30 nats", "done"],
    ]
    assert rows[f"{first}/pixelcnn-tiny.seed=2"][-1] == "killed at step 2 of 4"
    assert rows[f"{first}/pixelcnn-tiny.seed=3"][-1] == "not started"
    assert rows[f"{first}/mnist"][5] == f"{800 / 784 / math.log(2):.4f} bits/dim"  # K=256
    # Seeds 0 and 1 (the second root's repeat of seed 0 counts once); MNIST alone.
    assert rows["pixelcnn-tiny"] == [
        *["pixelcnn", "binarized_mnist", "2", "0, 1", "101.0000 ± 1.4142 nats/image"]
    ]
    assert rows["mnist"][:4] == ["pixelcnn", "mnist", "1", "0"]
    same, flagged = [
        line for line in markdown.splitlines() if line.startswith("- ") and "nats on" in line
    ]
    assert same.startswith("- same bits: ")
    assert (
        f"`{second}/pixelcnn-tiny.seed=0` 100.0 nats on cpu x1 (processes 1, CPU cores 2)" in same
    )
    assert flagged.startswith(
        "- **FLAGGED: the same config gave other bits** (relative difference 1e-05): "
    )
    assert f"- `{first}/pixelcnn-tiny.seed=3`: not started" in markdown
    with open(first / "report.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 7 and table[0]["status"] == "done" and table[0]["wall_seconds"] == "8.0"
    assert table[2]["nll_nats"] == "" and table[2]["status"] == "killed at step 2 of 4"
    assert (first / "report.png").read_bytes().startswith(b"\x89PNG")


def test_a_folder_without_a_sweep_or_models_is_refused(tmp_path):
    process = cli("experiments.report", f"--workdir={tmp_path}")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert err.strip() == (
        f"report: error: {tmp_path} has neither sweep.json (a sweep) nor */manifest.json "
        "(exported models)"
    )


def test_report_figure_keeps_long_names_inside_and_apart(tmp_path):
    """Two roots of long member names, each with evaluation curves: every
    panel's labels lie inside the figure, no panel's labels reach another
    panel, and the legend covers no panel."""
    group = "pixelcnn-tiny.optimizer.learning_rate=0.003.model.hidden_dim=32.optimizer.name=adam"
    roots = [tmp_path / "a_sweep_root_with_a_long_name", tmp_path / "another_sweep_root"]
    for offset, root in enumerate(roots):
        members = [
            (f"{group}.seed={s}", group, member_config(binarized_mnist, s), 100.0 + s, finished(5))
            for s in range(2)
        ]
        members.append(("mnist", "mnist", member_config(mnist, 0), 800.0 + offset, finished(6)))
        write_root(root, members)
        for name, *_ in members:
            rows = [{"step": s, "eval_bits_per_dim": 0.3 - 0.01 * s} for s in range(0, 8, 2)]
            lines = "".join(json.dumps(row) + "\n" for row in rows)
            (root / name / metric_writer.METRICS_FILE).write_text(lines)
    fig = report.figure(*report.load(roots, None))
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    inside = fig.bbox.padded(1)  # a pixel of rounding
    panels = [ax.get_tightbbox(renderer) for ax in fig.axes]  # with ticks, labels, title
    (legend,) = fig.legends
    boxes = [*panels, legend.get_window_extent(renderer)]
    assert len(panels) == 3 and len(legend.get_texts()) == 6
    for i, box in enumerate(boxes):
        assert inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1), (i, box)
        for other in boxes[i + 1 :]:
            assert not box.overlaps(other), (box, other)


def test_a_bound_is_reported_as_a_bound(tmp_path):
    config = json.loads(binarized_mnist.get_config("vae,tiny").to_json())
    config["num_train_steps"] = 4
    write_root(tmp_path, [("vae", "vae", config, 90.0, finished(1.0))])
    path = evaluation.output_path(tmp_path / "vae", SPLIT)
    path.write_text(json.dumps(json.loads(path.read_text()) | {"likelihood": "bound (ELBO)"}))
    outcomes, _ = report.load([tmp_path], None)
    row = table_rows(report.member_table(outcomes))["vae"]
    assert row[5] == "90.0000 nats/image, bound (ELBO)"
