"""`config.optimizer` -> an optax optimizer and its learning-rate schedule."""

import math
from collections.abc import Callable

import ml_collections
import optax

_OPTIMIZERS = {
    # PixelRNN paper: RMSProp. optax's defaults besides the learning rate.
    "rmsprop": lambda lr, c: optax.rmsprop(lr, decay=c.get("decay", 0.95)),
    "adam": lambda lr, c: optax.adam(lr, b1=c.get("b1", 0.9), b2=c.get("b2", 0.999)),
    "adamw": lambda lr, c: optax.adamw(lr, weight_decay=c.get("weight_decay", 1e-4)),
}
_SCHEDULES = ("constant", "cosine", "exponential")
# Field -> (test, what it must be); a field that is absent or None is not checked.
_VALID: dict[str, tuple[Callable[[float], bool], str]] = {
    "learning_rate": (lambda v: 0 < v < math.inf, "a positive number"),
    "warmup_steps": (lambda v: v >= 0 and v == int(v), "a whole number >= 0"),
    "grad_clip_norm": (lambda v: 0 <= v < math.inf, ">= 0 (0: no clipping)"),
    "decay": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "b1": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "b2": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "weight_decay": (lambda v: 0 <= v < math.inf, ">= 0"),
    "decay_rate": (lambda v: 0 < v <= 1, "in (0, 1]"),
}


def check_values(config: ml_collections.ConfigDict) -> None:
    """Raise ValueError on an optimizer value no run can train with (a
    negative learning rate, a decay outside [0, 1), ...)."""
    for name, (valid, rule) in _VALID.items():
        value = config.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not valid(value):
            raise ValueError(f"optimizer.{name}={value!r} must be {rule}")


def learning_rate_schedule(config: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
    """Linear warmup over `warmup_steps` (default 0) to `learning_rate`, then
    `schedule`: constant, cosine (to 0 at `num_steps`) or exponential
    (`decay_rate` per step, the PixelCNN++ recipe: 0.999995)."""
    lr, warmup = config.learning_rate, config.get("warmup_steps", 0)
    name = config.get("schedule", "constant")
    if name == "constant":
        after = optax.constant_schedule(lr)
    elif name == "cosine":
        after = optax.cosine_decay_schedule(lr, max(num_steps - warmup, 1))
    elif name == "exponential":
        after = optax.exponential_decay(lr, 1, config.get("decay_rate", 0.999995))
    else:
        raise ValueError(f"unknown optimizer.schedule {name!r}; known: {', '.join(_SCHEDULES)}")
    if not warmup:
        return after
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), after], [warmup])


def make_optimizer(
    config: ml_collections.ConfigDict, num_steps: int = 1
) -> optax.GradientTransformation:
    """`name` in rmsprop/adam/adamw, `learning_rate` with its schedule (see
    `learning_rate_schedule`; `num_steps` is the run length), optional
    `grad_clip_norm` (clipping by global norm before the update). Values are
    checked first (`check_values`)."""
    check_values(config)
    if config.name not in _OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {config.name!r}; known: {', '.join(sorted(_OPTIMIZERS))}"
        )
    optimizer = _OPTIMIZERS[config.name](learning_rate_schedule(config, num_steps), config)
    if config.get("grad_clip_norm"):
        optimizer = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), optimizer)
    return optimizer
