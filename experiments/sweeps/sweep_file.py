"""ROOT/sweep.json: a sweep's members and the commands that train and
evaluate them, written by `experiments.sweep` and read by it and by
`experiments.report`.

    {"config": "FILE:ARG", "split": SPLIT, "cwd": where the commands run,
     "command": the sweep's own command line,
     "environment": {"PIXEL_MODELS_DATA_DIR": absolute folder, ...},
     "members": [{"name", "group", "recipe", "overrides", "config", "commands"}]}

A member's `config` is its resolved config (JSON) and `commands` its train and
evaluate command lines (shell words). Its files are in ROOT/<name>/. Readers
need only `split` and each member's `name`, `group` and `config`.
`environment` holds the variables of ENVIRONMENT that were set where the
sweep was made (`environment()`): the members run with them, also on SLURM
nodes, whose own environment may lack them.
"""

import dataclasses
import json
import os
import pathlib
import shlex

from pixel_models.data import CACHE_DIR_ENV, DATA_DIR_ENV
from pixel_models.training import evaluation

SWEEP_FILE = "sweep.json"
ENVIRONMENT = (DATA_DIR_ENV, CACHE_DIR_ENV)  # variables naming where a member's data is


def environment() -> dict[str, str]:
    """The variables of ENVIRONMENT set in this process, their folders made
    absolute (members run from the repository, not from here)."""
    return {name: os.path.abspath(os.environ[name]) for name in ENVIRONMENT if os.environ.get(name)}


@dataclasses.dataclass(frozen=True)
class Member:
    """One member of a sweep: a train run and its evaluation in `workdir`."""

    name: str
    group: str  # its name without the seed: the members that differ only in seed share it
    recipe: str  # the ARG of its get_config
    overrides: dict  # config fields by dotted name, set over the recipe
    config: dict  # the resolved config, as JSON
    workdir: pathlib.Path  # ROOT/<name>
    commands: tuple[tuple[str, ...], ...]  # train, then evaluate

    def result(self, split: str) -> dict | None:
        """Its newest eval_<split>.json, or None."""
        return evaluation.read_result(self.workdir, split)

    def finished(self, split: str) -> bool:
        """Evaluated on `split` at its last step: a sweep skips it, a report
        counts it. Any other member resumes from its newest checkpoint."""
        result = self.result(split)
        return result is not None and result["step"] == self.config["num_train_steps"]

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "group": self.group,
            "recipe": self.recipe,
            "overrides": self.overrides,
            "config": self.config,
            "commands": [shlex.join(command) for command in self.commands],
        }

    @classmethod
    def from_json(cls, entry: dict, root: pathlib.Path) -> "Member":
        commands = tuple(tuple(shlex.split(command)) for command in entry.get("commands", ()))
        return cls(
            name=entry["name"],
            group=entry["group"],
            recipe=entry.get("recipe", ""),
            overrides=entry.get("overrides", {}),
            config=entry["config"],
            workdir=root / entry["name"],
            commands=commands,
        )


@dataclasses.dataclass(frozen=True)
class Sweep:
    """The members of `config` ("FILE:ARG"), evaluated on `split`, in `root`."""

    root: pathlib.Path
    config: str
    split: str
    cwd: pathlib.Path  # where the member commands run
    command: list[str]  # the command line that made the sweep
    members: list[Member]
    environment: dict[str, str] = dataclasses.field(default_factory=dict)  # see `environment()`

    @property
    def path(self) -> pathlib.Path:
        return self.root / SWEEP_FILE

    def write(self) -> None:
        """ROOT/sweep.json, replaced whole (never half-written)."""
        sweep = {
            "config": self.config,
            "split": self.split,
            "cwd": str(self.cwd),
            "command": self.command,
            "environment": self.environment,
            "members": [member.to_json() for member in self.members],
        }
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / (SWEEP_FILE + ".tmp")
        tmp.write_text(json.dumps(sweep, indent=2) + "\n")
        os.replace(tmp, self.path)

    @classmethod
    def read(cls, root: pathlib.Path) -> "Sweep":
        """The sweep ROOT/sweep.json lists. Raises FileNotFoundError with a
        one-line reason when there is none."""
        path = root / SWEEP_FILE
        if not path.exists():
            raise FileNotFoundError(f"{root} has no {SWEEP_FILE}: not the --workdir of a sweep")
        sweep = json.loads(path.read_text())
        return cls(
            root=root,
            config=sweep.get("config", ""),
            split=sweep["split"],
            cwd=pathlib.Path(sweep.get("cwd", ".")),
            command=sweep.get("command", []),
            members=[Member.from_json(entry, root) for entry in sweep["members"]],
            environment=sweep.get("environment", {}),
        )
