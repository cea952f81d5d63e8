"""FLOPs from XLA's cost analysis match hand counts; MFU arithmetic; data_wait_fraction and profiles in real runs."""

from __future__ import annotations

import glob
import os
import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from imagenet_jax.config.base import get_base_config
from imagenet_jax.errors import ConfigError
from imagenet_jax.models import conv_lowering
from imagenet_jax.training import profiling, throughput
from tests.conftest import read_metrics, run_main, tiny_run_overrides


def test_dense_layer_flops_are_two_per_multiply_add():
    dense = nn.Dense(48, use_bias=False)
    x = jnp.ones((16, 96))
    params = dense.init(jax.random.key(0), x)
    compiled = jax.jit(dense.apply).lower(params, x).compile()
    assert throughput.compiled_flops(compiled) == 2 * 16 * 96 * 48


@pytest.mark.parametrize("lowering", ["xla", "patches"])
def test_conv_layer_flops_are_two_per_multiply_add(lowering):
    conv_lowering.set_cpu_conv_lowering(lowering)
    try:
        conv = nn.Conv(32, (3, 3), padding="VALID", use_bias=False,
                       conv_general_dilated=conv_lowering.conv_general_dilated)
        x = jnp.ones((4, 10, 10, 16))
        params = conv.init(jax.random.key(0), x)
        compiled = jax.jit(conv.apply).lower(params, x).compile()
    finally:
        conv_lowering.set_cpu_conv_lowering("auto")
    multiply_adds = 4 * 8 * 8 * (3 * 3 * 16) * 32  # output pixels x window x output channels
    assert throughput.compiled_flops(compiled) == pytest.approx(2 * multiply_adds, rel=0.01)


def test_mfu_is_achieved_over_peak_of_all_devices():
    # 1,000 img/s x 1 GFLOP = 1 TFLOP/s against 2 devices of 1 TFLOP/s each.
    assert throughput.mfu(1000.0, 1e9, 1e12, 2) == pytest.approx(0.5)
    assert throughput.mfu(1000.0, 1e9, None, 2) is None  # unknown peak: no MFU rather than a wrong one
    assert throughput.mfu(1000.0, None, 1e12, 2) is None  # unknown FLOPs: likewise


def _device(kind: str, platform: str = "gpu") -> types.SimpleNamespace:
    return types.SimpleNamespace(device_kind=kind, platform=platform)


# (device_kind as JAX reports it, table entry, dense bf16 peak, float32-default peak): at least one per entry.
PEAK_CASES = [
    ("NVIDIA H100 80GB HBM3", "H100 SXM", 989.4e12, 494.7e12),
    ("NVIDIA H100 SXM5 80GB", "H100 SXM", 989.4e12, 494.7e12),
    ("NVIDIA H100 PCIe", "H100 PCIe", 756.5e12, 378.0e12),
    ("NVIDIA H100 NVL", "H100 NVL", 835.5e12, 417.5e12),
    ("NVIDIA H200", "H200 SXM", 989.4e12, 494.7e12),
    ("NVIDIA H200 NVL", "H200 NVL", 835.5e12, 417.5e12),
    ("NVIDIA GH200 480GB", "GH200", 989.4e12, 494.7e12),
    ("NVIDIA A100-SXM4-40GB", "A100", 312e12, 156e12),
    ("NVIDIA A100-SXM4-80GB", "A100", 312e12, 156e12),
    ("NVIDIA A100-PCIE-40GB", "A100", 312e12, 156e12),
    ("NVIDIA A100 80GB PCIe", "A100", 312e12, 156e12),
    ("Tesla V100-SXM2-16GB", "V100 SXM2", 15.7e12, 15.7e12),
    ("Tesla V100-PCIE-32GB", "V100 PCIe", 14.0e12, 14.0e12),
    ("Tesla V100S-PCIE-32GB", "V100S PCIe", 16.4e12, 16.4e12),
    ("NVIDIA L4", "L4", 121e12, 60e12),
    ("TPU v2", "TPU v2", 22.5e12, 22.5e12),
    ("TPU v3", "TPU v3", 61.5e12, 61.5e12),
    ("TPU v4", "TPU v4", 275e12, 275e12),
    ("TPU v5 lite", "TPU v5e", 197e12, 197e12),
    ("TPU v5e", "TPU v5e", 197e12, 197e12),
    ("TPU v5", "TPU v5p", 459e12, 459e12),
    ("TPU v5p", "TPU v5p", 459e12, 459e12),
    ("TPU v6 lite", "TPU v6e", 918e12, 918e12),
    ("TPU v6e", "TPU v6e", 918e12, 918e12),
]


@pytest.mark.parametrize(("kind", "entry", "bf16", "fp32"), PEAK_CASES)
def test_peak_of_a_device_kind_is_its_data_sheet_entry(kind, entry, bf16, fp32):
    platform = "tpu" if kind.startswith("TPU") else "gpu"
    assert throughput.table_peak_flops(kind, half_precision=True) == (entry, bf16)
    assert throughput.table_peak_flops(kind, half_precision=False) == (entry, fp32)
    peak, source = throughput.device_peak_flops(_device(kind, platform), half_precision=True)
    assert peak == bf16 and source.startswith(entry)


def test_every_peak_table_entry_has_a_device_kind_case():
    assert {entry for _, entry, _, _ in PEAK_CASES} == {name for name, *_ in throughput.PEAK_FLOPS}


@pytest.mark.parametrize("kind", ["NVIDIA H100", "NVIDIA B200", "Tesla T4", "NVIDIA A10G", "TPU v7x", "H100 PCIe"])
def test_unknown_or_ambiguous_device_kind_has_no_peak_and_says_why(kind):
    # A bare "NVIDIA H100" could be a PCIe or an SXM part: no guess. Only the whole string decides.
    assert throughput.table_peak_flops(kind, half_precision=True) is None
    peak, reason = throughput.device_peak_flops(_device(kind), half_precision=True)
    assert peak is None and repr(kind) in reason and "config.peak_flops_per_device" in reason


def test_configured_peak_overrides_the_table():
    assert throughput.device_peak_flops(_device("NVIDIA H100 80GB HBM3"), True, override=1e12) == (
        1e12, "config.peak_flops_per_device")


def test_failing_cpu_probe_gives_no_peak_rather_than_zero(monkeypatch):
    def failing_probe():
        raise RuntimeError("probe exploded")

    monkeypatch.setattr(throughput, "measured_cpu_peak_flops", failing_probe)
    peak, reason = throughput.device_peak_flops(_device("cpu", "cpu"), half_precision=False)
    assert peak is None and "RuntimeError: probe exploded" in reason


def test_meter_omits_mfu_and_logs_the_reason_once_when_the_probe_fails(monkeypatch, caplog):
    monkeypatch.setattr(throughput, "measured_cpu_peak_flops", lambda: 1 / 0)
    meter = throughput.ThroughputMeter(global_batch_size=8, half_precision=False)
    with caplog.at_level("INFO"):
        meter.analyze(jax.jit(lambda x: x @ x), jnp.ones((8, 8)))
        windows = [meter.window_metrics(images_per_second=100.0) for _ in range(3)]
    for window in windows:
        assert "mfu" not in window
        assert window["model_tflops_per_second"] == pytest.approx(100.0 * 2 * 8**3 / 8 / 1e12)
    warnings = [record.getMessage() for record in caplog.records if "MFU is not reported" in record.getMessage()]
    assert len(warnings) == 1 and "ZeroDivisionError" in warnings[0]


def test_meter_omits_tflops_and_mfu_when_xla_gives_no_cost_analysis(monkeypatch, caplog):
    monkeypatch.setattr(throughput, "compiled_flops", lambda compiled: None)
    meter = throughput.ThroughputMeter(global_batch_size=8, half_precision=False, peak_flops_per_device=1e12)
    with caplog.at_level("WARNING"):
        summary = meter.analyze(jax.jit(lambda x: x @ x), jnp.ones((8, 8)))
    window = meter.window_metrics(images_per_second=100.0)
    assert set(window) == {"data_wait_fraction"}
    assert "model_gflops_per_image" not in summary and summary["peak_tflops_per_device"] == 1.0
    assert [record.getMessage() for record in caplog.records] == [
        "MFU is not reported (train lines omit `mfu`): XLA's cost analysis of the train step gave no FLOP count"]


def test_window_metrics_turn_images_per_second_into_tflops_and_mfu():
    meter = throughput.ThroughputMeter(global_batch_size=8, half_precision=False, peak_flops_per_device=4e12)
    meter.flops_per_image, meter.peak_flops_per_device, meter.device_count = 2e9, 4e12, 1
    window = meter.window_metrics(images_per_second=1000.0)
    assert window["model_tflops_per_second"] == pytest.approx(2.0)
    assert window["mfu"] == pytest.approx(0.5)
    assert 0.0 <= window["data_wait_fraction"] <= 1.0


def test_profile_steps_and_peak_flops_are_validated_naming_the_key():
    for steps in [(5, 2), (0, 3), (1,), (1.5, 3)]:
        config = get_base_config()
        config.profile_steps = steps
        with pytest.raises(ConfigError, match="config.profile_steps"):
            profiling.validate_config(config)
    config = get_base_config()
    config.peak_flops_per_device = -1.0
    with pytest.raises(ConfigError, match="config.peak_flops_per_device"):
        profiling.validate_config(config)


@pytest.mark.slow
def test_tiny_run_logs_data_wait_mfu_and_writes_a_profile(tmp_path, fashion_mnist_dir):
    workdir = str(tmp_path / "run")
    result = run_main(workdir, *tiny_run_overrides(fashion_mnist_dir, steps=6), "--config.profile_steps=(3, 4)")
    assert result.returncode == 0, result.stderr[-3000:]
    train = [line for line in read_metrics(workdir) if line["split"] == "train"]
    assert len(train) == 3
    for line in train:
        assert 0.0 <= line["data_wait_fraction"] <= 1.0
        assert line["mfu"] > 0 and line["model_tflops_per_second"] > 0
    assert "GFLOPs per image" in result.stderr and "peak memory" in result.stderr
    traces = glob.glob(os.path.join(workdir, "plugins", "profile", "*", "*.xplane.pb"))
    assert len(traces) == 1 and os.path.getsize(traces[0]) > 0


@pytest.mark.slow
def test_no_profile_directory_without_profile_steps(tmp_path, fashion_mnist_dir):
    workdir = str(tmp_path / "run")
    result = run_main(workdir, *tiny_run_overrides(fashion_mnist_dir, steps=2))
    assert result.returncode == 0, result.stderr[-3000:]
    assert not os.path.exists(os.path.join(workdir, "plugins"))


@pytest.mark.slow
def test_train_step_benchmark_reports_mfu_compile_time_and_peak_memory(tmp_path):
    import json
    import subprocess
    import sys

    from tests.conftest import REPO

    out = tmp_path / "bench.json"
    command = [sys.executable, "benchmarks/train_step.py", "--config", "configs/default.py", "--batch_size", "16",
               "--steps", "2", "--warmup", "1", "--sweep_batch", "8,16", "--json", str(out)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.read_text())["results"]
    assert [row["batch_size"] for row in rows] == [8, 16]
    for row in rows:
        assert row["images_per_second"] > 0 and 0 < row["mfu"] and row["tflops_per_second"] > 0
        assert row["model_gflops_per_image"] > 0 and row["peak_memory_gib"] > 0 and row["compile_seconds"] > 0
    # FLOPs per image do not depend on the batch size (cost analysis of the whole step, divided by the batch)
    assert rows[0]["model_gflops_per_image"] == pytest.approx(rows[1]["model_gflops_per_image"], rel=0.05)
