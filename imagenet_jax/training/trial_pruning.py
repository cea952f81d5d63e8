"""A run as a trial of an Optuna study (`python -m imagenet_jax tune`): report each evaluation, stop when pruned.

config.tune = {"storage": URL, "study": NAME, "trial": N, "pruner": NAME, "metric": "<set>/<metric>"}, set by the
tuner on each trial's command line (trial -1, the default, is an ordinary run). After every evaluation the run
reports the metric to the study as the trial's intermediate value at that step, and asks the study's pruner
(the same pruner the tuner uses; Optuna keeps the pruner in the process, not in the storage) whether to stop.
A pruned run saves its checkpoint, writes {"split": "tune", "pruned": true, ...} to metrics.jsonl and ends
normally; the tuner reads that line.
"""

from __future__ import annotations

import logging

import ml_collections

from imagenet_jax.core import watched_metric
from imagenet_jax.errors import ConfigError

RESUME_SAFE_KEYS = frozenset({"tune"})  # how the run reports, not what a step computes
SPLIT = "tune"  # the metrics.jsonl split of the pruning line


def validate_config(config: ml_collections.ConfigDict) -> None:
    """ConfigError naming config.tune.<key> for a trial without a storage or study, or with an unknown pruner."""
    tune = config.get("tune")
    if tune is None or tune.get("trial", -1) < 0:
        return
    for key in ("storage", "study"):
        if not tune.get(key):
            raise ConfigError(f"config.tune.{key} is empty: a trial (config.tune.trial >= 0) reports to a study; "
                              "the tune command sets these (python -m imagenet_jax tune ...).")
    from imagenet_jax.training.optuna_study import PRUNERS

    PRUNERS.get(tune.get("pruner", "none"), key="tune.pruner")


class TrialReporter:
    """Reports a run's evaluations to its Optuna trial; `update` says whether the pruner stops it."""

    def __init__(self, storage: str, study: str, number: int, pruner: str, metric: str):
        """Opens the study in the storage (with the tuner's pruner) and finds the trial by its number."""
        import optuna

        from imagenet_jax.training.optuna_study import make_pruner, storage_of

        self.metric, self.number = metric, number
        opened = storage_of(storage)
        self.study = optuna.load_study(study_name=study, storage=opened, pruner=make_pruner(pruner))
        study_id = opened.get_study_id_from_name(study)
        self.trial = optuna.trial.Trial(self.study, opened.get_trial_id_from_study_id_trial_number(study_id, number))

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict, main_set: str) -> TrialReporter | None:
        """None for an ordinary run; metric "" is config.best_metric, else the main set's top1."""
        tune = config.get("tune")
        if tune is None or tune.get("trial", -1) < 0:
            return None
        return cls(tune.storage, tune.study, tune.trial, tune.pruner, tune.metric or config.best_metric
                   or f"{main_set}/top1")

    def update(self, step: int, logged: dict[str, dict], final: bool = False) -> bool:
        """Reports the metric at `step`; True when the pruner says stop (never at the final step: the trial has
        run its whole budget, and is complete rather than pruned)."""
        value = watched_metric.read("tune", self.metric, logged)
        self.trial.report(value, step)
        pruned = not final and self.trial.should_prune()
        if pruned:
            logging.warning("trial %d pruned at step %d (%s = %.4f)", self.number, step, self.metric, value)
        return pruned
