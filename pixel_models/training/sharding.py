"""The device mesh and where arrays live on it (GUIDE.md §4).

Data parallelism over one mesh axis, "data": batches are split along their
first axis, parameters and optimizer state are replicated. On many hosts
every process holds the rows of each global batch that its devices own.
"""

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(devices: list | None = None) -> Mesh:
    """A 1-D mesh over `devices` (default: every device of every process).

    The axis is `Auto`: jit places every intermediate from the input and
    output shardings, so models stay free of sharding code (an `Explicit`
    axis would make e.g. a scan's zero initial state need one).
    """
    devices = jax.devices() if devices is None else devices
    return jax.make_mesh(
        (len(devices),), (DATA_AXIS,), axis_types=(AxisType.Auto,), devices=devices
    )


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over the mesh."""
    return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def replicated_shapes(mesh: Mesh, shapes):
    """`shapes` (a tree of arrays or `ShapeDtypeStruct`s, e.g. from
    `jax.eval_shape`) as `ShapeDtypeStruct`s replicated over `mesh`: what to
    restore or create parameters as."""
    sharding = replicated(mesh)
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), shapes)


# The flags that set each batch size (`{0}`: a size), for check_batch_size's message.
_SET_BY = {
    "batch_size": "--config.batch_size={0}",
    "eval_batch_size": "--batch_size={0} for evaluate, --config.eval_batch_size={0} for train",
}


def check_batch_size(mesh: Mesh, global_batch_size: int, name: str = "batch_size") -> None:
    """Raise if the devices do not split the global batch `name` (a key of
    _SET_BY) evenly, saying which size works and the flags that set it."""
    num_devices = mesh.devices.size
    if global_batch_size <= 0 or global_batch_size % num_devices:
        fix = max(global_batch_size // num_devices, 1) * num_devices
        raise ValueError(
            f"{name}={global_batch_size} must be a positive multiple of the number of "
            f"devices ({num_devices}), e.g. {_SET_BY[name].format(fix)}"
        )


def put_batch(mesh: Mesh, local_batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """Host arrays holding this process's rows -> global arrays sharded on "data"."""
    sharding = batch_sharding(mesh)
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch
    )
