"""Every evaluator scores each example exactly once, on 1 or 8 (fake CPU) devices and any batch size, and the
deterministic ones give the same numbers either way."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

EXAMPLES = 203  # prime: no batch size divides it, so the last batch is always padded


def _run(data_dir: str, devices: int, batch: int) -> dict:
    env = {**os.environ, "PYTHONPATH": REPO, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    result = subprocess.run([sys.executable, "tests/evaluators/exactness_script.py", data_dir, str(batch)], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


@pytest.mark.slow
def test_every_evaluator_counts_every_example_once_on_1_and_8_devices(fashion_mnist_dir):
    one = _run(fashion_mnist_dir, 1, 16)
    eight = _run(fashion_mnist_dir, 8, 64)
    assert set(one) == {"test[:203]", "per_class", "calibration", "ten_crop", "scales", "corrupt", "pgd"}
    for results in (one, eight):
        for name, metrics in results.items():
            assert metrics["num_examples"] == EXAMPLES, name
    for name in ("test[:203]", "per_class", "calibration", "ten_crop", "scales"):
        for key, value in one[name].items():
            assert eight[name][key] == pytest.approx(value, abs=1e-5), (name, key)
    assert one["per_class"]["accuracy"] == pytest.approx(one["test[:203]"]["top1"])
    assert one["pgd"]["clean_top1"] == pytest.approx(one["test[:203]"]["top1"])
    assert one["pgd"]["top1"] <= one["pgd"]["clean_top1"]
