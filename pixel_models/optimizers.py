"""`config.optimizer` -> an optax optimizer."""

import ml_collections
import optax

_OPTIMIZERS = {
    # PixelRNN paper: RMSProp. optax's defaults besides the learning rate.
    "rmsprop": lambda c: optax.rmsprop(c.learning_rate, decay=c.get("decay", 0.95)),
    "adam": lambda c: optax.adam(c.learning_rate, b1=c.get("b1", 0.9), b2=c.get("b2", 0.999)),
    "adamw": lambda c: optax.adamw(c.learning_rate, weight_decay=c.get("weight_decay", 1e-4)),
}


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """`name` in rmsprop/adam/adamw, `learning_rate`, optional `grad_clip_norm`."""
    if config.name not in _OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {config.name!r}; known: {', '.join(sorted(_OPTIMIZERS))}"
        )
    optimizer = _OPTIMIZERS[config.name](config)
    if config.get("grad_clip_norm"):
        optimizer = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), optimizer)
    return optimizer
