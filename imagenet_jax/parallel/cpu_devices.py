"""How many host devices a CPU run splits its batch over (`config.cpu_devices`), set before JAX starts a backend.

On CPU, XLA runs one device's program largely on one core: the default job used ~160% of a 2-core machine, and
splitting its batch over one host device per core made its train step 1.25x faster at the same global batch
(BENCHMARKS.md, issue 28). The arithmetic is the same: BatchNorm statistics and gradients are still taken over the
global batch (XLA inserts the all-reduces), so only float summation order changes. The count is a JAX runtime
option (`jax_num_cpu_devices`), so it has to be chosen before the first JAX backend use, i.e. in the command line
entry point: `apply(config)`. An explicit `--xla_force_host_platform_device_count` in XLA_FLAGS always wins, and
multi-process runs keep one device per process unless config.cpu_devices says otherwise.
"""

from __future__ import annotations

import logging
import os
import platform
from collections.abc import Mapping
from typing import Any

import ml_collections

XLA_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"
# A different device count only changes how the batch is split, not what a step computes: runs may resume.
RESUME_SAFE_KEYS = frozenset({"cpu_devices"})


def validate_config(config: Any) -> None:
    """ConfigError naming config.cpu_devices when it is not a count >= 0."""
    from imagenet_jax.errors import ConfigError

    value = config.cpu_devices
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"config.cpu_devices={value!r} must be an integer >= 0 (0: one host device per core, as "
                          "many as divide the batch sizes; 1: the whole batch on one device).")


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def auto_device_count(core_count: int, batch_sizes: tuple[int, ...]) -> int:
    """The largest count <= core_count that divides every nonzero batch size (1 at worst)."""
    sizes = [size for size in batch_sizes if size]
    return next(count for count in range(max(core_count, 1), 0, -1) if all(size % count == 0 for size in sizes))


def device_count(config: ml_collections.ConfigDict, core_count: int, multi_process: bool) -> int:
    """config.cpu_devices, or for 0 the automatic choice (1 in a multi-process run)."""
    if config.cpu_devices:
        return config.cpu_devices
    if multi_process:
        return 1
    if config.per_device_batch_size:  # the global batch grows with the devices: any count divides it
        return max(core_count, 1)
    return auto_device_count(core_count, (config.batch_size, config.eval_batch_size))


def apply(config: ml_collections.ConfigDict, *, multi_process: bool = False,
          environ: Mapping[str, str] = os.environ) -> int | None:
    """Sets JAX's host device count from config.cpu_devices; the count, or None when XLA_FLAGS already sets it."""
    if XLA_DEVICE_COUNT_FLAG in environ.get("XLA_FLAGS", ""):
        return None
    validate_config(config)
    count = device_count(config, cores(), multi_process)
    import jax

    jax.config.update("jax_num_cpu_devices", count)
    if count > 1:
        logging.info("CPU: %d host devices (config.cpu_devices=%d, %d cores)", count, config.cpu_devices, cores())
    return count


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() where there is none), for benchmark records."""
    try:
        with open("/proc/cpuinfo") as stream:
            for line in stream:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
