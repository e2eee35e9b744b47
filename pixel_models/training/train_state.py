"""The state of a run: what a checkpoint holds besides the input position."""

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
    """Everything a run needs to continue exactly: the step, the parameters,
    the optimizer state, the Polyak average of the parameters (`None` when EMA
    is off) and the base RNG key (raw uint32, folded with the step each step)."""

    step: jnp.ndarray
    params: Any
    opt_state: Any
    ema_params: Any
    rng: jnp.ndarray

    def eval_params(self):
        """The parameters to evaluate: the EMA when it is kept, else the raw ones."""
        return self.params if self.ema_params is None else self.ema_params


PARAMS = ("raw", "ema")  # the parameters a run can be evaluated and sampled with


def uses_ema(config, params: str | None = None) -> bool:
    """Whether the run of `config` is evaluated with its EMA: `params` "ema"
    or "raw" (`PARAMS`), or None for the run's own (the EMA when it keeps
    one, `ema_decay > 0`). A ValueError for "ema" of a run that keeps none."""
    kept = config.get("ema_decay", 0.0) > 0.0
    if params is None:
        return kept
    if params not in PARAMS:
        raise ValueError(f"params={params!r}: use one of {', '.join(PARAMS)}")
    if params == "ema" and not kept:
        raise ValueError("params=ema, but this run keeps no EMA of its parameters (ema_decay=0)")
    return params == "ema"


def example_inputs(
    image_shape: tuple[int, int, int], cond_key: str | None, embedding_dim: int = 0
) -> tuple[jnp.ndarray, jnp.ndarray | None]:
    """`(image, cond)` that fix the shapes of a model's parameters: one zero
    image `[1, H, W, C]`, and a zero label `[1]` when the run feeds labels
    (`cond_key` "label"), a zero embedding `[1, embedding_dim]` when it feeds
    embeddings ("embedding"), else None."""
    image = jnp.zeros((1, *image_shape), jnp.int32)
    if cond_key is None:
        return image, None
    if cond_key == "embedding":
        return image, jnp.zeros((1, embedding_dim), jnp.float32)
    return image, jnp.zeros((1,), jnp.int32)


def create_train_state(
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    rng: jax.Array,
    image: jnp.ndarray,
    use_ema: bool = False,
    cond=None,
) -> TrainState:
    """Fresh state; `image[B, H, W, C]` and `cond` (the model's conditioning
    input, if any) fix the shapes (their values are unused).

    `rng` is a raw `uint32[2]` key (`jax.random.PRNGKey`), so that it
    checkpoints as a plain array.
    """
    init_rng, rng = jax.random.split(rng)
    params = model.init(init_rng, image, cond)["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=optimizer.init(params),
        ema_params=params if use_ema else None,
        rng=rng,
    )
