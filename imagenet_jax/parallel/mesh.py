"""The device mesh (axes "data" and "fsdp"), the shardings of state and batches, and global batch assembly.

The batch is split over both axes. Parameters and optimizer state are replicated over "data"; with an
"fsdp" axis larger than 1, every array of at least `fsdp_min_size` elements is additionally split along
its largest dimension that divides evenly (ZeRO-3 / FSDP), and XLA inserts the all-gathers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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


SHARDING_RULES = ("fsdp", "replicate")

# How the state is split over devices, not what a step computes: a run may resume on another mesh.
RESUME_SAFE_KEYS = frozenset({"fsdp_devices", "fsdp_min_size", "fsdp_rules"})


def validate_config(config: Any) -> None:
    """ConfigError naming config.fsdp_devices / config.fsdp_rules when malformed."""
    from imagenet_jax.errors import ConfigError

    if config.fsdp_devices <= 0:
        raise ConfigError(f"config.fsdp_devices={config.fsdp_devices} must be > 0.")
    for rule in config.fsdp_rules:
        if len(rule) != 2 or rule[1] not in SHARDING_RULES:
            raise ConfigError(f"config.fsdp_rules: {rule!r} must be a (regex, 'fsdp' | 'replicate') pair.")
        try:
            re.compile(rule[0])
        except re.error as error:
            raise ConfigError(f"config.fsdp_rules: {rule[0]!r} is not a regular expression ({error}).") from None


def state_shardings(abstract_state: Any, mesh: Mesh, fsdp_min_size: int,
                    rules: Sequence[tuple[str, str]] = ()) -> Any:
    """Per-leaf shardings: replicated, or split over "fsdp" along the largest evenly dividing dimension.

    `rules` are (regex, "fsdp" | "replicate") pairs matched (re.search) against each leaf's path, such as
    "params/stage4_block1/Conv_1/kernel" or "opt_state/1/0/trace/head/kernel"; the first match decides.
    Leaves no rule matches are split when they have at least `fsdp_min_size` elements.
    """
    fsdp_size = mesh.shape[FSDP_AXIS]
    compiled = [(re.compile(pattern), rule) for pattern, rule in rules]

    def leaf_sharding(path, leaf) -> NamedSharding:
        shape = getattr(leaf, "shape", ())
        name = leaf_path(path)
        rule = next((rule for pattern, rule in compiled if pattern.search(name)), None)
        if rule is None:
            rule = "fsdp" if int(np.prod(shape, dtype=np.int64)) >= fsdp_min_size else "replicate"
        if rule == "replicate" or fsdp_size == 1:
            return replicated(mesh)
        for dim in sorted(range(len(shape)), key=lambda d: -shape[d]):
            if shape[dim] % fsdp_size == 0:
                spec = [None] * len(shape)
                spec[dim] = FSDP_AXIS
                return NamedSharding(mesh, PartitionSpec(*spec))
        return replicated(mesh)

    return jax.tree_util.tree_map_with_path(leaf_sharding, abstract_state)


def leaf_path(path: tuple) -> str:
    """A pytree key path as "params/stage1_block1/Conv_0/kernel"."""
    parts = []
    for key in path:
        for attribute in ("key", "name", "idx"):
            if hasattr(key, attribute):
                parts.append(str(getattr(key, attribute)))
                break
    return "/".join(parts)


def global_batch(local_batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Assembles each process's part of the batch into one globally sharded array per key."""
    sharding = batch_sharded(mesh)
    return {key: jax.make_array_from_process_local_data(sharding, value) for key, value in local_batch.items()}
