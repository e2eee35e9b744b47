"""Members executed here, several at a time, as child processes.

Each member's commands (train, then evaluate) run one after another in a
child process pinned to its own share of this process's CPU cores (Linux),
so that N members do not oversubscribe the machine; XLA sizes its thread
pools to the cores it is given. SIGINT or SIGTERM stops the children with
SIGTERM (train saves a checkpoint first) and raises `Stopped`.
"""

import dataclasses
import os
import pathlib
import shlex
import signal
import subprocess
import time
from typing import TextIO

from experiments.sweeps.sweep_file import Member

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
    """A member being executed: its commands still to start, and the child
    process of the current one."""

    member: Member
    cores: frozenset[int] | None
    cwd: pathlib.Path
    log: TextIO | None  # None: this process's stdout and stderr
    todo: list[tuple[str, ...]]
    began: float = dataclasses.field(default_factory=time.perf_counter)
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
        """Start the next command."""
        command = self.todo.pop(0)
        if self.log is not None:
            self.log.write(f"$ {shlex.join(command)}\n")
            self.log.flush()
        cores = self.cores
        self.process = subprocess.Popen(
            command,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT if self.log else None,
            start_new_session=True,  # Ctrl-C reaches the sweep only, which stops it in order
            preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None,
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
        return f"FAILED ({self.process.args[2]} exited {code}){last}"


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


def execute(
    members: list[Member], total: int, parallel: int, cwd: pathlib.Path, logs: bool
) -> list[Member]:
    """Execute `members` (of `total`) from `cwd`, `parallel` at a time, each
    child pinned to its share of the cores and writing to ROOT/<name>/log.txt
    (with `logs`; else to this process's output), and print a line as each
    starts and ends. Returns the members that failed. On SIGINT or SIGTERM,
    stops the executing ones with SIGTERM, waits for them and raises `Stopped`."""
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
                print(f"[{finished}/{total}] {child.member.name}: started{where}", flush=True)
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
                print(f"[{finished}/{total}] {child.member.name}: {child.end()}", flush=True)
    except Stopped as stop:
        _stop(executing, stop.signum)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return failed
