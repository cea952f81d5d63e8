"""XLA flags the GPU path sets by default (before JAX starts a backend); CPU and TPU runs get none of them.

`--xla_gpu_enable_latency_hiding_scheduler=true` lets XLA schedule the data-parallel gradient all-reduce (and,
under FSDP, the all-gathers) asynchronously so it overlaps the backward pass instead of following it; NVIDIA's
JAX images set it for the same reason. Flags the user already put in XLA_FLAGS win. PERFORMANCE.md says why
each flag is there and which ones are still to be measured on a GPU.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

GPU_DEFAULT_FLAGS = ("--xla_gpu_enable_latency_hiding_scheduler=true",)


def gpu_expected(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Whether JAX will pick a GPU backend: JAX_PLATFORMS names cuda/gpu/rocm, or is unset on a host with an NVIDIA
    device node (checked without starting JAX, since flags only count before the backend starts)."""
    platforms = environ.get("JAX_PLATFORMS", "").lower()
    if platforms:
        return any(name in platforms.split(",")[0] for name in ("cuda", "gpu", "rocm"))
    return os.path.exists("/dev/nvidiactl")


def with_gpu_defaults(xla_flags: str) -> str:
    """`xla_flags` plus every default GPU flag whose name it does not already set."""
    present = {flag.split("=")[0] for flag in xla_flags.split()}
    added = [flag for flag in GPU_DEFAULT_FLAGS if flag.split("=")[0] not in present]
    return " ".join([*xla_flags.split(), *added])


def apply_gpu_defaults(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Adds the GPU default flags to environ["XLA_FLAGS"] when a GPU backend is expected; True if it did."""
    if not gpu_expected(environ):
        return False
    environ["XLA_FLAGS"] = with_gpu_defaults(environ.get("XLA_FLAGS", ""))
    return True
