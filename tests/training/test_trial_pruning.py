"""A run as an Optuna trial: each evaluation reported to the study, the median pruner's verdict, never at the end."""

from __future__ import annotations

import optuna
import pytest

from imagenet_jax.config.files import load_config_file
from imagenet_jax.errors import ConfigError
from imagenet_jax.training.trial_pruning import TrialReporter, validate_config


@pytest.fixture
def storage(tmp_path) -> str:
    """A study whose 5 complete trials scored 0.9 at step 10: a later trial below that is pruned there."""
    url = f"sqlite:///{tmp_path}/study.db"
    study = optuna.create_study(study_name="s", storage=url, direction="maximize")
    distribution = optuna.distributions.FloatDistribution(0.01, 1.0)
    for _ in range(5):
        study.add_trial(optuna.trial.create_trial(params={"learning_rate": 0.1}, distributions={
            "learning_rate": distribution}, value=0.9, intermediate_values={10: 0.9}))
    return url


def _new_trial(url: str) -> int:
    return optuna.load_study(study_name="s", storage=url).ask().number


def test_a_trial_below_the_median_is_pruned_and_its_value_reported(storage):
    number = _new_trial(storage)
    reporter = TrialReporter(storage, "s", number, "median", "test/top1")
    assert reporter.update(10, {"test": {"top1": 0.5}})
    trial = optuna.load_study(study_name="s", storage=storage).trials[number]
    assert trial.intermediate_values == {10: 0.5}


def test_a_trial_above_the_median_goes_on_and_the_final_evaluation_never_prunes(storage):
    number = _new_trial(storage)
    assert not TrialReporter(storage, "s", number, "median", "test/top1").update(10, {"test": {"top1": 0.95}})
    last = _new_trial(storage)
    assert not TrialReporter(storage, "s", last, "median", "test/top1").update(10, {"test": {"top1": 0.5}},
                                                                               final=True)
    assert not TrialReporter(storage, "s", _new_trial(storage), "none", "test/top1").update(
        10, {"test": {"top1": 0.5}})


def test_an_unlogged_metric_and_an_incomplete_trial_config_are_refused(storage):
    reporter = TrialReporter(storage, "s", _new_trial(storage), "median", "minival/top1")
    with pytest.raises(ConfigError, match=r"config.tune.metric='minival/top1' is not logged by this run; the eval "
                                          r"metrics are: test/top1\."):
        reporter.update(10, {"test": {"top1": 0.5}})
    config = load_config_file("configs/default.py")
    config.tune.trial = 3
    with pytest.raises(ConfigError, match=r"config.tune.storage is empty"):
        validate_config(config)
    config.tune.storage, config.tune.study, config.tune.pruner = storage, "s", "medain"
    with pytest.raises(ConfigError, match=r"config.tune.pruner='medain' is not a registered pruner. Did you mean "
                                          r"median"):
        validate_config(config)
