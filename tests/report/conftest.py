"""A tiny real training run shared by the report tests (it writes its report at the end, as every run does)."""

from __future__ import annotations

import pytest

from tests.conftest import run_main, tiny_run_overrides


@pytest.fixture(scope="session")
def trained_workdir(fashion_mnist_dir, tmp_path_factory) -> str:
    """A 4-step run of configs/default.py as shipped (its per-class and calibration evaluators included) on a
    Fashion-MNIST slice, with its checkpoint and report."""
    workdir = str(tmp_path_factory.mktemp("report_run") / "run")
    process = run_main(workdir, *tiny_run_overrides(fashion_mnist_dir, steps=4), "--config.eval_every_steps=2",
                       "--config.write_report=True")
    assert process.returncode == 0, process.stderr[-3000:]
    return workdir
