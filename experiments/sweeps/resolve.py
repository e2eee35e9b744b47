"""A config file's sweep resolved into its members and their commands: its
`get_sweep(ARG)` (the format `python -m experiments.sweep --help` describes),
or the recipe ARG alone. Every member is resolved before anything executes,
so an unknown sweep, recipe or field stops the sweep with one line; for an
ARG that names neither, the line lists the recipes (`get_config`'s error)
and the sweeps, when the file keeps them in a dict `SWEEPS` (name ->
members, as configs/binarized_mnist.py does)."""

import importlib.util
import json
import pathlib
import re
import sys
from types import ModuleType

import ml_collections

from experiments.sweeps.sweep_file import Member, Sweep, environment
from pixel_models.training import provenance

PROJECT = pathlib.Path(__file__).resolve().parents[2]  # where `python -m experiments.X` runs


def member_name(recipe: str, overrides: dict) -> str:
    """ "pixelcnn,tiny", {"seed": 1} -> "pixelcnn-tiny.seed=1", file-name safe."""
    parts = [recipe.replace(",", "-"), *(f"{k}={v}" for k, v in overrides.items())]
    return ".".join(re.sub(r"[^A-Za-z0-9._=+-]+", "_", part) for part in parts)


def _config(module: ModuleType, recipe: str, overrides: dict) -> ml_collections.ConfigDict:
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


def _commands(
    spec: str, overrides: dict, workdir: pathlib.Path, split: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The train and evaluate commands of a member."""
    settings = [f"--config.{field}={value}" for field, value in overrides.items()]
    train = [sys.executable, "-m", "experiments.train", f"--config={spec}", f"--workdir={workdir}"]
    evaluate = [sys.executable, "-m", "experiments.evaluate", f"--workdir={workdir}"]
    return (*train, *settings), (*evaluate, f"--split={split}")


def _load(path: pathlib.Path, spec: str, arg: str) -> tuple[ModuleType, list[dict] | None]:
    """The config file at `path`, and its `get_sweep(arg)`: the members'
    dicts, or None when ARG is a recipe."""
    try:  # config code may raise anything; its message is the reason
        module_spec = importlib.util.spec_from_file_location(f"sweep_config_{path.stem}", path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        entries = module.get_sweep(arg) if hasattr(module, "get_sweep") else None
    except Exception as e:
        raise ValueError(f"{spec}: {type(e).__name__}: {e}") from e
    if entries is not None and not (entries and all(isinstance(e, dict) for e in entries)):
        raise ValueError(
            f"{spec}: get_sweep({arg!r}) must return a non-empty list of dicts, or None"
        )
    return module, entries


def _sweeps(module: ModuleType) -> str:
    """The sweeps of a config file, as said when ARG names none of them."""
    if not hasattr(module, "get_sweep"):
        return "the file defines no sweeps (no get_sweep)"
    names = getattr(module, "SWEEPS", None)
    if isinstance(names, dict):
        return f"sweeps: {', '.join(sorted(names))}"
    return "sweeps: see its get_sweep"


def resolve(spec: str, root: pathlib.Path, split: str) -> Sweep:
    """The sweep of `--config=spec` ("FILE:ARG") in `root`, evaluated on
    `split`: every member resolved, with its commands. Raises ValueError
    with a one-line reason."""
    file, _, arg = spec.partition(":")
    if not arg:
        raise ValueError(f"--config={spec}: name a sweep or recipe after a colon, FILE:ARG")
    path = pathlib.Path(file).absolute()
    if not path.is_file():
        raise ValueError(f"--config={spec}: no file {path}")
    module, entries = _load(path, spec, arg)
    members, names = [], set()
    for index, entry in enumerate([{}] if entries is None else entries):
        overrides = dict(entry)
        recipe = str(overrides.pop("config", arg))
        try:
            config = _config(module, recipe, overrides)
        except Exception as e:
            if entries is None:
                raise ValueError(
                    f"{spec}: no sweep or recipe {arg!r}: {e}; {_sweeps(module)}"
                ) from e
            raise ValueError(f"{spec}: member {index} ({recipe}): {e}") from e
        base = name = member_name(recipe, overrides)
        copy = 1
        while name in names:
            copy += 1
            name = f"{base}_{copy}"
        names.add(name)
        members.append(
            Member(
                name=name,
                group=member_name(recipe, {k: v for k, v in overrides.items() if k != "seed"}),
                recipe=recipe,
                overrides=overrides,
                config=json.loads(config.to_json()),
                workdir=root / name,
                commands=_commands(f"{path}:{recipe}", overrides, root / name, split),
            )
        )
    command = provenance.command()
    return Sweep(root, spec, split, PROJECT, command, members, environment())
