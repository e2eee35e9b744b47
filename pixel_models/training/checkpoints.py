"""Orbax checkpoints of a run: the train state (step, parameters, optimizer
state, EMA, RNG) and the input iterator's position, in `WORKDIR/checkpoints`.

Orbax writes each checkpoint to a temporary folder and renames it when it is
complete, so a run killed mid-save leaves no half-written step behind (the
temporary folder is removed on the next start). A step that is listed but
does not restore (damaged files) is skipped with a warning, falling back to
the one before it.
"""

import functools
import logging as std_logging
import pathlib
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from absl import logging

from pixel_models.training.train_state import TrainState


def make_manager(
    workdir: str | pathlib.Path,
    keep: int = 3,
    create: bool = True,
    handler: ocp.CheckpointHandler | None = None,
) -> ocp.CheckpointManager:
    """A manager keeping the last `keep` checkpoints; saves run in the
    background. `create=False` creates no folder (for readers); `handler`
    writes the "state" item (the default: orbax's, chosen by the arguments)."""
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=create, cleanup_tmp_directories=create
    )
    directory = pathlib.Path(workdir).absolute() / "checkpoints"
    if handler is None:
        return ocp.CheckpointManager(directory, options=options, item_names=("state", "data"))
    return ocp.CheckpointManager(directory, options=options, item_handlers={"state": handler})


def has_checkpoints(workdir: str | pathlib.Path) -> bool:
    """Whether `WORKDIR/checkpoints` holds a saved step, as orbax lists them."""
    manager = make_manager(workdir, create=False)
    try:
        return bool(manager.all_steps())
    finally:
        manager.close()


def save(
    manager: ocp.CheckpointManager, state: TrainState, data_state: dict[str, Any], step: int
) -> None:
    """Start saving `state` and the iterator state `data_state` as `step`."""
    args = ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state)
    )
    manager.save(step, args=args, force=True)


def restore_latest(
    manager: ocp.CheckpointManager,
    abstract_state: TrainState,
    step: int | None = None,
    delete_damaged: bool = False,
) -> tuple[TrainState, dict[str, Any]] | None:
    """The newest checkpoint that restores (or exactly `step`), shaped and
    sharded like `abstract_state`; `None` when there is none.

    Damaged newer checkpoints are skipped with a warning, and deleted when
    `delete_damaged` (the trainer, which will save those steps again). An
    explicit `step` that does not exist or does not restore is an error.
    """
    restore = functools.partial(_restore, manager, abstract_state)
    return _newest(manager, restore, step, delete_damaged)


def restore_eval_params(
    manager: ocp.CheckpointManager, abstract_params: Any, use_ema: bool, step: int | None = None
) -> tuple[Any, int]:
    """`(parameters to evaluate, step)` of the newest checkpoint that restores
    (or `step`), as `restore_latest` finds it: the EMA when the run keeps one
    (`use_ema`), else the raw parameters, shaped and sharded like
    `abstract_params`. Reads nothing else (no optimizer state), so it needs
    no optimizer, and it reads the models `experiments.export` writes, which
    hold nothing else. Raises ValueError when there is no such checkpoint."""
    restored = _newest(
        manager, functools.partial(_restore_params, manager, abstract_params, use_ema), step
    )
    if restored is None:
        raise _missing(manager, step)
    return restored


def _newest(
    manager: ocp.CheckpointManager,
    restore: Callable[[int], Any],
    step: int | None,
    delete_damaged: bool = False,
) -> Any:
    """`restore(step)` of the newest step that restores, skipping (or with
    `delete_damaged`, deleting) damaged ones with a warning; of exactly
    `step` if given (an error if it does not restore); None when none does."""
    _ignore_closed_loop_callbacks()
    steps = sorted(manager.all_steps(), reverse=True)
    if step is not None:
        if step not in steps:
            raise _missing(manager, step)
        try:
            return restore(step)
        except Exception as e:  # noqa: BLE001 - one line, whatever orbax raised
            raise ValueError(f"checkpoint at step {step} does not restore ({_reason(e)})") from e
    for candidate in steps:
        try:
            return restore(candidate)
        except Exception as e:  # noqa: BLE001 - any damage means: try the previous one
            reason = _reason(e)
            logging.warning(
                "checkpoint at step %d does not restore (%s); %s it, trying an older one",
                candidate,
                reason,
                "deleting" if delete_damaged else "skipping",
            )
            if delete_damaged:
                manager.delete(candidate)
    return None


def _restore_params(
    manager: ocp.CheckpointManager, abstract_params: Any, use_ema: bool, step: int
) -> tuple[Any, int]:
    """`(params or ema_params, step)` of checkpoint `step`, nothing else."""
    name = "ema_params" if use_ema else "params"
    sharding = jax.tree.leaves(abstract_params)[0].sharding
    wanted = {"step": jax.ShapeDtypeStruct((), jnp.int32, sharding=sharding), name: abstract_params}
    restore_args = ocp.checkpoint_utils.construct_restore_args(wanted)
    args = ocp.args.Composite(
        state=ocp.args.PyTreeRestore(wanted, restore_args=restore_args, partial_restore=True)
    )
    restored = manager.restore(step, args=args).state
    return restored[name], int(restored["step"])


def _missing(manager: ocp.CheckpointManager, step: int | None) -> ValueError:
    """The error for a checkpoint at `step` that `manager` does not have: the
    steps it has, or, when it has none, how to make one."""
    folder = pathlib.Path(manager.directory)
    steps = sorted(manager.all_steps())
    if not steps:
        train = f"python -m experiments.train --workdir={folder.parent}"
        return ValueError(f"no checkpoint in {folder}: train it first ({train})")
    return ValueError(f"no checkpoint at step {step} in {folder}; saved steps: {steps}")


def _restore(
    manager: ocp.CheckpointManager, abstract_state: TrainState, step: int
) -> tuple[TrainState, dict[str, Any]]:
    args = ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()
    )
    restored = manager.restore(step, args=args)
    return restored.state, restored.data


def _reason(error: Exception, limit: int = 200) -> str:
    """The first line of an orbax / TensorStore error, without the
    TensorStore spec it appends (kilobytes of JSON)."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    text = text.split(" [tensorstore_spec")[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _ignore_closed_loop_callbacks() -> None:
    """Silence the noise of a failed restore, keeping every other report.

    When one read of a damaged checkpoint fails, orbax closes its asyncio
    loop with TensorStore reads still in flight. As they finish, TensorStore's
    threads call the closed loop and report each `RuntimeError: Event loop is
    closed` through `sys.unraisablehook` (dozens of tracebacks, some before
    the restore has raised), and the failed reads that nobody awaits any more
    are logged by asyncio as "Future exception was never retrieved" when they
    are collected. From the first restore on, the hook and a filter on the
    `asyncio` logger drop exactly those; the restore's own error is reported
    by `restore_latest`.
    """
    previous = sys.unraisablehook
    if getattr(previous, "ignores_closed_loop", False):
        return

    def hook(unraisable) -> None:
        error = unraisable.exc_value
        if not (isinstance(error, RuntimeError) and str(error) == "Event loop is closed"):
            previous(unraisable)

    hook.ignores_closed_loop = True
    sys.unraisablehook = hook
    std_logging.getLogger("asyncio").addFilter(_drop_unretrieved_tensorstore_errors)


def _drop_unretrieved_tensorstore_errors(record: std_logging.LogRecord) -> bool:
    """False for asyncio's report of a TensorStore read error nobody awaited."""
    error = record.exc_info[1] if record.exc_info else None
    return not (
        str(record.msg).startswith("Future exception was never retrieved")
        and error is not None
        and "tensorstore_spec" in str(error)
    )
