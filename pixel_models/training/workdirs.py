"""The resolved config of a run, saved in its workdir.

A run is resumed with its saved config. A new `--config` for an existing
workdir may change only how long and how visibly the run goes on (steps,
logging, evaluation, checkpoint cadence), where its data lives, and the
published figure it is compared with; any other difference (architecture,
data, optimizer, batch, seed) would make a different run, and is refused.
"""

import functools
import json
import os
import pathlib
import tempfile

import ml_collections

CONFIG_FILE = "config.json"
# Fields (dotted paths) a resumed run may change, with their types (a saved
# None keeps its type, so that `--config.FIELD=VALUE` can set it).
MUTABLE_FIELDS = {
    "num_train_steps": int,
    "log_every_steps": int,
    "eval_every_steps": int,
    "checkpoint_every_steps": int,
    "keep_checkpoints": int,
    "eval_batch_size": int,
    # How a CPU step splits its batch (`steps.cpu_chunk_pixels`): the order
    # of a sum, not another run.
    "cpu_chunk_pixels": int,
    "dataset.data_dir": str,
    "dataset.cache_dir": str,
    "dataset.manual_dir": str,
    "dataset.eval_split": str,
    # The published figure the run is compared with: a citation, not the run.
    "reference": str,
}


def save_config(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> None:
    path = pathlib.Path(workdir) / CONFIG_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(config.to_json(indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)  # atomic: a crash never leaves half a config


def load_config(workdir: str | pathlib.Path) -> ml_collections.ConfigDict | None:
    """The config saved in `workdir`, or None when there is none. Its unset
    (None) `MUTABLE_FIELDS` keep their types."""
    path = pathlib.Path(workdir) / CONFIG_FILE
    if not path.exists():
        return None
    config = ml_collections.ConfigDict(json.loads(path.read_text()))
    for field, field_type in MUTABLE_FIELDS.items():
        *parents, leaf = field.split(".")
        node = functools.reduce(lambda node, key: node.get(key, {}), parents, config)
        if isinstance(node, ml_collections.ConfigDict) and leaf in node and node[leaf] is None:
            node[leaf] = ml_collections.FieldReference(None, field_type=field_type)
    return config


def get_config(workdir: str) -> ml_collections.ConfigDict:
    """The config saved in `workdir`, read as a config file: `--config` of
    `experiments.train --workdir=DIR --config.FIELD=VALUE` without a recipe
    is `--config=<this file>:DIR` (`experiments.program.parse_flags`)."""
    config = load_config(workdir)
    if config is None:
        raise ValueError(f"{workdir} holds no run ({CONFIG_FILE})")
    return config


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_compatible(
    config: ml_collections.ConfigDict, saved: ml_collections.ConfigDict, workdir
) -> None:
    """Raise ValueError naming every field that differs from the saved run
    beyond `MUTABLE_FIELDS`."""
    new = _flatten(json.loads(config.to_json()))
    old = _flatten(json.loads(saved.to_json()))
    keys = (new.keys() | old.keys()) - MUTABLE_FIELDS.keys()
    changed = sorted(key for key in keys if new.get(key) != old.get(key))
    if changed:
        diffs = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
        raise ValueError(
            f"{workdir} holds a different run ({diffs}); resume it without --config "
            "(or change only steps/logging/data location), or use a new --workdir"
        )


def check_writable(workdir: str | pathlib.Path) -> None:
    """Raise OSError if `workdir` cannot be created or written, leaving nothing
    behind: a folder is made and removed in its nearest existing ancestor
    (permission bits do not stop root, but /proc, /sys or a read-only mount do)."""
    path = pathlib.Path(workdir).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise NotADirectoryError(f"workdir {workdir}: {existing} is not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".write_check_", dir=existing))
    except OSError as e:
        raise PermissionError(
            f"workdir {workdir}: cannot create folders in {existing} ({e.strerror})"
        ) from None
