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
from collections.abc import Collection, Sequence
from types import ModuleType

import ml_collections

from experiments.sweeps.sweep_file import Member, Sweep, environment
from pixel_models.training import provenance

PROJECT = pathlib.Path(__file__).resolve().parents[2]  # where `python -m experiments.X` runs


def member_name(recipe: str, overrides: dict) -> str:
    """ "pixelcnn,tiny", {"seed": 1} -> "pixelcnn-tiny.seed=1", file-name safe."""
    parts = [recipe.replace(",", "-"), *(f"{k}={v}" for k, v in overrides.items())]
    return ".".join(re.sub(r"[^A-Za-z0-9._=+-]+", "_", part) for part in parts)


def _settings(args: Sequence[str]) -> dict[str, str]:
    """`--config.FIELD=VALUE` command-line arguments -> {FIELD: "VALUE"}."""
    settings = {}
    for arg in args:
        field, equals, value = arg.removeprefix("--config.").partition("=")
        if not equals:
            raise ValueError(f"{arg}: set a field as --config.FIELD=VALUE")
        settings[field] = value
    return settings


def _typed(text: str, kind: type) -> bool | int | float | str:
    """A command line's `text` as a value of a field of type `kind` (itself
    for str, and for a field left None)."""
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{text!r} is not a bool (true or false)")
        return text.lower() in ("true", "1")
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise ValueError(f"{text!r} is not {kind.__name__}") from None
    return text


def _set(config: ml_collections.ConfigDict, overrides: dict, texts: Collection[str]) -> dict:
    """Set `overrides` (dotted field -> value) in `config`; those named in
    `texts` are command-line strings, read as their field's type. Returns
    the overrides with those values typed."""
    typed = {}
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
        if field in texts:
            value = _typed(value, node.get_type(leaf))
        node[leaf] = typed[field] = value  # ConfigDict refuses a value of another type
    return typed


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


def resolve(spec: str, root: pathlib.Path, split: str, settings: Sequence[str] = ()) -> Sweep:
    """The sweep of `--config=spec` ("FILE:ARG") in `root`, evaluated on
    `split`, with `settings` (`--config.FIELD=VALUE` arguments) set in every
    member after its own fields: every member resolved, with its commands.
    Raises ValueError with a one-line reason."""
    texts = _settings(settings)
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
        where = recipe if entries is None else f"member {index} ({recipe})"
        try:
            config = module.get_config(recipe)
        except Exception as e:
            if entries is None:
                raise ValueError(
                    f"{spec}: no sweep or recipe {arg!r}: {e}; {_sweeps(module)}"
                ) from e
            raise ValueError(f"{spec}: {where}: {e}") from e
        try:
            overrides = _set(config, {**overrides, **texts}, texts)
        except Exception as e:
            raise ValueError(f"{spec}: {where}: {e}") from e
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
