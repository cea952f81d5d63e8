"""End-to-end runs of `python -m imagenet_jax.main` on real Fashion-MNIST: learning, sharding, resume."""

from __future__ import annotations

import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, read_metrics, run_main, tiny_run_overrides

TIMING_KEYS = {"steps_per_second", "images_per_second", "eta_seconds", "elapsed_seconds",
               "data_wait_fraction", "model_tflops_per_second", "mfu"}  # wall-clock dependent


def _trajectory(workdir: str) -> list[dict]:
    """metrics.jsonl without wall-clock fields: what must be identical between equivalent runs."""
    return [{k: v for k, v in line.items() if k not in TIMING_KEYS} for line in read_metrics(workdir)]


def test_short_run_learns_and_writes_the_contract(tmp_path, fashion_mnist_dir):
    workdir = str(tmp_path / "run")
    result = run_main(workdir, *tiny_run_overrides(fashion_mnist_dir, steps=40), "--config.eval_every_steps=20")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = read_metrics(workdir)
    train = [line for line in lines if line["split"] == "train"]
    evals = [line for line in lines if line["split"] == "test[:1000]"]
    assert [line["step"] for line in evals] == [20, 40]
    assert all(line["num_examples"] == 1000 for line in evals)
    assert all({"loss", "top1", "top5"} <= set(line) for line in lines)
    assert train[-1]["loss"] < 0.6 * train[0]["loss"]
    assert evals[-1]["top1"] > 0.6  # chance is 0.1
    assert evals[-1]["best_top1"] == max(line["top1"] for line in evals)
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["20", "40"]
    assert os.path.exists(os.path.join(workdir, "config.json"))
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(workdir))


def test_eight_devices_give_the_same_losses_as_one(tmp_path, fashion_mnist_dir):
    overrides = [*tiny_run_overrides(fashion_mnist_dir, steps=6), "--config.log_every_steps=1"]
    runs = {}
    for devices in (1, 8):
        workdir = str(tmp_path / f"devices{devices}")
        env = {"XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
        result = run_main(workdir, *overrides, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"{devices} local / {devices} global devices" in result.stderr
        runs[devices] = _trajectory(workdir)
    assert len(runs[1]) == len(runs[8]) > 3
    first_one, first_eight = runs[1][0], runs[8][0]
    assert first_one["step"] == first_eight["step"] == 1
    # Step 1 sees the same parameters and batch: only the order of float32 reductions differs.
    assert first_eight["loss"] == pytest.approx(first_one["loss"], rel=1e-5)
    assert first_eight["grad_norm"] == pytest.approx(first_one["grad_norm"], rel=1e-4)
    for one, eight in zip(runs[1], runs[8]):
        assert one["step"] == eight["step"] and one["split"] == eight["split"]
        # Later steps amplify those rounding differences (LR 0.1 on batches of 64): ~1e-5 at step 4, ~2e-4 at 6.
        assert eight["loss"] == pytest.approx(one["loss"], rel=1e-3), one["step"]
        for key in ("top1", "top5"):  # one near-tie example (1/64) may flip with the summation order
            assert eight[key] == pytest.approx(one[key], abs=0.016), (one["step"], key)


def _wait_for(predicate, timeout: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert process.poll() is None, process.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _start(workdir: str, overrides: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "imagenet_jax.main", "--config=configs/default.py", f"--workdir={workdir}",
               *overrides]
    return subprocess.Popen(command, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(3))
def test_sigkill_at_a_random_step_then_rerun_ends_with_identical_metrics(tmp_path, fashion_mnist_dir, trial,
                                                                         uninterrupted_40_steps):
    reference, overrides = uninterrupted_40_steps
    kill_after = random.Random(trial).randint(3, 20)  # a logged step; checkpoints are every 4 steps
    killed = str(tmp_path / "killed")
    process = _start(killed, overrides)
    _wait_for(lambda: os.path.exists(os.path.join(killed, "metrics.jsonl"))
              and read_metrics(killed)[-1]["step"] >= kill_after, 300, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert read_metrics(killed)[-1]["step"] < 40, "killed too late to test anything"
    result = run_main(killed, *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _trajectory(killed) == _trajectory(reference)


@pytest.fixture(scope="module")
def uninterrupted_40_steps(tmp_path_factory, fashion_mnist_dir):
    # 40 steps, killed by step ~20: 20 steps of margin so the kill cannot land after the last step.
    overrides = [*tiny_run_overrides(fashion_mnist_dir, steps=40), "--config.checkpoint_every_steps=4",
                 "--config.eval_every_steps=20"]
    reference = str(tmp_path_factory.mktemp("uninterrupted"))
    result = run_main(reference, *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    return reference, overrides


@pytest.mark.slow
def test_sigterm_saves_exits_75_and_resumes_exactly(tmp_path, fashion_mnist_dir):
    overrides = [*tiny_run_overrides(fashion_mnist_dir, steps=30), "--config.checkpoint_every_steps=1000",
                 "--config.eval_every_steps=15"]
    reference = str(tmp_path / "uninterrupted")
    assert run_main(reference, *overrides).returncode == 0

    preempted = str(tmp_path / "preempted")
    process = _start(preempted, overrides)
    _wait_for(lambda: os.path.exists(os.path.join(preempted, "metrics.jsonl"))
              and len(read_metrics(preempted)) >= 3, 300, process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 75
    saved = sorted(int(name) for name in os.listdir(os.path.join(preempted, "checkpoints")) if name.isdigit())
    assert saved and saved[-1] < 30
    result = run_main(preempted, *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _trajectory(preempted) == _trajectory(reference)


def test_every_file_of_the_newest_checkpoint_truncated_falls_back_to_the_previous_one_exactly(tmp_path,
                                                                                           fashion_mnist_dir):
    overrides = [*tiny_run_overrides(fashion_mnist_dir, steps=8), "--config.checkpoint_every_steps=4",
                 "--config.eval_every_steps=8"]
    workdir = str(tmp_path / "run")
    assert run_main(workdir, *overrides).returncode == 0
    reference = _trajectory(workdir)
    for root, _, files in os.walk(os.path.join(workdir, "checkpoints", "8")):  # as a crash of the storage leaves it
        for name in files:
            path = os.path.join(root, name)
            os.truncate(path, os.path.getsize(path) // 3)
    result = run_main(workdir, *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if "damaged checkpoint" in line]
    assert len(warnings) == 1 and "(step 8: " in warnings[0], warnings
    assert "checkpoints/8/metrics/metrics: unparsable" in warnings[0]  # the file Orbax's manager parses first
    assert "resumed from step 4 of 8" in result.stderr
    assert _trajectory(workdir) == reference
    assert os.path.isdir(os.path.join(workdir, "checkpoints_unreadable", "8")), "the bad checkpoint is kept aside"


def test_resuming_with_a_different_batch_size_is_refused(tmp_path, fashion_mnist_dir):
    workdir = str(tmp_path / "run")
    overrides = tiny_run_overrides(fashion_mnist_dir, steps=4)
    assert run_main(workdir, *overrides).returncode == 0
    result = run_main(workdir, *overrides, "--config.batch_size=32", "--config.num_train_steps=6")
    assert result.returncode == 2
    assert "batch_size (64 -> 32)" in result.stderr and "num_train_steps (4 -> 6)" in result.stderr
    assert "allow_config_change" in result.stderr
    allowed = run_main(workdir, *overrides, "--config.batch_size=32", "--config.num_train_steps=6",
                       "--config.allow_config_change=True")
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    shutil.rmtree(workdir)


def test_nonfinite_loss_stops_with_the_step_named_and_keeps_the_last_good_checkpoint(tmp_path, fashion_mnist_dir):
    workdir = str(tmp_path / "run")
    overrides = [*tiny_run_overrides(fashion_mnist_dir, steps=12), "--config.checkpoint_every_steps=2",
                 "--config.learning_rate=1e12", "--config.lr_reference_batch_size=0"]
    result = run_main(workdir, *overrides)
    assert result.returncode == 2, result.stderr[-3000:]
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("error: step ") and "is not finite" in message and "nonfinite_policy=skip" in message
    bad_step = int(message.split()[2].rstrip(":"))
    saved = [int(name) for name in os.listdir(os.path.join(workdir, "checkpoints")) if name.isdigit()]
    assert all(step < bad_step for step in saved)

    skipped = str(tmp_path / "skip")
    result = run_main(skipped, *overrides, "--config.nonfinite_policy=skip")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the update was skipped" in result.stderr
    train = [line for line in read_metrics(skipped) if line["split"] == "train"]
    assert sum(line["skipped_steps"] for line in train) > 0
    values = [value for line in read_metrics(skipped) for value in line.values() if isinstance(value, float)]
    assert all(math.isfinite(value) for value in values), "a NaN or Inf was written to metrics.jsonl"


def test_unwritable_workdir_and_too_little_disk_are_reported_before_training(tmp_path, fashion_mnist_dir):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    result = run_main(str(not_a_directory / "work"), *tiny_run_overrides(fashion_mnist_dir), timeout=120)
    assert result.returncode == 2 and "is not writable" in result.stderr and "Traceback" not in result.stderr
    result = run_main(str(tmp_path / "work"), *tiny_run_overrides(fashion_mnist_dir), "--config.min_free_disk_gb=1e9",
                      timeout=120)
    assert result.returncode == 2 and "GiB free in workdir" in result.stderr and "Traceback" not in result.stderr
    assert not os.path.exists(os.path.join(tmp_path, "work", "checkpoints", "1"))
