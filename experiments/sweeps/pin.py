"""A command run on some CPU cores only, as `taskset -c CORES COMMAND` would:

    python -m experiments.sweeps.pin 0,1 python -m experiments.train ...

sets its own CPU affinity to the cores (Linux), then becomes COMMAND (exec),
which inherits it: XLA then sizes its thread pools to those cores. The local
launcher starts each member's commands through it, so that no Python code
runs between fork and exec in the sweep's own process (a `preexec_fn`, which
JAX warns about in a multithreaded process). It imports nothing heavy: it
costs a bare interpreter's start.
"""

import os
import sys
from collections.abc import Sequence


def pinned(cores: frozenset[int], command: Sequence[str]) -> list[str]:
    """The command line that runs `command` on `cores` only."""
    spec = ",".join(str(core) for core in sorted(cores))
    return [sys.executable, "-m", "experiments.sweeps.pin", spec, *command]


def main(argv: list[str]) -> None:
    """`argv`: [program, CORES (comma-separated), COMMAND...]."""
    spec, *command = argv[1:]
    os.sched_setaffinity(0, {int(core) for core in spec.split(",")})
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv)
