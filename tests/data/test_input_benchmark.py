"""benchmarks/input_pipeline.py runs end to end on the fake ImageNet and reports both pipelines and the ratio."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_input_pipeline_benchmark_reports_both_pipelines(tmp_path, fake_imagenet_data_dir):
    from imagenet_jax import prepare

    out, reencoded = tmp_path / "bench.json", str(tmp_path / "reencoded")
    assert prepare.main(["--data_dir", fake_imagenet_data_dir, "--reencode_to", reencoded, "--max_side", "200"]) == 0
    command = [sys.executable, "benchmarks/input_pipeline.py", "--dataset", "imagenet2012", "--data_dir",
               fake_imagenet_data_dir, "--split", "train", "--json", str(out), "--image_size", "64",
               "--batch_size", "16", "--batches", "2", "--warmup_batches", "1", "--repeats", "1",
               "--pipelines", "flax_baseline,ours,ours_reencoded,ours_machinery", "--reencoded_data_dir", reencoded]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": REPO})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    cores = report["machine"]["cores"]
    assert {key for key in report["results"]} >= {"flax_baseline@1", "ours@1"}
    assert report["results"]["ours@1"]["output"] == "uint8[16, 64, 64, 3]"
    assert report["results"]["flax_baseline@1"]["output"] == "float32[16, 64, 64, 3]"
    assert report["ratios"]["ours/flax_baseline@1"]["images_per_second"] > 0
    assert report["results"]["ours_reencoded@1"]["output"] == "uint8[16, 64, 64, 3]"
    assert report["mean_jpeg_bytes"]["ours_reencoded"] < report["mean_jpeg_bytes"]["ours"] / 3  # read the copy
    assert report["results"]["ours_machinery@1"]["output"] == "uint8[16, 64, 64, 3]"
    if cores > 1:
        assert f"ours/flax_baseline@{cores}" in report["ratios"]
