"""Run a sweep: every member a train run and its evaluation, resumable.

python -m experiments.sweep --config=configs/X.py:ARG --workdir=ROOT [--parallel=N] [--split=test]
python -m experiments.sweep --config=configs/X.py:ARG --workdir=ROOT --dry_run
python -m experiments.sweep --config=configs/X.py:ARG --workdir=ROOT --launcher=slurm [--submit]
python -m experiments.sweep --config=configs/X.py:ARG --workdir=ROOT --member=I

The sweep format (big_vision style). Beside `get_config(arg)`, a config file
may define `get_sweep(arg) -> list[dict] | None`:

    def get_sweep(arg):
        if arg == "seeds":  # 2 models x 3 seeds
            return [{"config": f"{m},tiny", "seed": s} for m in ("pixelcnn", "row_lstm")
                    for s in range(3)]
        return None  # no sweep of that name: ARG is a recipe

Each dict is one member: config fields by their dotted names, set to bool,
int, float or str values (`{"seed": 1, "optimizer.learning_rate": 3e-3}`),
and optionally "config", the recipe arg of the member's `get_config` (default
ARG itself), so that one sweep spans models. When the file has no
`get_sweep`, or `get_sweep(ARG)` returns None, the sweep is the recipe ARG
alone: one member, `get_config(ARG)`. Every member is resolved before
anything runs: an unknown sweep, recipe or field stops with one line.

A member is named after its recipe and overrides, in the order written:
"pixelcnn,tiny" with {"seed": 1} is `pixelcnn-tiny.seed=1` (characters other
than letters, digits and `._=+-` become `_`; a name that repeats gets `_2`,
`_3`, ...). It runs in ROOT/<name>/ as
    python -m experiments.train --config=FILE:RECIPE --workdir=ROOT/<name> --config.FIELD=VALUE ...
    python -m experiments.evaluate --workdir=ROOT/<name> --split=SPLIT
A member whose eval_<split>.json is at its num_train_steps is finished and
skipped; any other resumes from its newest checkpoint (train's own resume).
ROOT/sweep.json lists the members: name, recipe, overrides, resolved config,
commands. `python -m experiments.report --workdir=ROOT` then tabulates them.

Launchers:
- local (default): --parallel members at a time (default 1) as child
  processes writing to ROOT/<name>/log.txt. On Linux each child is pinned to
  its own CORES // N of this process's CPU cores (at least one; a remainder
  stays idle), and XLA sizes its thread pools to them: N members do not
  oversubscribe the machine. XLA:CPU splits its sums by that number, so on
  CPU a member's last bits depend on its share: the same seed gives the same
  bits for the same --parallel on the same machine (runs.jsonl records
  `cpu_cores`). A failed member is reported and the others go on; exit
  status 1 if any failed.
  Ctrl-C or SIGTERM sends the running members SIGTERM, waits while they save
  a checkpoint, and exits 130 / 143: the same command goes on from there.
- slurm: writes ROOT/sweep.sbatch, one array job (--parallel: at most that
  many members at a time) whose task I runs
  `srun python -m experiments.sweep --config=... --workdir=ROOT --member=I`,
  with output in ROOT/slurm/<job>_<task>.out; --submit submits it.
--member=I runs member I alone, with this process's output and environment:
under srun every task of a multi-node member runs train and evaluate, and
they join one JAX job (experiments/launch.py).
"""

import dataclasses
import importlib.util
import json
import os
import pathlib
import re
import shlex
import signal
import subprocess
import sys
import time
from types import ModuleType
from typing import TextIO

import ml_collections
from absl import flags

from experiments import launch
from pixel_models.training import checkpoints, evaluation, provenance

_CONFIG = flags.DEFINE_string(
    "config", None, "FILE:ARG, a sweep of get_sweep(ARG) or the recipe get_config(ARG)"
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Root folder: one subfolder per member")
_SPLIT = flags.DEFINE_string("split", "test", "Split each member is evaluated on")
_PARALLEL = flags.DEFINE_integer(
    "parallel",
    None,
    "Members at a time: local processes (default 1), or the SLURM array's throttle (default none)",
    lower_bound=1,
)
_LAUNCHER = flags.DEFINE_enum(
    "launcher", "local", ["local", "slurm"], "local: run here; slurm: write an array job"
)
_SUBMIT = flags.DEFINE_bool("submit", False, "With --launcher=slurm: sbatch the array job")
_MEMBER = flags.DEFINE_integer("member", None, "Run only member I (0-based), in the foreground")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "List the members and commands; write nothing")
_NODES = flags.DEFINE_integer("nodes", 1, "SLURM: nodes per member", lower_bound=1)
_TASKS = flags.DEFINE_integer(
    "ntasks_per_node", 1, "SLURM: processes per node (one per GPU is usual)", lower_bound=1
)
_GPUS = flags.DEFINE_integer("gpus_per_task", 1, "SLURM: GPUs per process (0: none)", lower_bound=0)
_SBATCH = flags.DEFINE_multi_string(
    "sbatch_option", [], "SLURM: another #SBATCH option, e.g. --sbatch_option=--time=4:00:00"
)
flags.mark_flags_as_required(["config", "workdir"])

SWEEP_FILE = "sweep.json"
LOG_FILE = "log.txt"
_PROJECT = pathlib.Path(__file__).resolve().parents[1]  # where `python -m experiments.X` runs


@dataclasses.dataclass(frozen=True)
class Member:
    """One run of the sweep: its name, where its config comes from, and the
    commands that train and evaluate it in `workdir`."""

    name: str
    recipe: str
    overrides: dict
    config: ml_collections.ConfigDict
    workdir: pathlib.Path
    commands: tuple[list[str], ...]

    @property
    def group(self) -> str:
        """Its name without the seed: the members that differ only in seed share it."""
        return member_name(self.recipe, {k: v for k, v in self.overrides.items() if k != "seed"})


def member_name(recipe: str, overrides: dict) -> str:
    """ "pixelcnn,tiny", {"seed": 1} -> "pixelcnn-tiny.seed=1", file-name safe."""
    parts = [recipe.replace(",", "-"), *(f"{k}={v}" for k, v in overrides.items())]
    return ".".join(re.sub(r"[^A-Za-z0-9._=+-]+", "_", part) for part in parts)


def _load_module(path: pathlib.Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"sweep_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _resolve(module: ModuleType, recipe: str, overrides: dict) -> ml_collections.ConfigDict:
    """`get_config(recipe)` with `overrides` (dotted field -> value) set."""
    config = module.get_config(recipe)
    for field, value in overrides.items():
        if not isinstance(value, bool | int | float | str):
            raise ValueError(f"{field}={value!r}: a sweep sets bool, int, float or str fields")
        *parents, leaf = field.split(".")
        node = config
        for key in parents:
            node = node.get(key) if isinstance(node, ml_collections.ConfigDict) else None
        if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
            raise ValueError(
                f"no config field {field!r} "
                "(experiments.train --config=FILE:RECIPE --print_config lists them)"
            )
        node[leaf] = value  # ConfigDict refuses a value of another type
    return config


def load_members(spec: str, root: pathlib.Path, split: str) -> list[Member]:
    """The members of `--config=spec` ("FILE:ARG"), resolved, with their
    commands for sweep root `root`. Raises ValueError with a one-line reason."""
    file, _, arg = spec.partition(":")
    if not arg:
        raise ValueError(f"--config={spec}: name a sweep or recipe after a colon, FILE:ARG")
    path = pathlib.Path(file).absolute()
    if not path.is_file():
        raise ValueError(f"--config={spec}: no file {path}")
    try:  # config code may raise anything; its message is the reason
        module = _load_module(path)
        entries = module.get_sweep(arg) if hasattr(module, "get_sweep") else None
    except Exception as e:
        raise ValueError(f"{spec}: {type(e).__name__}: {e}") from e
    is_sweep = entries is not None
    if is_sweep and not (entries and all(isinstance(e, dict) for e in entries)):
        raise ValueError(
            f"{spec}: get_sweep({arg!r}) must return a non-empty list of dicts, or None"
        )
    members, names = [], set()
    for index, entry in enumerate(entries if is_sweep else [{}]):
        overrides = dict(entry)
        recipe = str(overrides.pop("config", arg))
        try:
            config = _resolve(module, recipe, overrides)
        except Exception as e:
            where = f"member {index} ({recipe})" if is_sweep else f"no sweep or recipe {arg!r}"
            raise ValueError(f"{spec}: {where}: {e}") from e
        base = name = member_name(recipe, overrides)
        copy = 1
        while name in names:
            copy += 1
            name = f"{base}_{copy}"
        names.add(name)
        commands = _commands(f"{path}:{recipe}", overrides, root / name, split)
        members.append(Member(name, recipe, overrides, config, root / name, commands))
    return members


def _commands(
    spec: str, overrides: dict, workdir: pathlib.Path, split: str
) -> tuple[list[str], list[str]]:
    """The train and evaluate commands of a member."""
    settings = [f"--config.{field}={value}" for field, value in overrides.items()]
    train = [sys.executable, "-m", "experiments.train", f"--config={spec}", f"--workdir={workdir}"]
    evaluate = [sys.executable, "-m", "experiments.evaluate", f"--workdir={workdir}"]
    return [*train, *settings], [*evaluate, f"--split={split}"]


def is_finished(member: Member, split: str) -> bool:
    """Evaluated on `split` at its last step."""
    result = evaluation.read_result(member.workdir, split)
    return result is not None and result["step"] == member.config.num_train_steps


def write_sweep_file(root: pathlib.Path, spec: str, split: str, members: list[Member]) -> None:
    """ROOT/sweep.json: the members and the commands that run them."""
    sweep = {
        "config": spec,
        "split": split,
        "cwd": str(_PROJECT),
        "command": provenance.command(),
        "members": [
            {
                "name": m.name,
                "group": m.group,
                "recipe": m.recipe,
                "overrides": m.overrides,
                "config": json.loads(m.config.to_json()),
                "commands": [shlex.join(c) for c in m.commands],
            }
            for m in members
        ],
    }
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / (SWEEP_FILE + ".tmp")
    tmp.write_text(json.dumps(sweep, indent=2) + "\n")
    os.replace(tmp, root / SWEEP_FILE)


def cpu_shares(parallel: int) -> list[frozenset[int] | None]:
    """For each of `parallel` children, its own `cores // parallel` of this
    process's CPU cores (at least one: children share cores when they
    outnumber them); None each where the OS cannot pin a process."""
    if not hasattr(os, "sched_getaffinity"):
        return [None] * parallel
    cores = sorted(os.sched_getaffinity(0))
    size = max(1, len(cores) // parallel)
    starts = [i * size % len(cores) for i in range(parallel)]
    return [frozenset(cores[start : start + size]) for start in starts]


class _Stop(Exception):
    """SIGINT or SIGTERM reached the sweep."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stop(signum, frame):
    del frame
    raise _Stop(signum)


@dataclasses.dataclass
class _Job:
    """A member being run: its commands still to start, the one running."""

    member: Member
    cores: frozenset[int] | None
    log: TextIO | None  # None: this process's stdout and stderr
    todo: list[list[str]]
    began: float = dataclasses.field(default_factory=time.perf_counter)
    process: subprocess.Popen | None = None

    def next(self) -> None:
        """Start the next command."""
        command = self.todo.pop(0)
        if self.log is not None:
            self.log.write(f"$ {shlex.join(command)}\n")
            self.log.flush()
        cores = self.cores
        self.process = subprocess.Popen(
            command,
            cwd=_PROJECT,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT if self.log else None,
            start_new_session=True,  # Ctrl-C reaches the sweep only, which stops it in order
            preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None,
        )


def run(members: list[Member], total: int, parallel: int, logs: bool) -> list[Member]:
    """Run `members` (of `total`), `parallel` at a time, each child pinned
    to its share of the cores and writing to ROOT/<name>/log.txt (with
    `logs`; else to this process's output). Returns the members that failed.
    On SIGINT or SIGTERM, stops the running ones with SIGTERM (they save a
    checkpoint) and exits."""
    shares = cpu_shares(parallel) if logs else [None] * parallel
    waiting, running, failed = list(members), [], []
    finished = total - len(members)
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while waiting or running:
            while waiting and shares:
                member = waiting.pop(0)
                member.workdir.mkdir(parents=True, exist_ok=True)
                log = open(member.workdir / LOG_FILE, "a") if logs else None  # noqa: SIM115
                job = _Job(member, shares.pop(), log, list(member.commands))
                job.next()
                running.append(job)
                where = f", log {member.workdir / LOG_FILE}" if logs else ""
                print(f"[{finished}/{total}] {member.name}: started{where}", flush=True)
            time.sleep(0.1)
            for job in [j for j in running if j.process.poll() is not None]:
                code = job.process.returncode
                if code == 0 and job.todo:
                    job.next()
                    continue
                running.remove(job)
                shares.append(job.cores)
                finished += 1
                if code == 0:
                    outcome = f"done in {time.perf_counter() - job.began:.0f} s"
                else:
                    failed.append(job.member)
                    program = job.process.args[2]
                    outcome = f"FAILED ({program} exited {code}){_last_line(job)}"
                if job.log is not None:
                    job.log.close()
                print(f"[{finished}/{total}] {job.member.name}: {outcome}", flush=True)
    except _Stop as stop:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for job in running:
            job.process.terminate()
        for job in running:
            job.process.wait()
        names = ", ".join(job.member.name for job in running) or "none"
        print(
            f"sweep: stopped by {stop}, and so were the running members ({names}; train "
            "saves a checkpoint first); run the same command to go on",
            file=sys.stderr,
        )
        sys.exit(128 + stop.signum)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return failed


def _last_line(job: _Job) -> str:
    """': <the last line of its log>', what a failed CLI says is wrong."""
    if job.log is None:
        return ""
    lines = (job.member.workdir / LOG_FILE).read_text().strip().splitlines()
    return f": {lines[-1].strip()}" if lines else ""


def sbatch_script(root: pathlib.Path, spec: str, split: str, count: int) -> str:
    """The SLURM array job whose task I runs member I with --member=I."""
    throttle = f"%{_PARALLEL.value}" if _PARALLEL.value else ""
    options = [
        f"--job-name=sweep-{root.name}",
        f"--array=0-{count - 1}{throttle}",
        f"--nodes={_NODES.value}",
        f"--ntasks-per-node={_TASKS.value}",
        *([f"--gpus-per-task={_GPUS.value}"] if _GPUS.value else []),
        f"--output={root / 'slurm' / '%A_%a.out'}",
        *_SBATCH.value,
    ]
    file, _, arg = spec.partition(":")
    member = [
        sys.executable,
        "-m",
        "experiments.sweep",
        f"--config={pathlib.Path(file).absolute()}:{arg}",
    ]
    member += [f"--workdir={root}", f"--split={split}"]
    return "\n".join(
        [
            "#!/bin/bash",
            *(f"#SBATCH {option}" for option in options),
            f"# Task I runs member I of {root / SWEEP_FILE}. Written by:",
            f"# {shlex.join(provenance.command())}",
            f"cd {shlex.quote(str(_PROJECT))}",
            f'exec srun {shlex.join(member)} --member="$SLURM_ARRAY_TASK_ID"',
            "",
        ]
    )


def submit(path: pathlib.Path) -> str:
    """`sbatch path`; returns the job id."""
    try:
        done = subprocess.run(["sbatch", "--parsable", str(path)], capture_output=True, text=True)
    except FileNotFoundError:
        raise OSError(f"no sbatch on PATH: submit {path} from a SLURM login node") from None
    if done.returncode != 0:
        raise OSError(f"sbatch {path} failed: {done.stderr.strip() or done.returncode}")
    return done.stdout.strip().split(";")[0]


def _status(member: Member, split: str) -> str:
    if is_finished(member, split):
        return "finished"
    return "resumes" if checkpoints.has_checkpoints(member.workdir) else "new"


def _check_member(root: pathlib.Path, members: list[Member], index: int) -> Member:
    """Member `index`, if the sweep still has the members ROOT/sweep.json lists."""
    if not 0 <= index < len(members):
        raise ValueError(f"--member={index}: the sweep has members 0 to {len(members) - 1}")
    path = root / SWEEP_FILE
    if path.exists():
        listed = [m["name"] for m in json.loads(path.read_text())["members"]]
        if listed != [m.name for m in members]:
            raise ValueError(f"{path} lists other members than --config gives now: sweep again")
    return members[index]


def dry_run(members: list[Member], root: pathlib.Path, split: str) -> None:
    """Print every member's state and commands (and the SLURM script); write nothing."""
    for i, member in enumerate(members):
        print(f"[{i}] {member.name}: {_status(member, split)}")
        for command in member.commands:
            print(f"    {shlex.join(command)}")
    if _LAUNCHER.value == "slurm":
        print(sbatch_script(root, _CONFIG.value, split, len(members)))


def write_slurm(root: pathlib.Path, split: str, count: int) -> None:
    """ROOT/sweep.sbatch, submitted with --submit."""
    path = root / "sweep.sbatch"
    (root / "slurm").mkdir(exist_ok=True)
    path.write_text(sbatch_script(root, _CONFIG.value, split, count))
    if not _SUBMIT.value:
        print(f"sweep: wrote {path} ({count} members); submit it with: sbatch {path}")
        return
    try:
        job = submit(path)
    except OSError as e:
        launch.fail("sweep", e)
    print(f"sweep: submitted {path} ({count} members) as SLURM job {job}")


def run_here(root: pathlib.Path, members: list[Member], split: str) -> None:
    """Run the unfinished `members` here; exit 1 if any failed."""
    total, todo = len(members), []
    for i, member in enumerate(members):
        if is_finished(member, split):
            print(f"[{i + 1 - len(todo)}/{total}] {member.name}: finished before, skipped")
        else:
            todo.append(member)
    failed = run(todo, total, _PARALLEL.value or 1, logs=_MEMBER.value is None)
    if failed:
        names = ", ".join(f"{m.name} ({m.workdir / LOG_FILE})" for m in failed)
        launch.fail("sweep", RuntimeError(f"{len(failed)} of {total} members failed: {names}"))
    print(
        f"sweep: {total} of {total} members finished; python -m experiments.report --workdir={root}"
    )


def main(argv):
    # The sweep never joins a JAX job; its train and evaluate children do
    # (under srun, each task's).
    launch.setup(argv, join_job=False)
    root, split = pathlib.Path(_WORKDIR.value).absolute(), _SPLIT.value
    try:
        if _SUBMIT.value and _LAUNCHER.value != "slurm":
            raise ValueError("--submit submits a SLURM array job: add --launcher=slurm")
        members = load_members(_CONFIG.value, root, split)
        member = None if _MEMBER.value is None else _check_member(root, members, _MEMBER.value)
    except (ValueError, OSError) as e:
        launch.fail("sweep", e)
    if _DRY_RUN.value:
        dry_run(members, root, split)
    elif member is not None:
        run_here(root, [member], split)
    else:
        write_sweep_file(root, _CONFIG.value, split, members)
        if _LAUNCHER.value == "slurm":
            write_slurm(root, split, len(members))
        else:
            run_here(root, members, split)


if __name__ == "__main__":
    launch.run(main)
