r"""Run a sweep: every member a train run and its evaluation, resumable.

python -m experiments.sweep --config=configs/X.py:ARG --workdir=ROOT [--parallel=N] [--split=test] \
    [--config.FIELD=VALUE ...]
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
alone: one member, `get_config(ARG)`. `--config.FIELD=VALUE` sets FIELD of
every member, after the member's own fields (a string, read as the field's
type). Every member is resolved before anything runs: an unknown sweep,
recipe or field stops with one line.

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
they join one JAX job (experiments/program.py).
"""

import pathlib
import shlex
import sys

from absl import flags

from experiments import program
from experiments.sweeps import local, slurm
from experiments.sweeps.resolve import resolve
from experiments.sweeps.sweep_file import Member, Sweep
from pixel_models.training import checkpoints

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


def _resources() -> slurm.Resources:
    return slurm.Resources(
        parallel=_PARALLEL.value,
        nodes=_NODES.value,
        tasks_per_node=_TASKS.value,
        gpus_per_task=_GPUS.value,
        sbatch_options=_SBATCH.value,
    )


def _state(member: Member, split: str) -> str:
    if member.finished(split):
        return "finished"
    return "resumes" if checkpoints.has_checkpoints(member.workdir) else "new"


def _check_member(sweep: Sweep, index: int) -> Member:
    """Member `index`, if the sweep still has the members ROOT/sweep.json lists."""
    members = sweep.members
    if not 0 <= index < len(members):
        raise ValueError(f"--member={index}: the sweep has members 0 to {len(members) - 1}")
    if sweep.path.exists():
        listed = [m.name for m in Sweep.read(sweep.root).members]
        if listed != [m.name for m in members]:
            raise ValueError(
                f"{sweep.path} lists other members than --config gives now: sweep again"
            )
    return members[index]


def print_plan(sweep: Sweep) -> None:
    """Print every member's state and commands (and the SLURM script); write nothing."""
    for i, member in enumerate(sweep.members):
        print(f"[{i}] {member.name}: {_state(member, sweep.split)}")
        for command in member.commands:
            print(f"    {shlex.join(command)}")
    if _LAUNCHER.value == "slurm":
        print(slurm.array_script(sweep, _resources()))


def write_array_job(sweep: Sweep) -> None:
    """ROOT/sweep.sbatch, submitted with --submit."""
    path, count = slurm.write_script(sweep, _resources()), len(sweep.members)
    if not _SUBMIT.value:
        print(f"sweep: wrote {path} ({count} members); submit it with: sbatch {path}")
        return
    try:
        job = slurm.submit(path)
    except OSError as e:
        program.fail("sweep", e)
    print(f"sweep: submitted {path} ({count} members) as SLURM job {job}")


def execute_here(sweep: Sweep, members: list[Member]) -> None:
    """Execute the unfinished ones of `members` here; exit 1 if any failed,
    128 + the signal's number if a signal stopped them."""
    total, todo = len(members), []
    tag = None if _MEMBER.value is None else f"member {_MEMBER.value} of {len(sweep.members)}"
    for i, member in enumerate(members):
        if member.finished(sweep.split):
            local.say(tag, i + 1 - len(todo), total, member, "finished before, skipped")
        else:
            todo.append(member)
    parallel, logs = _PARALLEL.value or 1, _MEMBER.value is None
    try:
        failed = local.execute(todo, total, parallel, sweep.cwd, logs, tag)
    except local.Stopped as stop:
        print(
            f"sweep: stopped by {stop}, and so were the running members "
            f"({', '.join(stop.names) or 'none'}; train saves a checkpoint first); "
            "run the same command to go on",
            file=sys.stderr,
        )
        sys.exit(128 + stop.signum)
    if failed:
        names = ", ".join(f"{m.name} ({m.workdir / local.LOG_FILE})" for m in failed)
        program.fail("sweep", RuntimeError(f"{len(failed)} of {total} members failed: {names}"))
    report = f"python -m experiments.report --workdir={sweep.root}"
    print(f"sweep: {total} of {total} members finished; {report}")


def main(argv):
    # The sweep never joins a JAX job; its train and evaluate children do
    # (under srun, each task's).
    settings = [arg for arg in argv[1:] if arg.startswith("--config.")]
    program.setup([arg for arg in argv if arg not in settings])
    root = pathlib.Path(_WORKDIR.value).absolute()
    try:
        if _SUBMIT.value and _LAUNCHER.value != "slurm":
            raise ValueError("--submit submits a SLURM array job: add --launcher=slurm")
        sweep = resolve(_CONFIG.value, root, _SPLIT.value, settings)
        member = None if _MEMBER.value is None else _check_member(sweep, _MEMBER.value)
    except (ValueError, OSError) as e:
        program.fail("sweep", e)
    if _DRY_RUN.value:
        print_plan(sweep)
    elif member is not None:
        execute_here(sweep, [member])
    else:
        sweep.write()
        if _LAUNCHER.value == "slurm":
            write_array_job(sweep)
        else:
            execute_here(sweep, sweep.members)


if __name__ == "__main__":
    program.start(main, joins_job=False)
