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
    step: jnp.ndarray
    params: Any
    opt_state: Any


def create_train_state(
    model: nn.Module, optimizer: optax.GradientTransformation, rng: jax.Array, image: jnp.ndarray
) -> TrainState:
    """Fresh state; `image[B, H, W, C]` fixes the shapes (its values are unused)."""
    params = model.init(rng, image)["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params)
    )


def mean_nll(model: nn.Module, params, image: jnp.ndarray, cond=None) -> jnp.ndarray:
    """Mean negative log-likelihood per image in nats (the training loss)."""
    return -likelihood.log_prob(model, {"params": params}, image, cond).mean()


def train_step(
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    state: TrainState,
    image: jnp.ndarray,
    cond=None,
) -> tuple[TrainState, dict[str, jnp.ndarray]]:
    """One gradient step on `image[B, H, W, C]`; metrics: loss (nats), grad_norm."""
    loss, grads = jax.value_and_grad(mean_nll, argnums=1)(model, state.params, image, cond)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    state = state.replace(
        step=state.step + 1, params=optax.apply_updates(state.params, updates), opt_state=opt_state
    )
    return state, {"loss": loss, "grad_norm": optax.tree.norm(grads)}


def eval_step(
    model: nn.Module, params, image: jnp.ndarray, mask: jnp.ndarray, cond=None
) -> dict[str, jnp.ndarray]:
    """Summed NLL (nats) and count over the examples where `mask[B]` is true."""
    nll = -likelihood.log_prob(model, {"params": params}, image, cond)
    return {"nll_sum": jnp.where(mask, nll, 0.0).sum(), "count": mask.sum()}
