"""`python -m imagenet_jax.compress report` and `quantize` on a pruned tiny run: the counts printed equal the
checkpoint's own zeros, and PTQ reports a smaller model with its accuracy delta."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, read_metrics, run_main, tiny_run_overrides


@pytest.fixture(scope="module")
def pruned_run(fashion_mnist_dir, tmp_path_factory) -> str:
    workdir = str(tmp_path_factory.mktemp("pruned"))
    result = run_main(workdir, *tiny_run_overrides(fashion_mnist_dir, steps=8), "--config.pruning.method=magnitude",
                      "--config.pruning.target_sparsity=0.5", "--config.pruning.end_step=4",
                      "--config.pruning.frequency=2", "--config.pruning.scope=layer")
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def _compress(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imagenet_jax.compress", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_report_prints_the_checkpoints_exact_parameter_and_zero_counts(pruned_run, tmp_path):
    from imagenet_jax.runs import load_run

    output = str(tmp_path / "report.json")
    result = _compress("report", "--workdir", pruned_run, "--checkpoint", "latest", "--json", output)
    assert result.returncode == 0, result.stderr[-3000:]
    params = load_run(pruned_run).restore("latest").state["params"]
    import jax

    leaves = {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in
              jax.tree_util.tree_flatten_with_path(params)[0]}
    total = sum(leaf.size for leaf in leaves.values())
    nonzero = sum(int(np.count_nonzero(leaf)) for leaf in leaves.values())
    assert f"total params {total}, nonzero {nonzero} " in result.stdout
    report = json.loads(open(output).read())
    assert report["step"] == 8 and report["total_params"] == total and report["nonzero_params"] == nonzero
    conv = next(layer for layer in report["layers"] if layer["path"] == "stage2_block1/Conv_0/kernel")
    assert conv["prunable"] and conv["nonzero"] == conv["params"] - round(0.5 * conv["params"])
    assert f"{conv['sparsity']:.2%}" == "50.00%" and "50.00%  yes" in result.stdout
    stem = next(layer for layer in report["layers"] if layer["path"] == "stem_conv/kernel")
    assert not stem["prunable"] and stem["sparsity"] == 0.0
    final_eval = next(row for row in read_metrics(pruned_run) if row["split"] != "train" and row["step"] == 8)
    assert report["accuracy"]["source"] == "metrics.jsonl" and report["accuracy"]["top1"] == final_eval["top1"]
    assert f"top-1 {final_eval['top1']:.4f}" in result.stdout
    assert report["sparse_bytes"] < report["dense_bytes"]


@pytest.mark.slow
def test_quantize_reports_accuracy_delta_size_and_latency_of_the_int8_model_and_exports_it(pruned_run, tmp_path):
    pytest.importorskip("qwix")
    exported = str(tmp_path / "int8.stablehlo")
    result = _compress("quantize", "--workdir", pruned_run, "--calibration_steps", "2", "--batch_size", "128",
                       "--eval_batches", "4", "--json", "-", "--export", "stablehlo", "--output", exported)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["eval_examples"] == 512 and report["calibration_batches"] == 2
    assert report["quantized_bytes"] < 0.35 * report["float_bytes"]
    assert abs(report["top1_delta"]) < 0.05
    assert report["quantized_top1"] == pytest.approx(report["float_top1"] + report["top1_delta"])
    assert report["quantized_latency_ms"] > 0 and report["float_latency_ms"] > 0
    # The exported int8 model, deserialized, scores the same eval images exactly as the quantized model did.
    import jax

    from imagenet_jax.export.stablehlo import load
    from imagenet_jax.runs import load_run

    assert report["exported"] == [exported, exported + ".metadata.json"]
    assert json.loads(open(exported + ".metadata.json").read())["quantization"]["weight_dtype"] == "int8"
    model = load(exported)
    correct = scored = 0
    for batch in load_run(pruned_run).eval_batches(4, 128):
        keep = batch["mask"] & (batch["label"] >= 0)
        predictions = np.asarray(jax.device_get(model.call(batch["image"]))).argmax(-1)
        correct += int(np.sum((predictions == batch["label"]) & keep))
        scored += int(np.sum(keep))
    assert scored == 512 and correct / scored == pytest.approx(report["quantized_top1"], abs=1e-9)
