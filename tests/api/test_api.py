"""imagenet_jax.train / load_run: training in-process with the CLI's resume semantics, and inspecting the run."""

from __future__ import annotations

import numpy as np
import pytest

import imagenet_jax
from imagenet_jax.errors import CheckpointError, ConfigError
from tests.conftest import tiny_run_overrides


def test_metrics_are_dicts_with_train_and_eval_lines(tiny_run):
    run = imagenet_jax.load_run(tiny_run)
    evals = run.metrics("test[:1000]")
    assert [row["step"] for row in evals] == [6, 12]
    assert [row["step"] for row in run.metrics("train")] == [2, 4, 6, 8, 10, 12]
    assert len(run.metrics()) == 8 and all(isinstance(row, dict) for row in run.metrics())
    assert run.steps() == [6, 12] and run.config.num_train_steps == 12


def test_best_checkpoint_restores_and_evaluates_to_the_logged_top1(tiny_run):
    run = imagenet_jax.load_run(tiny_run)
    best_step = run.metrics("test[:1000]")[-1]["best_step"]
    assert run.resolve_checkpoint("best") == best_step and run.resolve_checkpoint("latest") == 12
    logged = {row["step"]: row["top1"] for row in run.metrics("test[:1000]")}
    result = run.evaluate("best", batch_size=200)
    assert result["step"] == best_step and result["num_examples"] == 1000
    assert result["top1"] == pytest.approx(logged[best_step], abs=1e-9)
    assert run.evaluate(6, batch_size=200)["top1"] == pytest.approx(logged[6], abs=1e-9)
    restored = run.restore(6)
    assert restored.step == 6 and restored.meta["step"] == 6
    assert set(restored.state) >= {"params", "batch_stats", "opt_state"}


def test_model_logits_and_eval_batches(tiny_run):
    run = imagenet_jax.load_run(tiny_run)
    assert run.class_names[:2] == ("T-shirt/top", "Trouser") and run.num_classes == 10
    assert (run.image_size, run.channels) == (28, 1)
    batches = list(run.eval_batches(num_batches=2, batch_size=8))
    assert len(batches) == 2 and batches[0]["image"].shape == (8, 28, 28, 1) and batches[0]["image"].dtype == np.uint8
    variables = run.variables("latest")
    by_hand = run.model.apply(variables, (batches[0]["image"].astype(np.float32) - 72.94) / 90.02, train=False)
    np.testing.assert_allclose(run.logits(batches[0]["image"], "latest"), by_hand, atol=1e-5)


def test_one_process_of_a_job_reads_a_run_alone(tiny_run, monkeypatch):
    """In a multi-process job one process may read a run by itself (the end-of-run report, on process 0): a barrier
    there would wait for processes that never come, so restoring must enter none."""
    import jax
    from jax.experimental import multihost_utils
    from orbax.checkpoint._src.multihost import multihost

    barriers = []
    monkeypatch.setattr(jax, "process_count", lambda *args, **kwargs: 2)  # this process is one of two
    # Where every Orbax barrier ends up: JAX's device sync, or the distributed client's barrier.
    monkeypatch.setattr(multihost_utils, "sync_global_devices", barriers.append)
    monkeypatch.setattr(multihost, "get_barrier_sync_fn",
                        lambda **kwargs: lambda **barrier: barriers.append(barrier["key"]))
    run = imagenet_jax.load_run(tiny_run)
    restored = run.restore("latest")
    assert restored.step == 12 and run.variables("best")["params"]
    assert barriers == []


def test_train_again_resumes_and_refuses_a_changed_trajectory(tiny_run, fashion_mnist_dir):
    lines = len(imagenet_jax.load_run(tiny_run).metrics())
    overrides = tiny_run_overrides(fashion_mnist_dir) + ["--config.eval_every_steps=6"]
    assert imagenet_jax.train("configs/default.py", tiny_run, overrides) == {}  # resumed at the end: nothing to do
    assert len(imagenet_jax.load_run(tiny_run).metrics()) == lines
    config = imagenet_jax.config.get("configs/default.py", overrides)
    with pytest.raises(ConfigError, match="batch_size"):
        imagenet_jax.train(config, tiny_run, {"batch_size": 32})


def test_missing_run_checkpoint_and_pandas_are_explained(tiny_run, tmp_path):
    with pytest.raises(CheckpointError, match="holds no run"):
        imagenet_jax.load_run(tmp_path)
    run = imagenet_jax.load_run(tiny_run)
    with pytest.raises(CheckpointError, match=r"no checkpoint at step 7; it has \[6, 12\]"):
        run.restore(7)
    with pytest.raises(ConfigError, match="best, latest or a step"):
        run.restore("newest")
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="needs pandas"):
            run.metrics_frame()
    else:
        assert list(run.metrics_frame("train")["step"]) == [2, 4, 6, 8, 10, 12]
