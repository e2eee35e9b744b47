"""What every fast sampler must pass: the naive sampler's images for the same
seed, and at every pixel the parameters of a full forward pass (of each
stage's model, for a model sampled in stages)."""

import jax
import jax.numpy as jnp
import numpy as np

from pixel_models import sampling


def assert_fast_matches_naive(model, variables, shape, cond=None, seed: int = 0, atol=1e-4):
    """`shape` = `[B, H, W, C]`. The fast and naive samplers draw the same
    images from zeros; replayed on the final images (each stage on its part
    of them), the fast stepper gives the full forward pass's parameters at
    every pixel (to `atol`)."""
    rng = jax.random.key(seed)
    start = jnp.zeros(shape, jnp.int32)
    naive = sampling.sample(model, variables, rng, start, cond=cond, sampler="naive")
    fast = sampling.sample(model, variables, rng, start, cond=cond, sampler="fast")
    np.testing.assert_array_equal(np.asarray(fast), np.asarray(naive))
    assert len(np.unique(np.asarray(fast))) > 1, "degenerate samples prove nothing"

    for n, stage in enumerate(sampling.stages(model, variables, cond)):
        part, stage_cond = fast[:, stage.rows, stage.cols], stage.cond(fast)
        full = np.asarray(stage.model.apply(stage.variables, part, cond=stage_cond))
        stepper = sampling.make_stepper(stage.model, stage.variables, "fast", stage_cond)
        step, start_row = jax.jit(stepper.step), jax.jit(stepper.start_row)
        state = jax.jit(stepper.init)(part)
        for i, j in np.ndindex(*part.shape[1:3]):
            if j == 0:
                state = start_row(state, part, jnp.int32(i))
            state, params = step(state, part, jnp.int32(i), jnp.int32(j))
            np.testing.assert_allclose(
                np.asarray(params)[:, 0, 0],
                full[:, i, j],
                atol=atol,
                err_msg=f"stage {n}, pixel {(i, j)}",
            )
