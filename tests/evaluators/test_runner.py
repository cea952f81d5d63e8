"""config.evals validation (messages name the key), the holdout option, and best-checkpoint tracking."""

from __future__ import annotations

import ml_collections
import pytest

from imagenet_jax import evaluators
from imagenet_jax.config.base import get_base_config
from imagenet_jax.errors import ConfigError


def _config(evals: dict, **overrides) -> ml_collections.ConfigDict:
    config = get_base_config()
    config.evals = ml_collections.ConfigDict(evals)
    for key, value in overrides.items():
        config[key] = value
    return config


def test_every_registered_evaluator_is_found_and_accepts_its_own_defaults():
    # Discovered from the package's modules: a new evaluator needs no list to be edited here.
    assert "classification" in evaluators.names() and len(evaluators.names()) >= 6
    for name in evaluators.names():
        cls = evaluators.get(name)
        assert issubclass(cls, evaluators.Evaluator) and cls.type_name == name
        cls.validate("s", dict(cls.OPTIONS))
        evaluators.validate(_config({"s": {"type": name}}))


@pytest.mark.parametrize("evals, key", [
    ({"a": {"type": "per_klass"}}, r"config.evals.a.type='per_klass'.*Did you mean per_class"),
    ({"a": {"dataset": "x"}}, r"config.evals.a must be a dict with a \"type\""),
    ({"a": {"type": "classification", "holdout": -1}}, r"config.evals.a.holdout"),
    ({"a": {"type": "classification", "holdout": 5, "split": "test"}}, r"config.evals.a.holdout"),
    ({"a": {"type": "classification", "top_k": 3}}, r"config.evals.a.top_k"),
    ({"a": {"type": "classification", "dataset": "imagenet_v3"}}, r"config.evals.a.dataset"),
    ({"a": {"type": "adversarial", "attack": "cw"}}, r"config.evals.a.attack"),
    ({"a": {"type": "adversarial", "steps": 0}}, r"config.evals.a.steps"),
    ({"a": {"type": "corruptions", "corruptions": ("spatter",)}}, r"config.evals.a.corruptions"),
    ({"a": {"type": "corruptions", "severities": (6,)}}, r"config.evals.a.severities"),
    ({"a": {"type": "corruptions", "alexnet_normalized": "yes"}}, r"config.evals.a.alexnet_normalized"),
])
def test_malformed_entries_are_refused_naming_the_key(evals, key):
    with pytest.raises(ConfigError, match=key):
        evaluators.validate(_config(evals))


def test_holdouts_of_two_sets_must_agree():
    evaluators.validate(_config({"minival": {"type": "classification", "holdout": 100},
                                 "minival_pc": {"type": "per_class", "holdout": 100}}))
    with pytest.raises(ConfigError, match="holdout"):
        evaluators.validate(_config({"minival": {"type": "classification", "holdout": 100},
                                     "minival_pc": {"type": "per_class", "holdout": 50}}))


@pytest.mark.parametrize("flag, expected", [
    ("minival=classification,holdout=10000", ("minival", {"type": "classification", "holdout": 10000})),
    ("v2=classification,dataset=imagenet_v2,split=test",
     ("v2", {"type": "classification", "dataset": "imagenet_v2", "split": "test"})),
    ("r=per_class,dataset=folder:/data/r,split=val",
     ("r", {"type": "per_class", "dataset": "folder:/data/r", "split": "val"})),
    ("first7=classification,split=validation[:7]", ("first7", {"type": "classification", "split": "validation[:7]"})),
    ("c=corruptions,severities=(1,3),corruptions=('fog', 'contrast')",
     ("c", {"type": "corruptions", "severities": (1, 3), "corruptions": ("fog", "contrast")})),
    ("adv=adversarial,eps=2.0,random_start=False", ("adv", {"type": "adversarial", "eps": 2.0, "random_start": False})),
])
def test_eval_flags_parse_into_config_evals_entries(flag, expected):
    assert evaluators.parse_eval_flag(flag) == expected


def test_eval_flags_add_to_a_locked_config_without_touching_it():
    config = _config({"minival": {"type": "classification", "holdout": 10}})
    config.lock()
    added = evaluators.with_eval_flags(config, ["pc=per_class", "minival=classification,holdout=20"])
    assert set(added.evals) == {"minival", "pc"} and added.evals.minival.holdout == 20
    assert set(config.evals) == {"minival"} and config.evals.minival.holdout == 10
    assert evaluators.with_eval_flags(config, []) is config
    with pytest.raises(ConfigError, match="NAME=TYPE"):
        evaluators.parse_eval_flag("per_class")


def test_holdout_examples_reads_the_eval_sets_holdout():
    assert evaluators.holdout_examples(_config({})) == 0
    assert evaluators.holdout_examples(_config({"mv": {"type": "per_class", "holdout": 300}})) == 300


def test_best_metric_must_name_a_set_and_a_metric():
    with pytest.raises(ConfigError, match="config.best_metric"):
        evaluators.validate(_config({}, best_metric="top1"))
    tracker = evaluators.BestTracker("other/top1", "test")
    with pytest.raises(ConfigError, match="config.best_metric='other/top1'"):
        tracker.check_sets(["test", "test_ema"])


def test_best_tracker_defaults_to_main_top1_and_keeps_the_legacy_meta_names():
    tracker = evaluators.BestTracker("", "test")
    meta = {"best_top1": None, "best_step": None}
    assert tracker.update(1, {"test": {"top1": 0.5, "loss": 2.0}}, meta)
    assert not tracker.update(2, {"test": {"top1": 0.4, "loss": 1.0}}, meta)
    assert tracker.update(3, {"test": {"top1": 0.6, "loss": 3.0}}, meta)
    assert meta == {"best_top1": 0.6, "best_step": 3, "best_metric": "test/top1", "best_value": 0.6}
    assert tracker.score({"test": {"top1": 0.6}}) == 0.6


def test_best_tracker_minimizes_a_loss_and_scores_it_negated():
    tracker = evaluators.BestTracker("minival/loss", "test")
    meta = {"best_top1": 0.9, "best_step": 4}  # a resumed run's meta from before best_metric existed
    assert tracker.update(5, {"test": {"top1": 0.3}, "minival": {"loss": 2.0}}, meta)
    assert not tracker.update(6, {"test": {"top1": 0.9}, "minival": {"loss": 2.5}}, meta)
    assert meta["best_step"] == 5 and meta["best_value"] == 2.0 and meta["best_top1"] == 0.3
    assert tracker.score({"minival": {"loss": 2.0}}) == -2.0
