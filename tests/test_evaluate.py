"""A tiny default run with per_class and calibration eval sets, then `python -m imagenet_jax.evaluate` on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, read_metrics, run_main, tiny_run_overrides

CONFIG = '''
import ml_collections
from imagenet_jax.config.files import load_config_file


def get_config():
    config = load_config_file("configs/default.py")
    config.evals = ml_collections.ConfigDict({"test_per_class": {"type": "per_class"},
                                              "test_calibration": {"type": "calibration", "bins": 10},
                                              "minival": {"type": "classification", "holdout": 300}})
    return config
'''


@pytest.mark.slow
def test_run_with_evals_then_evaluate_reproduces_the_logged_numbers(tmp_path, fashion_mnist_dir):
    config_file = tmp_path / "config.py"
    config_file.write_text(CONFIG)
    workdir = str(tmp_path / "run")
    result = run_main(workdir, *tiny_run_overrides(fashion_mnist_dir, steps=8), "--config.eval_every_steps=4",
                      "--config.best_metric=test[:1000]/loss", config=str(config_file))
    assert result.returncode == 0, result.stderr[-3000:]
    evals = [line for line in read_metrics(workdir) if line["split"] != "train"]
    assert {line["split"] for line in evals} == {"test[:1000]", "test_per_class", "test_calibration", "minival"}
    main = [line for line in evals if line["split"] == "test[:1000]"]
    assert [line["step"] for line in main] == [4, 8]
    assert main[-1]["best_value"] == min(line["loss"] for line in main)  # best_metric is the loss: minimized
    best_step = min(main, key=lambda line: line["loss"])["step"]
    assert main[-1]["best_step"] == best_step
    assert all(line["num_examples"] == 300 for line in evals if line["split"] == "minival")
    per_class = json.loads((tmp_path / "run" / "eval" / "test_per_class" / "8" / "per_class.json").read_text())
    assert len(per_class["classes"]) == 10 and sum(per_class["support"]) == 1000
    assert sum(map(sum, per_class["confusion_matrix"])) == 1000
    assert (tmp_path / "run" / "eval" / "test_calibration" / "8" / "calibration.json").exists()

    command = [sys.executable, "-m", "imagenet_jax.evaluate", f"--workdir={workdir}", "--checkpoint=best",
               "--evals=test[:1000],test_per_class"]
    evaluated = subprocess.run(command, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, capture_output=True,
                               text=True, timeout=600)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "macro_f1" in evaluated.stdout and "test_per_class" in evaluated.stdout
    lines = [json.loads(line) for line in (tmp_path / "run" / "eval" / "evaluate.jsonl").read_text().splitlines()]
    assert [line["split"] for line in lines] == ["test[:1000]", "test_per_class"]
    assert all(line["source"] == "evaluate" and line["step"] == best_step for line in lines)
    logged = {line["split"]: line for line in evals if line["step"] == best_step}
    assert lines[0]["top1"] == pytest.approx(logged["test[:1000]"]["top1"])
    assert lines[0]["loss"] == pytest.approx(logged["test[:1000]"]["loss"], rel=1e-5)
    assert lines[1]["macro_f1"] == pytest.approx(logged["test_per_class"]["macro_f1"])


@pytest.mark.slow
def test_evaluate_adds_dense_and_ten_crop_sets_from_the_command_line_to_a_vgg_run(tmp_path, fashion_mnist_dir):
    workdir = str(tmp_path / "vgg")
    result = run_main(workdir, *tiny_run_overrides(fashion_mnist_dir, steps=4),
                      config="configs/ablations/fashion_mnist.py:vgg_bn")
    assert result.returncode == 0, result.stderr[-3000:]

    def evaluate(*flags: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "imagenet_jax.evaluate", f"--workdir={workdir}", "--checkpoint=latest",
                   *flags]
        return subprocess.run(command, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, capture_output=True,
                              text=True, timeout=600)

    evaluated = evaluate("--eval=dense=multicrop,mode=dense,scales=(28,40)",
                         "--eval=tencrop=multicrop,mode=ten_crop,resize=32", "--evals=dense,tencrop")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    lines = {line["split"]: line for line in map(json.loads, open(os.path.join(workdir, "eval", "evaluate.jsonl")))}
    assert set(lines) == {"dense", "tencrop"}
    assert all(line["num_examples"] == 1000 and 0.0 <= line["top1"] <= line["top5"] <= 1.0 for line in lines.values())
    refused = evaluate("--eval=dense=multicrop,mode=sliding")
    assert refused.returncode == 2 and "config.evals.dense.mode='sliding'" in refused.stderr
