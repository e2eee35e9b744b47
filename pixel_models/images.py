"""What every model takes as an image: integer levels `[B, H, W, C]` in `[0, K)`.

A model of K levels scores an image of other values as a number with no
meaning (a level of 255 under a binary model, or floats in [0, 1]); the
public entry points (`likelihood`, `sampling.sample`, `pixel_models.load`)
refuse them through `check`. Inside `jax.jit`, where values are not known
while tracing, `check` can still refuse a wrong rank or dtype, and
`likelihood` turns the score of an image with a value out of range into NaN
(`in_range`): never a plausible number.
"""

import jax
import jax.numpy as jnp
import numpy as np


def check(x, num_levels: int, name: str = "images") -> jnp.ndarray:
    """`x` as int32 `[B, H, W, C]`, or a ValueError that names `name` and says
    what is wrong: not rank 4, not integers (or bools), or, when `x` holds
    values (outside `jax.jit`), a value outside `[0, num_levels)`."""
    dtype = jnp.result_type(x)
    if jnp.ndim(x) != 4:
        raise ValueError(f"{name} must be [B, H, W, C], got shape {list(jnp.shape(x))}")
    if not (jnp.issubdtype(dtype, jnp.integer) or dtype == jnp.bool_):
        raise ValueError(
            f"{name} must be integer levels in [0, {num_levels}) (not scaled floats), got {dtype}"
        )
    if not isinstance(x, jax.core.Tracer) and np.size(x):
        with jax.ensure_compile_time_eval():  # values closed over by a jitted function
            low, high = int(jnp.min(x)), int(jnp.max(x))
        if low < 0 or high >= num_levels:
            raise ValueError(
                f"{name} must be integer levels in [0, {num_levels}), got values in [{low}, {high}]"
            )
    return jnp.asarray(x, jnp.int32)


def in_range(x: jnp.ndarray, num_levels: int) -> jnp.ndarray:
    """Whether every subpixel of each image lies in `[0, num_levels)`, bool `[B]`."""
    return jnp.all((x >= 0) & (x < num_levels), axis=(1, 2, 3))
