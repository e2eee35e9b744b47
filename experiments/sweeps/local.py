"""Members executed here, several at a time, as child processes.

Each member's commands (train, then evaluate) run one after another in a
child process pinned to its own share of this process's CPU cores (Linux),
so that N members do not oversubscribe the machine; XLA sizes its thread
pools to the cores it is given. The child pins itself (`pin`): this
process only forks and execs. The children get the sweep's environment
(`sweep_file.environment`: the data folder, absolute). SIGINT or SIGTERM
stops the children with SIGTERM (train saves a checkpoint first) and raises
`Stopped`.
"""

import dataclasses
import os
import pathlib
import shlex
import signal
import subprocess
import time
from typing import TextIO

from experiments.sweeps import pin
from experiments.sweeps.sweep_file import Member, environment

LOG_FILE = "log.txt"  # in ROOT/<name>/


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


class Stopped(Exception):
    """SIGINT or SIGTERM reached the sweep; the members in `names` were
    executing and were stopped with it."""

    def __init__(self, signum: int, names: list[str] | None = None):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.names = names or []


def _raise_stopped(signum, frame):
    del frame
    raise Stopped(signum)


@dataclasses.dataclass
class _MemberProcess:
    """A member being executed: its commands still to start, and the current
    one (`command`) and its child process."""

    member: Member
    cores: frozenset[int] | None
    cwd: pathlib.Path
    log: TextIO | None  # None: this process's stdout and stderr
    todo: list[tuple[str, ...]]
    began: float = dataclasses.field(default_factory=time.perf_counter)
    command: tuple[str, ...] = ()
    process: subprocess.Popen | None = None

    @classmethod
    def start(
        cls, member: Member, cores: frozenset[int] | None, cwd: pathlib.Path, logs: bool
    ) -> "_MemberProcess":
        """Start `member`'s first command, appending to its log with `logs`."""
        member.workdir.mkdir(parents=True, exist_ok=True)
        log = open(member.workdir / LOG_FILE, "a") if logs else None  # noqa: SIM115
        child = cls(member, cores, cwd, log, list(member.commands))
        child.start_next()
        return child

    def start_next(self) -> None:
        """Start the next command, on its cores."""
        self.command = self.todo.pop(0)
        if self.log is not None:
            self.log.write(f"$ {shlex.join(self.command)}\n")
            self.log.flush()
        self.process = subprocess.Popen(
            pin.pinned(self.cores, self.command) if self.cores else self.command,
            cwd=self.cwd,
            env={**os.environ, **environment()},
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT if self.log else None,
            start_new_session=True,  # Ctrl-C reaches the sweep only, which stops it in order
        )

    def end(self) -> str:
        """Close its log; returns what became of it: "done in N s", or
        "FAILED (PROGRAM exited CODE): <the last line of its log>"."""
        code = self.process.returncode
        if self.log is not None:
            self.log.close()
        if code == 0:
            return f"done in {time.perf_counter() - self.began:.0f} s"
        lines = (
            (self.member.workdir / LOG_FILE).read_text().strip().splitlines() if self.log else []
        )
        last = f": {lines[-1].strip()}" if lines else ""  # what a failed CLI says is wrong
        return f"FAILED ({self.command[2]} exited {code}){last}"


def _stop(executing: list[_MemberProcess], signum: int) -> None:
    """SIGTERM every child (train saves a checkpoint first), wait for them,
    and raise `Stopped`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for child in executing:
        child.process.terminate()
    for child in executing:
        child.process.wait()
    raise Stopped(signum, [child.member.name for child in executing])


def say(tag: str | None, finished: int, total: int, member: Member, what: str) -> None:
    """Print `[finished/total] NAME: what` (`[tag] NAME: what` with a tag) at once."""
    print(f"[{tag or f'{finished}/{total}'}] {member.name}: {what}", flush=True)


def execute(
    members: list[Member],
    total: int,
    parallel: int,
    cwd: pathlib.Path,
    logs: bool,
    tag: str | None = None,
) -> list[Member]:
    """Execute `members` (of `total`) from `cwd`, `parallel` at a time, each
    child pinned to its share of the cores and writing to ROOT/<name>/log.txt
    (with `logs`; else to this process's output), and print a line as each
    starts and ends, led by `[finished/total]` or by `[tag]` (one member run
    alone: "member I of N"). Returns the members that failed. On SIGINT or
    SIGTERM, stops the executing ones with SIGTERM, waits for them and raises
    `Stopped`."""
    shares = cpu_shares(parallel) if logs else [None] * parallel
    waiting, executing, failed = list(members), [], []
    finished = total - len(members)
    previous = {s: signal.signal(s, _raise_stopped) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while waiting or executing:
            while waiting and shares:
                child = _MemberProcess.start(waiting.pop(0), shares.pop(), cwd, logs)
                executing.append(child)
                where = f", log {child.member.workdir / LOG_FILE}" if logs else ""
                say(tag, finished, total, child.member, f"started{where}")
            time.sleep(0.1)
            for child in [c for c in executing if c.process.poll() is not None]:
                if child.process.returncode == 0 and child.todo:
                    child.start_next()
                    continue
                executing.remove(child)
                shares.append(child.cores)
                finished += 1
                if child.process.returncode != 0:
                    failed.append(child.member)
                say(tag, finished, total, child.member, child.end())
    except Stopped as stop:
        _stop(executing, stop.signum)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return failed
