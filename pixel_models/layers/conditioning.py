"""Per-example conditioning biases (van den Oord et al. 2016, "Conditional
Image Generation with PixelCNN Decoders", Eq. 4), shared by the Gated
PixelCNN and PixelCNN++.

`cond` is None (unconditional), integer class labels `[B]` (h one-hot: a
learned table, `V h`) or a float embedding `[B, D]` (a Dense layer,
`V h + b`). A model asks for all the biases it needs at once (one lookup or
one GEMM) and splits them per layer: the same as a table or Dense per layer.
Unconditional models refuse a `cond` with `check_unconditional`.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def check_unconditional(model: nn.Module, cond) -> None:
    """Raise unless `cond` is None: `model` takes no conditioning."""
    if cond is not None:
        raise ValueError(f"{type(model).__name__} is unconditional: call it with cond=None")


def _check_labels(labels: jnp.ndarray, num_classes: int) -> None:
    """Raise a ValueError for labels outside `[0, num_classes)` when their
    values are known (not traced under `jit`)."""
    try:
        values = np.asarray(labels)
    except jax.errors.TracerArrayConversionError:
        return
    bad = values[(values < 0) | (values >= num_classes)]
    if bad.size:
        raise ValueError(f"class labels must lie in [0, {num_classes}), got {bad.tolist()}")


def condition_bias(
    cond, batch: int, features: int, num_classes: int, dtype: Any = None
) -> jnp.ndarray | None:
    """`cond` -> biases `[batch, features]`, or None when `cond` is None.

    Call it inside a compact method: the table (`nn.Embed`, for labels) or
    the Dense layer (for embeddings) becomes a submodule of the calling
    module, named `class_bias` or `embedding_bias`.

    Labels need `num_classes` > 0 and `cond=None` needs `num_classes` = 0.
    Labels outside `[0, num_classes)` raise a ValueError when their values are
    known; under `jit` they give NaN biases, never another class's.
    """
    if cond is None:
        if num_classes:
            raise ValueError(
                f"num_classes={num_classes}: cond must be the class labels [{batch}], not None"
            )
        return None
    cond = jnp.asarray(cond)
    if jnp.issubdtype(cond.dtype, jnp.integer) and cond.shape == (batch,):
        if num_classes <= 0:
            raise ValueError(
                "class labels given as cond, but num_classes=0: set model.num_classes "
                "to the number of classes"
            )
        _check_labels(cond, num_classes)
        # Negative labels would wrap around: send them out of range (NaN rows).
        labels = jnp.where(cond < 0, num_classes, cond)
        table = nn.Embed(
            num_classes,
            features,
            dtype=dtype,
            embedding_init=nn.initializers.lecun_normal(),  # as a Dense of the one-hot label
            name="class_bias",
        )
        return table(labels)
    if jnp.issubdtype(cond.dtype, jnp.floating) and cond.ndim == 2 and len(cond) == batch:
        return nn.Dense(features, dtype=dtype, name="embedding_bias")(cond)
    raise ValueError(
        f"cond must be None, int labels [{batch}] or a float embedding [{batch}, D]; "
        f"got {cond.dtype} {cond.shape}"
    )
