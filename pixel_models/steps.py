"""Pure train and eval steps shared by the trainer, the evaluator and the
benchmark. Wrap them with `jax.jit` (and shardings) at the call site."""

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from pixel_models import likelihood


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


def create_train_state(
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    rng: jax.Array,
    image: jnp.ndarray,
    use_ema: bool = False,
) -> TrainState:
    """Fresh state; `image[B, H, W, C]` fixes the shapes (its values are unused).

    `rng` is a raw `uint32[2]` key (`jax.random.PRNGKey`), so that it
    checkpoints as a plain array.
    """
    init_rng, rng = jax.random.split(rng)
    params = model.init(init_rng, image)["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=optimizer.init(params),
        ema_params=params if use_ema else None,
        rng=rng,
    )


def mean_nll(
    model: nn.Module, params, image: jnp.ndarray, cond=None, rng: jax.Array | None = None
) -> jnp.ndarray:
    """Mean negative log-likelihood per image in nats (the training loss).

    With `rng`, the model runs in training mode (`train=True`, dropout rng).
    """
    train = rng is not None
    rngs = {"dropout": rng} if train else None
    logits = model.apply({"params": params}, image, cond, train=train, rngs=rngs)
    return -likelihood.categorical_log_probs(logits, image).sum(axis=(1, 2, 3)).mean()


def train_step(
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    state: TrainState,
    image: jnp.ndarray,
    cond=None,
    ema_decay: float = 0.0,
) -> tuple[TrainState, dict[str, jnp.ndarray]]:
    """One gradient step on `image[B, H, W, C]`; metrics: loss (nats), grad_norm.

    `ema_decay` updates `state.ema_params` (when kept) as
    `ema = decay * ema + (1 - decay) * params`, after the step.
    """
    rng = jax.random.fold_in(state.rng, state.step)
    loss, grads = jax.value_and_grad(mean_nll, argnums=1)(model, state.params, image, cond, rng)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema_params = state.ema_params
    if ema_params is not None:
        ema_params = optax.incremental_update(params, ema_params, 1.0 - ema_decay)
    state = state.replace(
        step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema_params
    )
    return state, {"loss": loss, "grad_norm": optax.tree.norm(grads)}


def eval_step(
    model: nn.Module,
    params,
    image: jnp.ndarray,
    mask: jnp.ndarray,
    cond=None,
    chunk_size: int | None = None,
) -> dict[str, jnp.ndarray]:
    """Summed NLL (nats) and count over the examples where `mask[B]` is true.

    With `chunk_size` (dividing B), the batch is scored in `B // chunk_size`
    sequential chunks under `lax.map`: same result, a fraction of the live
    activations (see `eval_chunk_size`). Chunk i holds examples
    i, i + n, i + 2n, ... (n chunks), so on a batch split over D devices, D
    dividing `chunk_size`, every chunk takes the same share of each device's
    rows and nothing moves between devices.
    """
    batch = image.shape[0]
    chunk_size = chunk_size or batch
    if batch % chunk_size:
        raise ValueError(f"chunk_size={chunk_size} does not divide the batch of {batch}")
    num_chunks = batch // chunk_size

    def nll_sum(chunk) -> jnp.ndarray:
        image, mask, cond = chunk
        nll = -likelihood.log_prob(model, {"params": params}, image, cond)
        return jnp.where(mask, nll, 0.0).sum()

    def strided(x: jnp.ndarray) -> jnp.ndarray:  # [B, ...] -> [num_chunks, chunk_size, ...]
        return jnp.swapaxes(x.reshape(chunk_size, num_chunks, *x.shape[1:]), 0, 1)

    if num_chunks == 1:
        total = nll_sum((image, mask, cond))
    else:
        total = jax.lax.map(nll_sum, jax.tree.map(strided, (image, mask, cond))).sum()
    return {"nll_sum": total, "count": mask.sum()}


def eval_chunk_size(
    batch_size: int,
    num_devices: int,
    image_shape: tuple[int, ...],
    platform: str,
    cpu_chunk_pixels: int,
) -> int:
    """Global images per `eval_step` chunk for a global `batch_size`.

    The whole batch, except on CPU with `cpu_chunk_pixels` > 0 (config
    `eval_chunk_pixels`): there each device scores at most that many pixels
    at a time, in the largest such divisor of its share of the batch.
    """
    if cpu_chunk_pixels < 0:
        raise ValueError(f"eval_chunk_pixels={cpu_chunk_pixels} must be >= 0 (0: no chunks)")
    if platform != "cpu" or not cpu_chunk_pixels:
        return batch_size
    per_device = batch_size // num_devices
    limit = max(1, cpu_chunk_pixels // (image_shape[0] * image_shape[1]))
    chunk = max(d for d in range(1, min(limit, per_device) + 1) if per_device % d == 0)
    return chunk * num_devices
