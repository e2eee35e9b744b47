"""What every command-line program shares: joining a multi-host job, and
failing with one clear line.

Several processes (a TPU pod slice, a SLURM job, or explicit flags) form one
JAX job through `jax.distributed.initialize`; every process then runs the
same command and loads only its own rows of each batch.
"""

import functools
import itertools
import os
import pathlib
import re
import signal
import sys
import threading
from collections.abc import Callable

import jax
from absl import app, flags, logging

from pixel_models import host_memory
from pixel_models.training import progress, steps, workdirs

_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0, for a multi-process run"
)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in a multi-process run")
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "This process's index in a multi-process run"
)


def one_arena_for(config_flag) -> bool:
    """Whether `host_memory.keep_host_memory` should use one arena for the program's
    `--config` (`config_flag`, its flag holder): for runs whose CPU steps
    take their batches whole (`steps.cpu_chunk_pixels` is 0). False when no
    config was given or it did not load (the program reports that next)."""
    try:
        config = config_flag.value
        return config is not None and not steps.cpu_chunk_pixels(config)
    except OSError:  # ml_collections' stand-in for a config that failed to load
        return False


# Whether the running program joins a multi-process JAX job (`start`).
_JOINS_JOB = True


def setup(argv: list[str], one_arena: bool = False) -> None:
    """Refuse stray arguments, keep host memory for reuse (`host_memory.keep_host_memory`,
    in one arena with `one_arena`), quiet library logs (orbax logs every file
    it writes at INFO; pass --verbosity=0 to see them), and join a
    multi-process job when this is one process of several: explicit flags,
    or what JAX detects by itself (TPU pods, SLURM); not in programs that
    only start or read runs (`start(..., joins_job=False)`)."""
    if len(argv) > 1:
        fail(pathlib.Path(argv[0]).stem, ValueError(f"unexpected arguments {argv[1:]}"))
    host_memory.keep_host_memory(one_arena)
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    if not _JOINS_JOB:
        return
    if _COORDINATOR.value is not None:
        jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    elif int(os.environ.get("SLURM_NTASKS", "1")) > 1 or "TPU_WORKER_HOSTNAMES" in os.environ:
        jax.distributed.initialize()


_HELP_FLAGS = ("--help", "-help", "-h", "-?", "--helpshort", "--helpfull")
CONFIG_HELP = (
    "config fields: every field of the recipe (configs/<dataset>.py over configs/common.py) is a\n"
    "flag: --config.FIELD=VALUE, e.g. --config.optimizer.learning_rate=3e-4. To list them with\n"
    "their values: python -m experiments.train --config=configs/X.py:ARG --print_config"
)


def help_text(argv: list[str]) -> str:
    """The program's docstring, its own flags, the multi-host flags (of a
    program that joins a job), and where the config fields are listed
    (`--helpfull`: every library's flags too)."""
    if "--helpfull" in argv:
        return str(flags.FLAGS)
    main_module = sys.modules["__main__"]
    parts = [(main_module.__doc__ or "").strip(), flags.FLAGS.main_module_help()]
    if _JOINS_JOB:
        parts.append(flags.FLAGS.module_help(__name__))
    if "config" in flags.FLAGS:
        parts.append(CONFIG_HELP)
    parts.append("--helpfull lists the flags of every library too.")
    return "\n\n".join(part.strip("\n") for part in parts if part.strip())


def parse_flags(argv: list[str], saved_config: bool = False) -> list[str]:
    """absl's flag parsing, but `--help` prints `help_text` and exits 0, and a
    bad flag or config (whose error may carry a whole traceback) exits with
    one line: the error's last line. With `saved_config` (train), config
    fields set without a recipe change the run saved in `--workdir`
    (`with_saved_config`). A program whose `--config` is not a config file
    (sweep) gets its `--config.FIELD=VALUE` arguments in `main`'s argv, and
    a program that joins no job refuses the multi-host flags."""
    program = pathlib.Path(argv[0]).stem
    if any(arg in _HELP_FLAGS for arg in argv[1:]):
        print(help_text(argv))
        sys.exit(0)
    try:
        if saved_config:
            argv = with_saved_config(argv)
        if "config" in flags.FLAGS and flags.FLAGS["config"].flag_type() == "string":
            fields = [arg for arg in argv[1:] if arg.startswith("--config.")]
            rest = [*flags.FLAGS([arg for arg in argv if arg not in fields]), *fields]
        else:
            rest = flags.FLAGS(argv)
        for flag in (_COORDINATOR, _NUM_PROCESSES, _PROCESS_ID):
            if not _JOINS_JOB and flags.FLAGS[flag.name].present:
                raise ValueError(f"--{flag.name}: {program} joins no JAX job")
        return rest
    except flags.Error as e:
        fail(program, e)
    except (AttributeError, KeyError) as e:  # ml_collections: --config.<unknown field>
        fail(program, ValueError(_unknown_field(e)))
    except ValueError as e:
        fail(program, e)


def with_saved_config(argv: list[str]) -> list[str]:
    """`argv` that sets config fields (`--config.FIELD=VALUE`) but names no
    recipe (`--config=FILE:ARG`), with `--config=` the config saved in its
    `--workdir` (`workdirs.get_config`): `train --workdir=DIR
    --config.num_train_steps=600` goes on with DIR's run, changed only as
    a resume may change it. Any other `argv` unchanged."""
    args = argv[1:]
    if any(arg == "--config" or arg.startswith("--config=") for arg in args):
        return argv
    field = next((arg for arg in args if arg.startswith("--config.")), None)
    if field is None:
        return argv
    workdir = next(
        (arg.partition("=")[2] for arg in args if arg.startswith("--workdir=")),
        next((value for flag, value in itertools.pairwise(args) if flag == "--workdir"), None),
    )
    if workdir is None or workdirs.load_config(workdir) is None:
        raise ValueError(
            f"{field.partition('=')[0]} sets a field of a recipe: give --config=FILE:RECIPE, "
            "or a --workdir that holds a run to change"
        )
    return [argv[0], f"--config={workdirs.__file__}:{workdir}", *args]


def _unknown_field(error: Exception) -> str:
    """ml_collections' AttributeError(KeyError("'name'\\nDid you mean ...?"))
    as plain text: no config field 'name'; did you mean ...?"""
    while error.args and isinstance(error.args[0], BaseException):
        error = error.args[0]
    text = str(error.args[0]) if error.args else str(error)
    field, *hints = text.splitlines() or [""]
    message = f"no config field '{field.strip(chr(34) + chr(39))}'"
    if hints:
        hint = " ".join(hints).strip()
        message += "; " + hint[:1].lower() + hint[1:]
    return message + " (experiments.train --config=... --print_config lists every field)"


def fail(program: str, error: BaseException) -> None:
    """Exit non-zero with `program: error: reason` as the only line; the
    reason is the error's last line (a config loading error ends with its cause)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = lines[-1] if lines else type(error).__name__
    # A traceback's last line names its exception ("ValueError: no recipe ..."):
    # the reason is what follows.
    reason = re.sub(r"^\w+(Error|Exception): ", "", reason)
    sys.exit(f"{program}: error: {reason}")


def start(
    main: Callable[[list[str]], None],
    saved_config: bool = False,
    joins_job: bool = True,
    stops_at_once: bool = False,
) -> None:
    """`absl.app.run(main)` with `parse_flags` (`saved_config`: see there);
    `joins_job=False` for a program that only starts or reads runs (sweep,
    report, plot): it never joins a multi-process job. Ctrl-C outside the
    training loop (which saves first: `trainer.train`) exits 130 with one
    line, at once: queued device work is dropped, not waited for.
    `stops_at_once`: for a program with nothing to save (sample, evaluate),
    even while Python waits in XLA (a compile), which a KeyboardInterrupt
    would wait out (`_exit_on_ctrl_c`)."""
    global _JOINS_JOB
    _JOINS_JOB = joins_job
    if stops_at_once:
        _exit_on_ctrl_c()
    try:
        app.run(main, flags_parser=functools.partial(parse_flags, saved_config=saved_config))
    except KeyboardInterrupt:
        _interrupted()


def _interrupted() -> None:
    """One line, and exit 130 now, without waiting for queued device work; on
    a line of its own, below a progress bar that is drawing."""
    progress.last_words(f"{pathlib.Path(sys.argv[0]).stem}: interrupted (Ctrl-C)")
    sys.stdout.flush()
    os._exit(130)


def _exit_on_ctrl_c() -> None:
    """Exit on SIGINT from a thread that watches the signal's wakeup fd: the C
    handler writes to it at once, while the main thread, which alone runs
    Python's handlers, may be inside a call into XLA for minutes."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd)

    def watch() -> None:
        while True:
            if signal.SIGINT in os.read(read_fd, 16):
                _interrupted()

    threading.Thread(target=watch, name="ctrl-c", daemon=True).start()
