"""experiments.sweep: 2 tiny models x 2 seeds run two at a time, a stopped
member resumes, finished members are skipped, failures are reported without
stopping the others, and the SLURM array job (in a folder with a space, on
a node without $PIXEL_MODELS_DATA_DIR) runs the member it is given, with
the same bits as the local run. Members pin themselves to their cores,
with no Python run between fork and exec. A member is finished when
evaluated at its last step, and ROOT/sweep.json reads back as written."""

import json
import os
import pathlib
import shlex
import stat
import subprocess
import sys
import warnings

import jax
import pytest

from experiments.sweeps import local, pin
from experiments.sweeps.resolve import resolve
from experiments.sweeps.sweep_file import Member, Sweep
from pixel_models.data import DATA_DIR_ENV
from pixel_models.training import evaluation, provenance
from tests.helpers import ROOT, cli, run_ok

SWEEP_CONFIG = '''
"""The tests' sweeps over binarized MNIST's tiny recipes, 4 steps each."""
from configs import binarized_mnist


def get_config(arg):
    config = binarized_mnist.get_config(arg)
    config.num_train_steps = config.log_every_steps = config.checkpoint_every_steps = 4
    config.eval_every_steps = 4
    config.dataset.eval_split = "validation[:16]"
    config.eval_batch_size = 16
    return config


def get_sweep(arg):
    if arg == "grid":
        models, seeds = ("pixelcnn", "gated_pixelcnn"), (0, 1)
        return [{"config": f"{m},tiny", "seed": s} for m in models for s in seeds]
    if arg == "broken":  # both fail in train's checks
        bad = ({"optimizer.learning_rate": -1e-3}, {"keep_checkpoints": 0})
        return [{"config": "pixelcnn,tiny", **fields} for fields in bad]
    if arg == "typo":
        return [{"config": "pixelcnn,tiny", "optimizer.lr": 1e-3}]
    return None
'''
MEMBERS = [
    "pixelcnn-tiny.seed=0",
    "pixelcnn-tiny.seed=1",
    "gated_pixelcnn-tiny.seed=0",
    "gated_pixelcnn-tiny.seed=1",
]
SPLIT = "test[:16]"


def cpu_share() -> set[int]:
    """The cores `--parallel=2` gives each member: the same count gives the
    same bits on CPU (XLA splits its sums by it)."""
    cores = sorted(os.sched_getaffinity(0))
    return set(cores[: max(1, len(cores) // 2)])


def test_a_member_is_finished_when_evaluated_at_its_last_step(tmp_path):
    member = Member(
        name="pixelcnn-tiny.seed=1",
        group="pixelcnn-tiny",
        recipe="pixelcnn,tiny",
        overrides={"seed": 1},
        config={"num_train_steps": 4},
        workdir=tmp_path / "pixelcnn-tiny.seed=1",
        commands=(("python", "-m", "experiments.train", "--config=a b.py:pixelcnn,tiny"),),
    )
    environment = {DATA_DIR_ENV: "/data"}
    sweep = Sweep(tmp_path, "c.py:seeds", SPLIT, ROOT, ["python", "x"], [member], environment)
    sweep.write()
    assert Sweep.read(tmp_path) == sweep  # what the sweep writes, the report reads
    assert not member.finished(SPLIT)
    member.workdir.mkdir()
    for step, finished in [(2, False), (4, True)]:
        result = {"split": SPLIT, "step": step}
        evaluation.output_path(member.workdir, SPLIT).write_text(json.dumps(result))
        assert member.finished(SPLIT) == finished
    assert not member.finished("validation")


@pytest.fixture(scope="module")
def sweep_config(tmp_path_factory) -> pathlib.Path:
    config = tmp_path_factory.mktemp("config") / "sweep_config.py"
    config.write_text(SWEEP_CONFIG)
    return config


@pytest.fixture(scope="module")
def swept(sweep_config, tmp_path_factory, data_dir):
    """A sweep of 4 members with --parallel=2, the second of them stopped at
    step 2 of 4 beforehand; returns (config file, root, the sweep's stdout)."""
    config, root = sweep_config, tmp_path_factory.mktemp("sweep") / "root"
    run_ok(
        "experiments.train",
        f"--config={config}:pixelcnn,tiny",
        f"--workdir={root / MEMBERS[1]}",
        "--config.seed=1",
        "--config.num_train_steps=2",
    )
    out, _ = run_ok(
        "experiments.sweep",
        f"--config={config}:grid",
        f"--workdir={root}",
        f"--split={SPLIT}",
        "--parallel=2",
    )
    return config, root, out


@pytest.mark.slow
def test_a_sweep_runs_every_member_two_at_a_time(swept):
    config, root, out = swept
    lines = out.splitlines()
    assert all(": started, log " in line for line in lines[:2])  # two at once
    assert lines[-1].startswith("sweep: 4 of 4 members finished")
    sweep = json.loads((root / "sweep.json").read_text())
    assert [m["name"] for m in sweep["members"]] == MEMBERS
    assert sweep["members"][2]["recipe"] == "gated_pixelcnn,tiny"
    assert sweep["members"][2]["overrides"] == {"seed": 0}
    assert sweep["members"][2]["group"] == "gated_pixelcnn-tiny"
    assert sweep["members"][2]["commands"][0].endswith(
        f"experiments.train --config={config}:gated_pixelcnn,tiny "
        f"--workdir={root / MEMBERS[2]} --config.seed=0"
    )
    results = [evaluation.read_result(root / name, SPLIT) for name in MEMBERS]
    assert all(r["step"] == 4 and r["num_examples"] == 16 for r in results)
    assert [r["model"] for r in results] == ["pixelcnn"] * 2 + ["gated_pixelcnn"] * 2
    assert results[0]["nll_nats"] != results[1]["nll_nats"]  # the seed was set
    for name in MEMBERS:
        records = provenance.read(root / name)
        assert records[-1]["program"] == "evaluate" and records[-1]["result"]["split"] == SPLIT
        assert records[-2]["cpu_cores"] == len(cpu_share())  # pinned: two members share the CPU
    # The stopped member resumed from its checkpoint at step 2.
    assert "resuming from the checkpoint at step 2" in (root / MEMBERS[1] / "log.txt").read_text()
    ends = [r for r in provenance.read(root / MEMBERS[1]) if r["program"] == "train_end"]
    assert [(r["start_step"], r["step"], r["ended"]) for r in ends] == [
        (0, 2, "done"),
        (2, 4, "done"),
    ]


@pytest.mark.slow
def test_run_records_say_what_ran_where(swept):
    config, root, _ = swept
    records = provenance.read(root / MEMBERS[0])
    train, end, evaluate = [r for r in records if r["program"] != provenance.PROGRESS]
    assert [train["program"], end["program"], evaluate["program"]] == [
        "train",
        "train_end",
        "evaluate",
    ]
    assert train["command"] == [
        sys.executable,
        "-m",
        "experiments.train",
        f"--config={config}:pixelcnn,tiny",
        f"--workdir={root / MEMBERS[0]}",
        "--config.seed=0",
    ]
    assert evaluate["command"][1:3] == ["-m", "experiments.evaluate"]
    assert train["config"]["seed"] == 0 and train["config"]["num_train_steps"] == 4
    assert set(train["versions"]) == {"python", *provenance.PACKAGES}
    assert train["device_kind"] == "cpu" and train["num_devices"] == 1
    assert train["num_processes"] == 1 and train["time"].endswith("+00:00")
    # A commit of this checkout (HEAD may have moved on since), or null outside one.
    kind = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-t", str(train["git_commit"])],
        capture_output=True,
        text=True,
    )
    assert kind.stdout.strip() == "commit" or train["git_commit"] is None
    assert isinstance(train["git_dirty"], bool) or train["git_commit"] is None
    assert end["start_step"] == 0 and end["step"] == 4 and end["ended"] == "done"
    assert 0 < end["seconds"] < 300


@pytest.mark.slow
def test_a_finished_sweep_is_skipped(swept):
    config, root, _ = swept
    members = [root / name for name in MEMBERS]
    before = {p: p.stat().st_mtime_ns for m in members for p in m.rglob("*")}
    out, _ = run_ok(
        "experiments.sweep", f"--config={config}:grid", f"--workdir={root}", f"--split={SPLIT}"
    )
    skipped = [line.split(": ", 1)[1] for line in out.splitlines()[:4]]
    assert skipped == ["finished before, skipped"] * 4
    assert {p: p.stat().st_mtime_ns for m in members for p in m.rglob("*")} == before


def fake(folder: pathlib.Path, name: str, script: str) -> None:
    """An executable shell script `folder/name`."""
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_members_pin_themselves_without_python_between_fork_and_exec(tmp_path):
    """Two members at a time, each on its share of the cores, started from a
    process where JAX runs (it warns when Python code runs after a fork)."""
    jax.devices()  # JAX's backends up, and its fork warning armed
    affinity = [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"]
    members = [
        Member(f"m{i}", "m", "", {}, {}, tmp_path / f"m{i}", (tuple(affinity),)) for i in range(2)
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert local.execute(members, 2, 2, ROOT, logs=True) == []
    assert [str(w.message) for w in caught] == []
    shares = [sorted(share) for share in local.cpu_shares(2)]
    for member, share in zip(members, reversed(shares), strict=True):  # taken from the end
        log = (member.workdir / local.LOG_FILE).read_text().splitlines()
        assert log == [f"$ {shlex.join(affinity)}", str(share)]
        assert len(share) == len(cpu_share())


@pytest.mark.slow
def test_slurm_array_job_runs_its_member_with_the_same_bits(swept, tmp_path):
    config, root, _ = swept
    bin_folder, other = tmp_path / "bin", tmp_path / "other root"
    bin_folder.mkdir()
    arguments = tmp_path / "sbatch_args"  # one a line
    fake(bin_folder, "sbatch", f'printf "%s\\n" "$@" > {arguments}\necho "4242;cluster"\n')
    fake(bin_folder, "srun", 'export SLURM_ARRAY_TASK_ID\nexec "$@"\n')
    env = dict(os.environ, PATH=f"{bin_folder}:{os.environ['PATH']}")
    out, _ = run_ok(
        "experiments.sweep",
        f"--config={config}:grid",
        f"--workdir={other}",
        f"--split={SPLIT}",
        "--launcher=slurm",
        "--parallel=2",
        "--nodes=2",
        "--ntasks_per_node=4",
        "--sbatch_option=--time=0:10:00",
        "--submit",
        env=env,
    )
    script = other / "sweep.sbatch"
    assert "SLURM job 4242" in out
    assert arguments.read_text().splitlines() == ["--parsable", str(script)]
    assert subprocess.run(["bash", "-n", script]).returncode == 0
    lines = script.read_text().splitlines()
    directives = [line for line in lines if line.startswith("#SBATCH")]
    assert directives == [
        '#SBATCH --job-name="sweep-other root"',  # sbatch reads quotes as a shell does
        "#SBATCH --array=0-3%2",
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --gpus-per-task=1",
        f'#SBATCH --output="{other}/slurm/%A_%a.out"',
        "#SBATCH --time=0:10:00",
    ]
    assert f"# system): the repository {ROOT}, its Python {sys.executable}," in lines
    data_dir = os.path.abspath(os.environ[DATA_DIR_ENV])
    assert f"export {DATA_DIR_ENV}={shlex.quote(data_dir)}" in lines
    assert json.loads((other / "sweep.json").read_text())["environment"] == {DATA_DIR_ENV: data_dir}
    assert (other / "slurm").is_dir() and not (other / MEMBERS[0]).exists()
    # Array task 0 on a node without the data folder's variable, on as many
    # cores as the local sweep gave each member.
    node_env = {k: v for k, v in env.items() if k != DATA_DIR_ENV}
    task = subprocess.run(
        pin.pinned(cpu_share(), ["bash", str(script)]),
        env=dict(node_env, SLURM_ARRAY_TASK_ID="0"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert task.returncode == 0, task.stderr
    assert sorted(p.name for p in other.iterdir() if p.is_dir()) == [MEMBERS[0], "slurm"]
    first, *_, last = task.stdout.splitlines()
    assert first == f"[member 0 of 4] {MEMBERS[0]}: started"
    assert last.startswith("sweep: 1 of 1 members finished")
    out, _ = run_ok("experiments.report", f"--workdir={root}", f"--workdir={other}")
    same = [line for line in out.splitlines() if line.startswith("- same")]
    assert len(same) == 1 and same[0].startswith("- same bits: "), out
    assert f"`{other}/{MEMBERS[0]}`" in same[0] and "FLAGGED" not in out


def test_a_failed_member_does_not_stop_the_others(sweep_config, tmp_path):
    process = cli("experiments.sweep", f"--config={sweep_config}:broken", f"--workdir={tmp_path}")
    out, err = process.communicate(timeout=300)
    first, second = (
        "pixelcnn-tiny.optimizer.learning_rate=-0.001",
        "pixelcnn-tiny.keep_checkpoints=0",
    )
    assert process.returncode == 1
    assert f"[1/2] {first}: FAILED (experiments.train exited 1): train: error: " in out
    assert "must be a positive number" in out
    assert f"[2/2] {second}: FAILED" in out and "must be a whole number >= 1" in out
    assert err.strip().splitlines() == [
        f"sweep: error: 2 of 2 members failed: {first} ({tmp_path / first / 'log.txt'}), "
        f"{second} ({tmp_path / second / 'log.txt'})"
    ]


def test_a_file_without_sweeps_is_one_recipe_and_dry_run_writes_nothing(tmp_path):
    """A recipe is a one-member sweep; `--config.FIELD=VALUE` sets its fields."""
    out, _ = run_ok(
        "experiments.sweep",
        "--config=configs/binarized_mnist.py:pixelcnn,tiny",
        f"--workdir={tmp_path / 'root'}",
        "--dry_run",
        "--config.num_train_steps=40",
        "--config.cpu_chunk_pixels=0",  # a field that the recipe leaves None
    )
    lines = out.splitlines()
    name = "pixelcnn-tiny.num_train_steps=40.cpu_chunk_pixels=0"
    assert lines[0] == f"[0] {name}: new" and len(lines) == 3
    workdir = tmp_path / "root" / name
    assert lines[1].endswith(
        f"--workdir={workdir} --config.num_train_steps=40 --config.cpu_chunk_pixels=0"
    )
    assert lines[2].endswith(f"experiments.evaluate --workdir={workdir} --split=test")
    assert not (tmp_path / "root").exists()


def test_command_line_fields_are_typed_and_set_in_every_member(sweep_config, tmp_path):
    settings = ["--config.num_train_steps=7", "--config.optimizer.learning_rate=1e-2"]
    sweep = resolve(f"{sweep_config}:grid", tmp_path, "test", settings)
    for member in sweep.members:
        assert member.overrides["num_train_steps"] == 7
        assert member.config["optimizer"]["learning_rate"] == 0.01
    with pytest.raises(ValueError, match="member 0 .*'x' is not int"):
        resolve(f"{sweep_config}:grid", tmp_path, "test", ["--config.num_train_steps=x"])


@pytest.mark.parametrize(
    "spec,message",  # {tests}: the tests' sweep config file
    [
        ("{tests}:nope", "no sweep or recipe 'nope': no binarized_mnist recipe for model 'nope'"),
        ("{tests}:nope", "row_lstm, vae; sweeps: see its get_sweep"),
        ("configs/binarized_mnist.py:nope", "vae; sweeps: cpu20, draw_attention, seeds, zoo"),
        ("configs/mnist.py:nope", "recipes: gated_pixelcnn, pixelcnn; the file defines no sweeps"),
        ("{tests}:typo", "member 0 (pixelcnn,tiny): no config field 'optimizer.lr'"),
        ("{tests}:grid --coordinator_address=h:1", "--coordinator_address: sweep joins no JAX"),
    ],
)
def test_unknown_names_fail_with_one_line(sweep_config, tmp_path, spec, message):
    """An unknown name: the recipes and the sweeps there are, in one line."""
    config, *flags = spec.format(tests=sweep_config).split()
    process = cli("experiments.sweep", f"--config={config}", f"--workdir={tmp_path / 'r'}", *flags)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1 and len(err.strip().splitlines()) == 1
    assert err.startswith("sweep: error: ") and message in err
    assert not (tmp_path / "r").exists()
