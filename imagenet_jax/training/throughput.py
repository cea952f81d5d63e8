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
import math
import re
import time
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp

# Dense (no structured sparsity) peak FLOP/s of one JAX device, from the vendors' data sheets: (bf16, fp32).
# "bf16" is what `config.half_precision` computes in (models/from_config.py: jnp.bfloat16); "fp32" is what a float32
# step reaches by default: TPUs run float32 matmuls/convolutions as bf16 MXU passes, Ampere and later GPUs as TF32
# on tensor cores (XLA's default precision). V100 has no bf16 or TF32 tensor cores: both run at its FP32 rate.
# Each pattern must match the whole device_kind (lower case); a kind no pattern matches gets no MFU.
PeakEntry = tuple[str, str, float, float]  # (name, device_kind pattern, bf16, fp32)
PEAK_FLOPS: tuple[PeakEntry, ...] = (
    # H100 SXM5 reports "NVIDIA H100 80GB HBM3"; PCIe and NVL parts name themselves.
    ("H100 SXM", r"nvidia h100( sxm5?)? \d+gb hbm3|nvidia h100 sxm5?( \d+gb)?", 989.4e12, 494.7e12),
    ("H100 PCIe", r"nvidia h100 pcie( \d+gb)?", 756.5e12, 378.0e12),
    ("H100 NVL", r"nvidia h100 nvl( \d+gb)?", 835.5e12, 417.5e12),
    ("H200 SXM", r"nvidia h200( sxm)?( \d+gb)?( hbm3e)?", 989.4e12, 494.7e12),
    ("H200 NVL", r"nvidia h200 nvl( \d+gb)?", 835.5e12, 417.5e12),
    ("GH200", r"nvidia gh200( \d+gb)?( hbm3e?)?", 989.4e12, 494.7e12),
    # Every A100 (PCIe or SXM4, 40 or 80 GB) has the same dense bf16 and TF32 peaks; only its power limit differs.
    ("A100", r"nvidia a100[- ](sxm4?|pcie)[- ]\d+gb|nvidia a100[- ]\d+gb[- ](sxm4?|pcie)", 312e12, 156e12),
    ("V100 SXM2", r"tesla v100-sxm2-\d+gb", 15.7e12, 15.7e12),
    ("V100 PCIe", r"tesla v100-pcie-\d+gb", 14.0e12, 14.0e12),
    ("V100S PCIe", r"tesla v100s-pcie-\d+gb", 16.4e12, 16.4e12),
    ("L4", r"nvidia l4", 121e12, 60e12),
    # TPU v2/v3: a JAX device is one of the chip's two TensorCores, so half the chip's 45 / 123 TFLOP/s.
    ("TPU v2", r"tpu v2", 22.5e12, 22.5e12),
    ("TPU v3", r"tpu v3", 61.5e12, 61.5e12),
    ("TPU v4", r"tpu v4", 275e12, 275e12),  # megacore: a device is the whole chip
    ("TPU v5e", r"tpu v5 ?lite|tpu v5e", 197e12, 197e12),
    ("TPU v5p", r"tpu v5p?", 459e12, 459e12),  # v5p reports "TPU v5"
    ("TPU v6e", r"tpu v6 ?lite|tpu v6e", 918e12, 918e12),  # Trillium
)
_PROBE_SIZE = 1024  # the CPU probe multiplies two float32 matrices of this side


def table_peak_flops(device_kind: str, half_precision: bool) -> tuple[str, float] | None:
    """(table entry, peak FLOP/s) of the one PEAK_FLOPS entry matching the whole `device_kind`; None if none does."""
    kind = " ".join(device_kind.lower().split())
    matches = [(name, bf16 if half_precision else fp32) for name, pattern, bf16, fp32 in PEAK_FLOPS
               if re.fullmatch(pattern, kind)]
    return matches[0] if len(matches) == 1 else None


def device_peak_flops(device: Any, half_precision: bool, override: float = 0.0) -> tuple[float | None, str]:
    """(peak FLOP/s of one `device` for bf16 or float32 work, where it came from); None and why when unknown."""
    if override > 0:
        return float(override), "config.peak_flops_per_device"
    entry = table_peak_flops(device.device_kind, half_precision)
    if entry is not None:
        return entry[1], f"{entry[0]} data sheet, dense {'bf16' if half_precision else 'fp32'}"
    if device.platform == "cpu":
        try:
            peak = measured_cpu_peak_flops()
        except Exception as error:  # noqa: BLE001  (a failed probe means no MFU, never a made-up one)
            return None, f"the CPU matmul probe failed ({type(error).__name__}: {error})"
        if not math.isfinite(peak) or peak <= 0:
            return None, f"the CPU matmul probe measured {peak} FLOP/s"
        return peak, "CPU float32 matmul probe"
    return None, (f"no peak FLOP/s known for device kind {device.device_kind!r} "
                  "(set config.peak_flops_per_device)")


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


def compiled_flops(compiled: Any) -> float | None:
    """FLOPs of one call of a compiled (per-device) executable, from XLA's cost analysis; None when not available."""
    try:
        analysis = compiled.cost_analysis()
    except Exception:  # noqa: BLE001  (some backends do not implement it; the run goes on without MFU)
        return None
    if isinstance(analysis, list | tuple):  # older JAX: one dict per executable
        analysis = analysis[0] if analysis else {}
    flops = (analysis or {}).get("flops")
    return float(flops) if flops is not None and flops > 0 else None


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


def mfu(images_per_second: float, flops_per_image: float | None, peak_flops_per_device: float | None,
        device_count: int) -> float | None:
    """Model FLOPs utilization: achieved model FLOP/s over the peak of all devices; None when either is unknown."""
    if not flops_per_image or not peak_flops_per_device:
        return None
    return images_per_second * flops_per_image / (peak_flops_per_device * device_count)


class ThroughputMeter:
    """Measures input wait per log window and turns images/s into TFLOP/s and MFU once the step is analysed."""

    def __init__(self, global_batch_size: int, half_precision: bool, peak_flops_per_device: float = 0.0):
        """`peak_flops_per_device` > 0 overrides the table/probe (config.peak_flops_per_device)."""
        self.global_batch_size = global_batch_size
        self.half_precision = half_precision
        self.peak_override = peak_flops_per_device
        self.flops_per_image: float | None = None  # None until analyze(), or when XLA gives no cost analysis
        self.peak_flops_per_device: float | None = None
        self.mfu_unavailable_reason = "the train step was not analysed"
        self.device_count = jax.device_count()
        self._wait_seconds = 0.0
        self._window_start = time.monotonic()

    def analyze(self, jitted_step: Any, *args: Any) -> dict[str, float]:
        """Compiles `jitted_step` for `args` (the jit call then reuses it), logs FLOPs/peak memory once; MFU's
        absence, if it cannot be computed, is logged here once with its reason (train lines then omit `mfu`)."""
        compiled = jitted_step.lower(*args).compile()
        flops = compiled_flops(compiled)
        self.flops_per_image = None if flops is None else flops * self.device_count / self.global_batch_size
        device = jax.devices()[0]
        self.peak_flops_per_device, peak_source = device_peak_flops(device, self.half_precision, self.peak_override)
        if self.flops_per_image is None:
            self.mfu_unavailable_reason = "XLA's cost analysis of the train step gave no FLOP count"
        elif self.peak_flops_per_device is None:
            self.mfu_unavailable_reason = peak_source
        else:
            self.mfu_unavailable_reason = ""
        summary = {"peak_memory_gib_per_device": peak_memory_bytes(compiled) / 2**30}
        if self.flops_per_image is not None:
            summary["model_gflops_per_image"] = self.flops_per_image / 1e9
        if self.peak_flops_per_device is not None:
            summary["peak_tflops_per_device"] = self.peak_flops_per_device / 1e12
        logging.info("train step: %s GFLOPs per image (XLA cost analysis, forward+backward+update), "
                     "peak %s TFLOP/s per device (%s, %s: %s), peak memory %.2f GiB per device",
                     _number(summary.get("model_gflops_per_image"), 3),
                     _number(summary.get("peak_tflops_per_device"), 1),
                     device.device_kind, "bf16" if self.half_precision else "float32", peak_source,
                     summary["peak_memory_gib_per_device"])
        if self.mfu_unavailable_reason:
            logging.warning("MFU is not reported (train lines omit `mfu`): %s", self.mfu_unavailable_reason)
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
        """data_wait_fraction of the window since the last call, plus model TFLOP/s and MFU when they are known
        (absent, not 0, when not: the reason was logged once by analyze); starts a new window."""
        now = time.monotonic()
        wall = max(now - self._window_start, 1e-9)
        fraction = min(max(self._wait_seconds / wall, 0.0), 1.0)
        self._wait_seconds, self._window_start = 0.0, now
        metrics = {"data_wait_fraction": fraction}
        if self.flops_per_image is not None:
            metrics["model_tflops_per_second"] = images_per_second * self.flops_per_image / 1e12
        utilization = mfu(images_per_second, self.flops_per_image, self.peak_flops_per_device, self.device_count)
        if utilization is not None:
            metrics["mfu"] = utilization
        return metrics


def _number(value: float | None, decimals: int) -> str:
    return "unknown" if value is None else f"{value:.{decimals}f}"
