"""A tiny real training run shared by the report tests (it writes its report at the end, as every run does)."""

from __future__ import annotations

import pytest

from tests.conftest import REPO, run_main, tiny_run_overrides

EVALS_CONFIG = """
import ml_collections
from imagenet_jax.config.files import load_config_file


def get_config():
    config = load_config_file("{repo}/configs/default.py")
    config.evals = ml_collections.ConfigDict({{"per_class": {{"type": "per_class"}},
                                              "calibration": {{"type": "calibration"}}}})
    return config
"""


@pytest.fixture(scope="session")
def trained_workdir(fashion_mnist_dir, tmp_path_factory) -> str:
    """A 4-step default-config run on a Fashion-MNIST slice, with its checkpoint and report."""
    folder = tmp_path_factory.mktemp("report_run")
    config_file = folder / "config_with_evals.py"  # the default config plus the evaluators the report shows
    config_file.write_text(EVALS_CONFIG.format(repo=REPO))
    workdir = str(folder / "run")
    process = run_main(workdir, *tiny_run_overrides(fashion_mnist_dir, steps=4), "--config.eval_every_steps=2",
                       "--config.write_report=True", config=str(config_file))
    assert process.returncode == 0, process.stderr[-3000:]
    return workdir
