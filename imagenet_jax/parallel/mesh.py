"""The device mesh (axes "data" and "fsdp"), the shardings of state and batches, and global batch assembly.

The batch is split over both axes. Parameters and optimizer state are replicated over "data"; with an
"fsdp" axis larger than 1, every array of at least `fsdp_min_size` elements is additionally split along
its largest dimension that divides evenly (ZeRO-3 / FSDP), and XLA inserts the all-gathers.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"
FSDP_AXIS = "fsdp"
BATCH_AXES = (DATA_AXIS, FSDP_AXIS)


def make_mesh(fsdp_devices: int = 1) -> Mesh:
    """A (data, fsdp) mesh over every device of every process; fsdp_devices must divide the device count."""
    count = jax.device_count()
    if fsdp_devices < 1 or count % fsdp_devices:
        raise ValueError(f"fsdp_devices={fsdp_devices} must divide the {count} devices")
    return jax.make_mesh((count // fsdp_devices, fsdp_devices), BATCH_AXES, axis_types=(AxisType.Auto,) * 2)


def make_data_mesh() -> Mesh:
    """A mesh with every device on the "data" axis (pure data parallelism)."""
    return make_mesh(1)


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the full value."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """The leading (batch) dimension is split over all devices."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXES))


def state_shardings(abstract_state: Any, mesh: Mesh, fsdp_min_size: int) -> Any:
    """Per-leaf shardings: replicated, or split over "fsdp" along the largest evenly dividing dimension."""
    fsdp_size = mesh.shape[FSDP_AXIS]

    def leaf_sharding(leaf) -> NamedSharding:
        shape = getattr(leaf, "shape", ())
        if fsdp_size == 1 or int(np.prod(shape, dtype=np.int64)) < fsdp_min_size:
            return replicated(mesh)
        for dim in sorted(range(len(shape)), key=lambda d: -shape[d]):
            if shape[dim] % fsdp_size == 0:
                spec = [None] * len(shape)
                spec[dim] = FSDP_AXIS
                return NamedSharding(mesh, PartitionSpec(*spec))
        return replicated(mesh)

    return jax.tree.map(leaf_sharding, abstract_state)


def global_batch(local_batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Assembles each process's part of the batch into one globally sharded array per key."""
    sharding = batch_sharded(mesh)
    return {key: jax.make_array_from_process_local_data(sharding, value) for key, value in local_batch.items()}
