"""Reduce-on-plateau learning rate (train/optim/plateau.py): multipliers after a sequence of evaluations, the
update they scale, a checkpoint round trip that resumes exactly, validation, and the logged LR of a tiny run."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from optax.tree_utils import tree_get

from imagenet_jax.config import get_base_config
from imagenet_jax.errors import ConfigError
from imagenet_jax.experiment.validate import validate_config
from imagenet_jax.training import optim
from tests.conftest import read_metrics, run_main, tiny_run_overrides

LR = 0.5


def _config(metric="test/top1", mode="auto", factor=0.1, patience=2, min_delta=0.01, max_reductions=0,
            accumulation=1):
    config = get_base_config()
    config.optimizer = ml_collections.ConfigDict({"name": "sgd", "kwargs": {"momentum": 0.0, "nesterov": False}})
    config.schedule = ml_collections.ConfigDict({"name": "constant", "warmup_epochs": 0.0, "kwargs": {}})
    config.learning_rate, config.lr_reference_batch_size, config.weight_decay = LR, 0, 0.0
    config.grad_accumulation_steps = accumulation
    config.lr_plateau = ml_collections.ConfigDict({"metric": metric, "mode": mode, "factor": factor,
                                                   "patience": patience, "min_delta": min_delta,
                                                   "max_reductions": max_reductions})
    validate_config(config)
    return config


def _multipliers(config, values, opt_state=None):
    """(multiplier after each evaluation, final opt_state) for eval metric `values` of config.lr_plateau.metric."""
    optimizer, _ = optim.create(config, total_steps=100, steps_per_epoch=10)
    opt_state = optimizer.init({"w": jnp.zeros(2)}) if opt_state is None else opt_state
    plateau = optim.LrPlateau.from_config(config, "test")
    split, _, key = plateau.metric.rpartition("/")
    multipliers = []
    for value in values:
        opt_state = plateau.update(opt_state, {split: {"top5": 1.0, key: value}})
        multipliers.append(float(optim.lr_multiplier(opt_state)))
    return multipliers, opt_state


def test_plateau_divides_after_patience_evaluations_without_an_improvement_beyond_min_delta():
    # 0.5 best; 0.505 within min_delta (1); 0.509 (2): x0.1; 0.6 best; 0.6, 0.55 (2): x0.1; 0.7 best; 0.69 (1).
    multipliers, opt_state = _multipliers(_config(), [0.5, 0.505, 0.509, 0.6, 0.6, 0.55, 0.7, 0.69])
    np.testing.assert_allclose(multipliers, [1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01], rtol=1e-6)
    counters = {field: float(tree_get(opt_state, "lr_plateau_" + field))
                for field in ("reductions", "best", "evaluations_without_improvement")}
    assert counters == {"reductions": 2, "best": pytest.approx(0.7), "evaluations_without_improvement": 1}


def test_plateau_minimizes_a_loss_and_stops_after_max_reductions():
    config = _config(metric="minival/loss", patience=1, min_delta=0.0, max_reductions=2, factor=0.5)
    multipliers, _ = _multipliers(config, [2.0, 2.0, 1.0, 1.5, 1.5, 1.5, 0.5])
    np.testing.assert_allclose(multipliers, [1, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25])


def test_plateau_multiplier_scales_the_update_and_the_logged_rate_inside_gradient_accumulation():
    config = _config(patience=1, accumulation=2)
    optimizer, schedule = optim.create(config, total_steps=100, steps_per_epoch=10)
    params, grads = {"w": jnp.ones(2)}, {"w": jnp.full(2, 2.0)}
    opt_state = optimizer.init(params)
    for value in (0.5, 0.4):  # the second evaluation does not improve: x0.1
        opt_state = optim.LrPlateau.from_config(config, "test").update(opt_state, {"test": {"top1": value}})
    assert float(schedule(0) * optim.lr_multiplier(opt_state)) == pytest.approx(LR * 0.1)
    for _ in range(2):  # two micro-batches make one update
        updates, opt_state = optimizer.update(grads, opt_state, params)
    np.testing.assert_allclose(updates["w"], -LR * 0.1 * 2.0, rtol=1e-6)
    assert float(optim.lr_multiplier(optimizer.init(params))) == 1.0  # a fresh state starts at 1
    no_plateau, _ = optim.create(_config(metric=""), total_steps=100, steps_per_epoch=10)
    assert optim.lr_multiplier(no_plateau.init(params)) == 1.0  # off: no state, the logged rate is the schedule's


def test_plateau_state_resumes_exactly_from_a_checkpoint(tmp_path):
    from imagenet_jax.training.checkpointing import Checkpointer

    config = _config(patience=2)
    values = [0.5, 0.4, 0.45, 0.3, 0.2, 0.6, 0.55, 0.5]
    uninterrupted, _ = _multipliers(config, values)
    first, opt_state = _multipliers(config, values[:4])  # one reduction, then one evaluation without improvement
    checkpointer = Checkpointer(tmp_path / "checkpoints", keep=1)
    checkpointer.save(4, {"opt_state": opt_state}, {})
    checkpointer.close()
    abstract = jax.eval_shape(lambda: {"opt_state": opt_state})
    step, restored, _ = Checkpointer(tmp_path / "checkpoints", keep=1).restore_newest(abstract)
    assert step == 4 and int(tree_get(restored["opt_state"], "lr_plateau_evaluations_without_improvement")) == 1
    resumed, _ = _multipliers(config, values[4:], restored["opt_state"])
    assert first + resumed == uninterrupted
    np.testing.assert_allclose(uninterrupted, [1, 1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001], rtol=1e-6)


@pytest.mark.parametrize("key, value, message", [
    ("metric", "test/", "<split>/<key>"),
    ("mode", "maximize", "config.lr_plateau.mode='maximize'"),
    ("factor", 1.0, "config.lr_plateau.factor=1.0"),
    ("patience", 0, "config.lr_plateau.patience=0"),
    ("min_delta", -0.1, "config.lr_plateau.min_delta=-0.1"),
    ("max_reductions", -1, "config.lr_plateau.max_reductions=-1"),
])
def test_config_validation_names_a_bad_lr_plateau_key(key, value, message):
    config = get_base_config()
    config.lr_plateau[key] = value
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        validate_config(config)


def test_plateau_metric_without_a_split_reads_the_main_eval_set():
    assert optim.LrPlateau.from_config(_config(metric="top1"), "validation").metric == "validation/top1"
    assert optim.LrPlateau.from_config(_config(metric="loss"), "test").mode == "min"
    assert optim.LrPlateau.from_config(_config(metric=""), "test") is None


def test_plateau_names_the_logged_splits_for_an_unknown_metric():
    with pytest.raises(ConfigError, match=r"eval splits are test, test_ema"):
        optim.LrPlateau.from_config(_config(metric="tset/top1"), "test").check_splits(["test", "test_ema"])


@pytest.mark.slow  # an end-to-end run: about 25 s on a quiet 2-core machine
def test_tiny_run_logs_the_reduced_learning_rate_after_a_plateau(tmp_path, fashion_mnist_dir):
    workdir = str(tmp_path / "run")
    result = run_main(workdir, *tiny_run_overrides(fashion_mnist_dir, steps=12), "--config.eval_every_steps=3",
                      "--config.schedule.name=constant", "--config.lr_reference_batch_size=0",
                      "--config.learning_rate=0.1", "--config.lr_plateau.metric=top1",
                      "--config.lr_plateau.patience=1", "--config.lr_plateau.max_reductions=2",
                      "--config.lr_plateau.min_delta=1.0")  # top-1 never improves by 1.0: reduce at every eval
    assert result.returncode == 0, result.stderr[-3000:]
    # Evaluations at 3 (the first: best), 6 (x0.1), 9 (x0.01), 12 (max_reductions reached). A train line averages
    # its two steps; step 9 trains before its evaluation reduces the rate, so line 10 is (0.01 + 0.001) / 2.
    rates = {line["step"]: line["learning_rate"] for line in read_metrics(workdir) if "learning_rate" in line}
    expected = {2: 0.1, 4: 0.1, 6: 0.1, 8: 0.01, 10: 0.0055, 12: 0.001}
    assert rates.keys() == expected.keys()
    for step, rate in expected.items():
        assert rates[step] == pytest.approx(rate, rel=1e-5), (step, rates)
    assert "test[:1000]/top1 has not improved for 1 evaluations: learning rate multiplier now 0.01 (reduction 2)" \
        in result.stderr
