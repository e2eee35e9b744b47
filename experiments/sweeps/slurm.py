"""A sweep as one SLURM array job: ROOT/sweep.sbatch, whose task I runs
`srun python -m experiments.sweep ... --member=I`. Under srun every task of
a multi-node member runs train and evaluate, and they join one JAX job
(experiments/program.py). Output goes to ROOT/slurm/<job>_<task>.out.

The script names absolute paths of the machine that wrote it: the nodes
need the repository, the Python the sweep ran with (e.g. the virtual
environment's `.venv/bin/python`), ROOT and the data at those same paths (a
file system shared by the login and compute nodes). It exports the sweep's
environment (`sweep_file.environment`: $PIXEL_MODELS_DATA_DIR, made
absolute, when it was set), since a node's own environment may lack it.
"""

import dataclasses
import pathlib
import re
import shlex
import subprocess
import sys

from experiments.sweeps.sweep_file import SWEEP_FILE, Sweep

SCRIPT_FILE = "sweep.sbatch"


@dataclasses.dataclass(frozen=True)
class Resources:
    """What each array task asks for, and how many tasks at a time."""

    parallel: int | None  # array throttle: at most this many members at a time (None: no limit)
    nodes: int  # per member
    tasks_per_node: int  # processes per node (one per GPU is usual)
    gpus_per_task: int  # 0: none asked for
    sbatch_options: list[str]  # more #SBATCH options, e.g. "--time=4:00:00"


def directive_value(text: str) -> str:
    """`text` as one word of an #SBATCH line: as it is when it holds no
    space, quote or other special character, else in double quotes with `\\`
    and `"` escaped (sbatch's own reading of the line)."""
    if re.fullmatch(r"[\w@%+=:,./-]+", text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_script(sweep: Sweep, resources: Resources) -> str:
    """The array job whose task I executes member I of `sweep` with --member=I."""
    throttle = f"%{resources.parallel}" if resources.parallel else ""
    gpus = [f"--gpus-per-task={resources.gpus_per_task}"] if resources.gpus_per_task else []
    options = [
        f"--job-name={directive_value(f'sweep-{sweep.root.name}')}",
        f"--array=0-{len(sweep.members) - 1}{throttle}",
        f"--nodes={resources.nodes}",
        f"--ntasks-per-node={resources.tasks_per_node}",
        *gpus,
        f"--output={directive_value(str(sweep.root / 'slurm' / '%A_%a.out'))}",
        *resources.sbatch_options,
    ]
    file, _, arg = sweep.config.partition(":")
    task = [sys.executable, "-m", "experiments.sweep"]
    task += [f"--config={pathlib.Path(file).absolute()}:{arg}"]
    task += [f"--workdir={sweep.root}", f"--split={sweep.split}"]
    return "\n".join(
        [
            "#!/bin/bash",
            *(f"#SBATCH {option}" for option in options),
            f"# Task I runs member I of {sweep.root / SWEEP_FILE}. Written by:",
            f"# {shlex.join(sweep.command)}",
            "# The nodes need these at the same absolute paths as here (a shared file",
            f"# system): the repository {sweep.cwd}, its Python {sys.executable},",
            f"# the sweep's folder {sweep.root} and the data.",
            *(f"export {name}={shlex.quote(value)}" for name, value in sweep.environment.items()),
            f"cd {shlex.quote(str(sweep.cwd))}",
            f'exec srun {shlex.join(task)} --member="$SLURM_ARRAY_TASK_ID"',
            "",
        ]
    )


def write_script(sweep: Sweep, resources: Resources) -> pathlib.Path:
    """ROOT/sweep.sbatch, and the ROOT/slurm/ folder for its output; returns
    the script's path."""
    path = sweep.root / SCRIPT_FILE
    (sweep.root / "slurm").mkdir(exist_ok=True)
    path.write_text(array_script(sweep, resources))
    return path


def submit(path: pathlib.Path) -> str:
    """`sbatch path`; returns the job id. Raises OSError with a one-line reason."""
    try:
        done = subprocess.run(["sbatch", "--parsable", str(path)], capture_output=True, text=True)
    except FileNotFoundError:
        raise OSError(f"no sbatch on PATH: submit {path} from a SLURM login node") from None
    if done.returncode != 0:
        raise OSError(f"sbatch {path} failed: {done.stderr.strip() or done.returncode}")
    return done.stdout.strip().split(";")[0]
