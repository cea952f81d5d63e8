"""How fast a run is and what limits it: model FLOPs, MFU, peak memory and the share of time spent waiting for input.

FLOPs come from XLA's cost analysis of the compiled train step (forward, backward and optimizer update, as the
device runs them), which is per device under SPMD: per image = flops * device_count / global_batch. MFU divides
the achieved model FLOP/s by the device's peak (PEAK_FLOPS below; on CPU a short matmul probe measures it, or
`config.peak_flops_per_device` gives it). `data_wait_fraction` is the share of a log window's wall time spent in
`next(train_batches)` plus the host-to-device copy: with asynchronous dispatch the device keeps computing while
the host fetches, so this is near 0 when the step is the bottleneck and near 1 when the input pipeline is.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp

# Dense peak FLOP/s per device (chip), from the vendors' data sheets: (bf16, fp32). "fp32" is what a float32 step
# can reach by default: on TPUs XLA runs float32 matmuls/convs as bf16 passes (the MXU has no fp32 mode), on
# A100/H100/H200 as TF32 on tensor cores (XLA's default for float32 dots and convolutions).
PEAK_FLOPS: dict[str, tuple[float, float]] = {
    "tpu v4": (275e12, 275e12),
    "tpu v5 lite": (197e12, 197e12),  # v5e reports device_kind "TPU v5 lite"
    "tpu v5e": (197e12, 197e12),
    "tpu v5p": (459e12, 459e12),
    "tpu v5": (459e12, 459e12),  # v5p reports "TPU v5"
    "tpu v6 lite": (918e12, 918e12),  # v6e (Trillium)
    "tpu v6e": (918e12, 918e12),
    "a100": (312e12, 156e12),
    "h100": (989e12, 494e12),  # SXM; PCIe parts are ~25% lower
    "h200": (989e12, 494e12),
}
_PROBE_SIZE = 1024  # the CPU probe multiplies two float32 matrices of this side


def device_peak_flops(device: Any, half_precision: bool, override: float = 0.0) -> float:
    """Peak FLOP/s of one `device` for bf16 (`half_precision`) or float32 work; `override` > 0 wins."""
    if override > 0:
        return float(override)
    kind = device.device_kind.lower()
    for name, (bf16, fp32) in PEAK_FLOPS.items():  # ordered: "tpu v5 lite" is matched before "tpu v5"
        if name in kind:
            return bf16 if half_precision else fp32
    if device.platform == "cpu":
        return measured_cpu_peak_flops()
    logging.warning("no peak FLOP/s known for device kind %r: MFU is not reported "
                    "(set config.peak_flops_per_device)", device.device_kind)
    return 0.0


@functools.cache
def measured_cpu_peak_flops(size: int = _PROBE_SIZE, repeats: int = 5) -> float:
    """Best float32 matmul FLOP/s of the CPU device over `repeats` runs (the attainable peak, measured once)."""
    a = jnp.ones((size, size), jnp.float32)
    matmul = jax.jit(lambda x, y: x @ y)
    matmul(a, a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, a).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def compiled_flops(compiled: Any) -> float:
    """FLOPs of one call of a compiled (per-device) executable, from XLA's cost analysis; 0 when not available."""
    try:
        analysis = compiled.cost_analysis()
    except Exception:  # noqa: BLE001  (some backends do not implement it; the run goes on without MFU)
        return 0.0
    if isinstance(analysis, list | tuple):  # older JAX: one dict per executable
        analysis = analysis[0] if analysis else {}
    return float((analysis or {}).get("flops", 0.0))


def peak_memory_bytes(compiled: Any) -> int:
    """Device memory one call needs at its peak (arguments + outputs + temporaries - donated aliases); 0 if unknown."""
    try:
        stats = compiled.memory_analysis()
    except Exception:  # noqa: BLE001
        return 0
    if stats is None:
        return 0
    return int(stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
               - stats.alias_size_in_bytes)


def mfu(images_per_second: float, flops_per_image: float, peak_flops_per_device: float, device_count: int) -> float:
    """Model FLOPs utilization: achieved model FLOP/s over the peak of all devices (0 when the peak is unknown)."""
    peak = peak_flops_per_device * device_count
    return images_per_second * flops_per_image / peak if peak > 0 else 0.0


class ThroughputMeter:
    """Measures input wait per log window and turns images/s into TFLOP/s and MFU once the step is analysed."""

    def __init__(self, global_batch_size: int, half_precision: bool, peak_flops_per_device: float = 0.0):
        """`peak_flops_per_device` > 0 overrides the table/probe (config.peak_flops_per_device)."""
        self.global_batch_size = global_batch_size
        self.half_precision = half_precision
        self.peak_override = peak_flops_per_device
        self.flops_per_image = 0.0
        self.peak_flops_per_device = 0.0
        self.device_count = jax.device_count()
        self._wait_seconds = 0.0
        self._window_start = time.monotonic()

    def analyze(self, jitted_step: Any, *args: Any) -> dict[str, float]:
        """Compiles `jitted_step` for `args` (the jit call then reuses it), logs FLOPs/peak memory once."""
        compiled = jitted_step.lower(*args).compile()
        flops = compiled_flops(compiled)
        self.flops_per_image = flops * self.device_count / self.global_batch_size
        self.peak_flops_per_device = device_peak_flops(jax.devices()[0], self.half_precision, self.peak_override)
        summary = {"model_gflops_per_image": self.flops_per_image / 1e9,
                   "peak_tflops_per_device": self.peak_flops_per_device / 1e12,
                   "peak_memory_gib_per_device": peak_memory_bytes(compiled) / 2**30}
        logging.info("train step: %.3f GFLOPs per image (XLA cost analysis, forward+backward+update), "
                     "peak %.1f TFLOP/s per device (%s, %s), peak memory %.2f GiB per device",
                     summary["model_gflops_per_image"], summary["peak_tflops_per_device"],
                     jax.devices()[0].device_kind, "bf16" if self.half_precision else "float32",
                     summary["peak_memory_gib_per_device"])
        return summary

    @contextlib.contextmanager
    def input_wait(self) -> Iterator[None]:
        """Counts the time inside the block (fetching the next batch and copying it to devices) as input wait."""
        start = time.monotonic()
        try:
            yield
        finally:
            self._wait_seconds += time.monotonic() - start

    def window_metrics(self, images_per_second: float) -> dict[str, float]:
        """data_wait_fraction of the window since the last call, plus model TFLOP/s and MFU; starts a new window."""
        now = time.monotonic()
        wall = max(now - self._window_start, 1e-9)
        fraction = min(max(self._wait_seconds / wall, 0.0), 1.0)
        self._wait_seconds, self._window_start = 0.0, now
        flops_per_second = images_per_second * self.flops_per_image
        return {"data_wait_fraction": fraction, "model_tflops_per_second": flops_per_second / 1e12,
                "mfu": mfu(images_per_second, self.flops_per_image, self.peak_flops_per_device, self.device_count)}
