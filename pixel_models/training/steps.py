"""Pure train and eval steps shared by the trainer, the evaluator and the
benchmark. Wrap them with `jax.jit` (and shardings) at the call site."""

import math
import operator

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from pixel_models import likelihood
from pixel_models.models.registry import MODELS
from pixel_models.training.train_state import TrainState

Batch = dict[str, jnp.ndarray]

# Chunks an eval step scores in one iteration of its loop: independent
# computations, which XLA:CPU runs at the same time on different cores
# (faster evaluation; docs/benchmarks.md). The train step keeps
# one chunk per iteration: side by side, its chunks trained slower.
_EVAL_CHUNKS_PER_ITERATION = 4


def mean_nll(
    model: nn.Module, params, batch: Batch, cond_key: str | None, rng: jax.Array | None = None
) -> jnp.ndarray:
    """Mean negative log-likelihood per image in nats (the training loss) of
    `batch["image"]`, conditioned on `batch[cond_key]` when a key is given;
    for a latent-variable model, the negative ELBO (`likelihood.bound`).

    With `rng`, the model runs in training mode (`train=True`, dropout rng),
    and a latent model draws its z from it.
    """
    if model.LATENT:
        return -likelihood.bound(model, {"params": params}, batch["image"], rng)[0].mean()
    cond = batch[cond_key] if cond_key else None
    train = rng is not None
    return -likelihood.log_prob(model, {"params": params}, batch["image"], cond, train, rng).mean()


def strided_chunks(batch, chunk_size: int | None):
    """Split every `[B, ...]` leaf of `batch` into `[B // chunk_size, chunk_size, ...]`.

    Returns `(num_chunks, chunks)`. Chunk i holds examples i, i + n, i + 2n,
    ... (n chunks): on a batch split over D devices, D dividing `chunk_size`,
    every chunk takes the same share of each device's rows, so nothing moves
    between devices.
    """
    size = jax.tree.leaves(batch)[0].shape[0]
    chunk_size = chunk_size or size
    if size % chunk_size:
        raise ValueError(f"chunk_size={chunk_size} does not divide the batch of {size}")
    num_chunks = size // chunk_size

    def split(x: jnp.ndarray) -> jnp.ndarray:
        return jnp.swapaxes(x.reshape(chunk_size, num_chunks, *x.shape[1:]), 0, 1)

    return num_chunks, jax.tree.map(split, batch)


def debiased_ema_rate(decay: float, step: jnp.ndarray) -> jnp.ndarray:
    """The weight of step `step`'s (1-based) parameters in the EMA update
    `ema += rate * (params - ema)`: `(1 - decay) / (1 - decay**step)`.

    The average is then `optax.ema(decay, debias=True)`'s: the zero-started
    `sum_s (1 - decay) decay**(step - s) params_s` divided by `1 - decay**step`,
    the weight it has. It is the first step's parameters after one step
    (rate 1), where a plain EMA would still be almost the initial ones, and
    the rate falls to `1 - decay` as the steps pass.
    """
    return (1.0 - decay) / -jnp.expm1(jnp.asarray(step, jnp.float32) * math.log(decay))


def train_step(
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    state: TrainState,
    batch: Batch,
    cond_key: str | None = None,
    ema_decay: float = 0.0,
    chunk_size: int | None = None,
) -> tuple[TrainState, dict[str, jnp.ndarray]]:
    """One gradient step on `batch` (`image[B, H, W, C]`, and the model's
    `cond` as `batch[cond_key]`, e.g. `label[B]`); metrics: loss (nats), grad_norm.

    `ema_decay` updates `state.ema_params` (when kept), after the step, to
    the debiased average of the parameters of every step so far
    (`debiased_ema_rate`). With
    `chunk_size` (dividing B) the gradient is accumulated over `B // chunk_size`
    sequential chunks (`strided_chunks`, `step_chunk_size`): the same mean.
    """
    rng = jax.random.fold_in(state.rng, state.step)
    loss_and_grad = jax.value_and_grad(mean_nll, argnums=1)
    num_chunks, chunks = strided_chunks(batch, chunk_size)
    if num_chunks == 1:
        loss, grads = loss_and_grad(model, state.params, batch, cond_key, rng)
    else:

        def accumulate(total, indexed_chunk):
            index, chunk = indexed_chunk
            chunk_rng = jax.random.fold_in(rng, index)
            out = loss_and_grad(model, state.params, chunk, cond_key, chunk_rng)
            return jax.tree.map(jnp.add, total, out), None

        zeros = (jnp.zeros((), jnp.float32), jax.tree.map(jnp.zeros_like, state.params))
        total, _ = jax.lax.scan(accumulate, zeros, (jnp.arange(num_chunks), chunks))
        loss, grads = jax.tree.map(lambda x: x / num_chunks, total)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema_params = state.ema_params
    if ema_params is not None:
        rate = debiased_ema_rate(ema_decay, state.step + 1)
        ema_params = optax.incremental_update(params, ema_params, rate)
    state = state.replace(
        step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema_params
    )
    return state, {"loss": loss, "grad_norm": optax.tree.norm(grads)}


def eval_step(
    model: nn.Module,
    params,
    batch: Batch,
    rng: jax.Array | None = None,
    cond_key: str | None = None,
    chunk_size: int | None = None,
    num_samples: int = 1,
) -> dict[str, jnp.ndarray]:
    """Summed NLL (nats) and count over the examples of `batch` (`image`,
    `mask[B]`, and `batch[cond_key]` when given) whose mask is true.

    A latent-variable model's NLL is the negative of its bound with
    `num_samples` importance samples (`likelihood.bound`), its z drawn from
    `rng` (required), and the sum of its KL terms is `kl_sum`.
    With `chunk_size` (dividing B), the batch is scored in `B // chunk_size`
    chunks (`strided_chunks`, `step_chunk_size`): the same sum. Each
    iteration of the loop over them scores up to `_EVAL_CHUNKS_PER_ITERATION`
    chunks side by side.
    """
    if model.LATENT:
        if rng is None:
            raise ValueError("a latent-variable model's bound needs an rng")
        image, mask = batch["image"], batch["mask"]
        bound, kl = likelihood.bound(model, {"params": params}, image, rng, num_samples)
        return {
            "nll_sum": jnp.where(mask, -bound, 0.0).sum(),
            "kl_sum": jnp.where(mask, kl, 0.0).sum(),
            "count": mask.sum(),
        }

    def nll_sum(chunk: Batch) -> jnp.ndarray:
        cond = chunk[cond_key] if cond_key else None
        nll = -likelihood.log_prob(model, {"params": params}, chunk["image"], cond)
        return jnp.where(chunk["mask"], nll, 0.0).sum()

    num_chunks, chunks = strided_chunks(batch, chunk_size)
    count = batch["mask"].sum()
    if num_chunks == 1:
        return {"nll_sum": nll_sum(batch), "count": count}
    side_by_side = _largest_divisor(num_chunks, _EVAL_CHUNKS_PER_ITERATION)

    def group_sum(group: Batch) -> jnp.ndarray:
        return sum(
            nll_sum(jax.tree.map(operator.itemgetter(i), group)) for i in range(side_by_side)
        )

    groups = jax.tree.map(lambda x: x.reshape(-1, side_by_side, *x.shape[1:]), chunks)
    return {"nll_sum": jax.lax.map(group_sum, groups).sum(), "count": count}


def cpu_chunk_pixels(config: ml_collections.ConfigDict) -> int:
    """The `cpu_chunk_pixels` of `step_chunk_size` for a run: the config's
    field when set (0: no chunks), else its model family's `CPU_CHUNK_PIXELS`
    (None or no field)."""
    configured = config.get("cpu_chunk_pixels")
    if configured is not None:
        return configured
    family = MODELS.get(config.model.name)  # an unknown name is build_model's error
    return 0 if family is None else family.CPU_CHUNK_PIXELS


def step_chunk_size(
    batch_size: int,
    num_devices: int,
    image_shape: tuple[int, ...],
    platform: str,
    cpu_chunk_pixels: int,
) -> int:
    """Global images per chunk of a train or eval step on a global `batch_size`.

    The whole batch, except on CPU with `cpu_chunk_pixels` > 0 (config
    `cpu_chunk_pixels`): there each device takes at most that many pixels at
    a time, in the largest such divisor of its share of the batch.
    """
    if cpu_chunk_pixels < 0:
        raise ValueError(f"cpu_chunk_pixels={cpu_chunk_pixels} must be >= 0 (0: no chunks)")
    if platform != "cpu" or not cpu_chunk_pixels:
        return batch_size
    per_device = batch_size // num_devices
    limit = max(1, cpu_chunk_pixels // (image_shape[0] * image_shape[1]))
    chunk = _largest_divisor(per_device, limit)
    return chunk * num_devices


def _largest_divisor(n: int, at_most: int) -> int:
    """The largest divisor of `n` that is at most `at_most` (1 at least)."""
    return max(d for d in range(1, min(at_most, n) + 1) if n % d == 0)
