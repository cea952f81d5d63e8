"""A run whose --workdir is a bucket (gs://) on a real GCS server (the emulator): every file lands there, nothing
is written locally, and preemption, SIGKILL-resume and the fallback from a damaged checkpoint work as on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, run_main, tiny_run_overrides

TIMING_KEYS = {"steps_per_second", "images_per_second", "eta_seconds", "elapsed_seconds",
               "data_wait_fraction", "model_tflops_per_second", "mfu"}  # wall-clock dependent
STEPS = 8
# The runs that get killed are long enough that the signal cannot arrive after the last step: an 8-step run of
# the tiny model can finish between two polls of the bucket (CI once saw it).
KILLED_RUN_STEPS = 40


def _overrides(data_dir: str, steps: int = STEPS) -> list[str]:
    return [*tiny_run_overrides(data_dir, steps=steps), "--config.checkpoint_every_steps=4",
            f"--config.eval_every_steps={steps}"]


def _metrics(fs, run: str) -> list[dict]:
    try:
        text = fs.cat_file(f"bucket/{run}/metrics.jsonl").decode()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _trajectory(fs, run: str) -> list[dict]:
    return [{k: v for k, v in line.items() if k not in TIMING_KEYS} for line in _metrics(fs, run)]


def _steps(fs, directory: str) -> list[int]:
    fs.invalidate_cache()
    if not fs.exists(directory):
        return []
    return sorted(int(path.rstrip("/").rsplit("/", 1)[-1]) for path in fs.ls(directory)
                  if path.rstrip("/").rsplit("/", 1)[-1].isdigit())


@pytest.fixture(scope="module")
def reference_run(gcs_emulator, fashion_mnist_dir, tmp_path_factory):
    """An uninterrupted 8-step run into gs://bucket/reference, started in an empty working directory."""
    cwd = str(tmp_path_factory.mktemp("cwd"))
    result = run_main("gs://bucket/reference", *_overrides(fashion_mnist_dir), env=gcs_emulator.env,
                      config=os.path.join(REPO, "configs/default.py"), cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return gcs_emulator.filesystem(), cwd


def test_a_run_in_a_bucket_writes_every_file_there_and_nothing_locally(reference_run):
    fs, cwd = reference_run
    names = [path.removeprefix("bucket/reference/") for path in fs.find("bucket/reference")]
    assert "metrics.jsonl" in names and "config.json" in names
    assert json.loads(fs.cat_file("bucket/reference/config.json"))["num_train_steps"] == STEPS
    assert _steps(fs, "bucket/reference/checkpoints") == [4, 8]
    assert "checkpoints/8/state/manifest.ocdbt" in names and "checkpoints/8/meta/metadata" in names
    lines = _metrics(fs, "reference")
    assert [line["step"] for line in lines if line["split"] == "train"] == [2, 4, 6, 8]
    assert [line["step"] for line in lines if line["split"] != "train"] == [STEPS]
    events = [name for name in names if name.startswith("events.out.tfevents")]
    assert len(events) == 1, names
    # Mirrored after the final flush: the last scalars written are in the bucket's copy.
    assert b"eval_test[:1000]/top1" in fs.cat_file(f"bucket/reference/{events[0]}")
    assert os.listdir(cwd) == [], "a gs:// workdir must not create local directories"


def test_a_damaged_newest_checkpoint_in_the_bucket_falls_back_to_the_previous_one(reference_run, fashion_mnist_dir,
                                                                                 gcs_emulator):
    fs, cwd = reference_run
    fs.copy("bucket/reference", "bucket/damaged", recursive=True)
    manifest = "bucket/damaged/checkpoints/8/state/manifest.ocdbt"
    fs.pipe_file(manifest, fs.cat_file(manifest)[:20])  # truncated
    result = run_main("gs://bucket/damaged", *_overrides(fashion_mnist_dir), env=gcs_emulator.env, cwd=cwd,
                      config=os.path.join(REPO, "configs/default.py"))
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stderr.splitlines() if "damaged checkpoint" in line]
    assert len(warnings) == 1 and "restored step 4 instead" in warnings[0], warnings
    assert "damaged/checkpoints/8/state" in warnings[0] and "manifest.ocdbt" in warnings[0]
    assert _trajectory(fs, "damaged") == _trajectory(fs, "reference")
    assert _steps(fs, "bucket/damaged/checkpoints_unreadable") == [8], "the damaged checkpoint is kept aside"
    assert _steps(fs, "bucket/damaged/checkpoints") == [4, 8]


def test_a_bucket_that_does_not_exist_is_reported_in_one_line_before_training(gcs_emulator, fashion_mnist_dir):
    result = run_main("gs://no-such-bucket/run", *_overrides(fashion_mnist_dir), env=gcs_emulator.env, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: workdir gs://no-such-bucket/run is not writable (the bucket does not exist)")
    assert "Traceback" not in result.stderr and " parameters; " not in result.stderr  # stopped before the model


def _start(workdir: str, overrides: list[str], env: dict) -> subprocess.Popen:
    command = [sys.executable, "-m", "imagenet_jax.main", "--config=configs/default.py", f"--workdir={workdir}",
               *overrides]
    return subprocess.Popen(command, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for_step(fs, run: str, step: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while not any(line["step"] >= step for line in _metrics(fs, run)):
        assert process.poll() is None, process.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def long_reference_run(gcs_emulator, fashion_mnist_dir):
    """An uninterrupted KILLED_RUN_STEPS-step run into gs://bucket/long_reference."""
    result = run_main("gs://bucket/long_reference", *_overrides(fashion_mnist_dir, KILLED_RUN_STEPS),
                      env=gcs_emulator.env)
    assert result.returncode == 0, result.stderr[-3000:]
    return gcs_emulator.filesystem()


@pytest.mark.slow
def test_sigterm_saves_to_the_bucket_and_exits_75(fashion_mnist_dir, gcs_emulator):
    fs = gcs_emulator.filesystem()
    process = _start("gs://bucket/preempted", _overrides(fashion_mnist_dir, KILLED_RUN_STEPS), gcs_emulator.env)
    _wait_for_step(fs, "preempted", 2, process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 75, process.stderr.read()[-3000:]
    saved = _steps(fs, "bucket/preempted/checkpoints")
    assert saved and 2 <= saved[-1] < KILLED_RUN_STEPS
    assert _metrics(fs, "preempted")[-1]["step"] <= saved[-1]


@pytest.mark.slow
def test_sigkill_then_rerun_in_the_bucket_gives_identical_metrics(long_reference_run, fashion_mnist_dir,
                                                                   gcs_emulator):
    fs = long_reference_run
    overrides = _overrides(fashion_mnist_dir, KILLED_RUN_STEPS)
    process = _start("gs://bucket/killed", overrides, gcs_emulator.env)
    _wait_for_step(fs, "killed", 6, process)  # past the checkpoint at step 4
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert _metrics(fs, "killed")[-1]["step"] < KILLED_RUN_STEPS, "killed too late to test anything"
    result = run_main("gs://bucket/killed", *overrides, env=gcs_emulator.env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _trajectory(fs, "killed") == _trajectory(fs, "long_reference")
