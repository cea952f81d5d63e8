"""Shared fixtures: Fashion-MNIST prepared once per session through the project's own offline path."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION_MNIST_IDX_DIR = "/usr/share/datasets/fashion-mnist"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def fashion_mnist_dir(tmp_path_factory) -> str:
    """A TFDS data dir holding fashion_mnist, prepared from the local IDX files."""
    if not os.path.isdir(FASHION_MNIST_IDX_DIR):
        pytest.fail(f"{FASHION_MNIST_IDX_DIR} is missing: run `make test` (it installs dataset-fashion-mnist)")
    from imagenet_jax.data import pipeline

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    pipeline.load_dataset("fashion_mnist", data_dir)
    return data_dir


def run_main(workdir: str, *overrides: str, env: dict | None = None, timeout: int = 600,
             config: str = "configs/default.py") -> subprocess.CompletedProcess:
    """Runs `python -m imagenet_jax.main` in a subprocess and returns the completed process."""
    command = [sys.executable, "-m", "imagenet_jax.main", f"--config={config}", f"--workdir={workdir}", *overrides]
    full_env = {**os.environ, "PYTHONPATH": REPO, **(env or {})}
    return subprocess.run(command, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout)


def read_metrics(workdir: str) -> list[dict]:
    """The lines of DIR/metrics.jsonl as dicts."""
    with open(os.path.join(workdir, "metrics.jsonl")) as stream:
        return [json.loads(line) for line in stream if line.strip()]


def tiny_run_overrides(data_dir: str, steps: int = 12, batch_size: int = 64) -> list[str]:
    """Overrides making the default config a seconds-long run on a slice of Fashion-MNIST."""
    return [
        f"--config.data_dir={data_dir}",
        f"--config.num_train_steps={steps}",
        f"--config.batch_size={batch_size}",
        "--config.eval_split=test[:1000]",
        "--config.log_every_steps=2",
        "--config.shuffle_buffer_size=2048",
        "--config.warmup_epochs=0",
    ]
