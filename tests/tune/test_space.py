"""Search spaces: validated like configs (the key named), drawn through Optuna, turned into override lines."""

from __future__ import annotations

import optuna
import pytest

from imagenet_jax.config.files import load_config_file
from imagenet_jax.config.overrides import get
from imagenet_jax.errors import ConfigError
from imagenet_jax.tune import space


@pytest.fixture(scope="module")
def config():
    return load_config_file("configs/default.py")


def test_the_shipped_space_is_valid_and_every_key_reaches_the_training_config(config):
    loaded = space.load_space("configs/search/default.py", config)
    assert set(loaded) == {"learning_rate", "weight_decay", "label_smoothing", "schedule.warmup_epochs"}
    assert loaded["learning_rate"]["distribution"] == "log_uniform"
    assert space.grid(loaded)["learning_rate"] == [0.05, 0.1, 0.2, 0.4]


@pytest.mark.parametrize("entry, message", [
    ({"learning_rat": {"distribution": "uniform", "low": 0, "high": 1}}, r"space.learning_rat: 'learning_rat' is not"),
    ({"learning_rate": {"distribution": "normal", "low": 0, "high": 1}}, r"space.learning_rate must be a dict with"),
    ({"learning_rate": {"distribution": "uniform", "low": 0}}, r"space.learning_rate.high is required"),
    ({"learning_rate": {"distribution": "uniform", "low": 0, "high": 1, "q": 2}}, r"space.learning_rate.q: not an"),
    ({"learning_rate": {"distribution": "uniform", "low": 1, "high": 1}}, r"low=1 must be below high=1"),
    ({"learning_rate": {"distribution": "log_uniform", "low": 0.0, "high": 1}}, r"learning_rate.low=0.0 must be > 0"),
    ({"seed": {"distribution": "int", "low": 0.5, "high": 3}}, r"space.seed: low and high must be integers"),
    ({"loss": {"distribution": "categorical", "choices": "softmax_xent"}}, r"space.loss.choices must be a non-empty"),
    ({"label_smoothing": {"distribution": "uniform", "low": 0, "high": 0.2, "grid": (0.3,)}}, r"must lie within"),
    ({"schedule.warmup_epoch": {"distribution": "uniform", "low": 0, "high": 1}}, r"space.schedule.warmup_epoch:"),
])
def test_a_bad_space_names_the_key(config, entry, message):
    with pytest.raises(ConfigError, match=message):
        space.validate(entry, config)


def test_grid_needs_values_for_continuous_parameters_only(config):
    checked = space.validate({"seed": {"distribution": "int", "low": 0, "high": 2},
                              "loss": {"distribution": "categorical", "choices": ("softmax_xent", "sigmoid_xent")}},
                             config)
    assert space.grid(checked) == {"seed": [0, 1, 2], "loss": ["softmax_xent", "sigmoid_xent"]}
    with pytest.raises(ConfigError, match=r"space.learning_rate.grid: the grid sampler needs the values"):
        space.grid(space.validate({"learning_rate": {"distribution": "uniform", "low": 0.1, "high": 1}}, config))


def test_suggested_values_become_config_overrides_that_the_config_accepts(config):
    checked = space.validate({"learning_rate": {"distribution": "log_uniform", "low": 0.01, "high": 1.0},
                              "schedule.warmup_epochs": {"distribution": "int", "low": 0, "high": 3},
                              "loss": {"distribution": "categorical", "choices": ("softmax_xent", "sigmoid_xent")}},
                             config)
    trial = optuna.trial.FixedTrial({"learning_rate": 0.05, "schedule.warmup_epochs": 2, "loss": "sigmoid_xent"})
    values = space.suggest(trial, checked)
    assert values == {"learning_rate": 0.05, "schedule.warmup_epochs": 2, "loss": "sigmoid_xent"}
    assert space.overrides(values) == ["--config.learning_rate=0.05", "--config.schedule.warmup_epochs=2",
                                       "--config.loss=sigmoid_xent"]
    overridden = get("configs/default.py", space.overrides(values))  # the command-line spelling, as trials get it
    assert (overridden.learning_rate, overridden.schedule.warmup_epochs, overridden.loss) == (0.05, 2, "sigmoid_xent")
