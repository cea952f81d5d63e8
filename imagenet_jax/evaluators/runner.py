"""From config.evals to evaluators, one evaluation of all sets, and the best-checkpoint bookkeeping.

The main eval split is always evaluated first, by `classification`, under its split name; then the legacy
minival/extra_eval_splits sets (classification), then every `config.evals.<set>` entry:
`{"type": ..., "dataset": "" (the run's), "split": "" (the dataset's eval split), "holdout": 0, ...options}`.
`holdout: N` evaluates N training examples held out from training (the minival protocol; split is then unused).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import ml_collections

from imagenet_jax.errors import ConfigError
from imagenet_jax.evaluators import registry
from imagenet_jax.evaluators.base import EvalContext, Evaluator
from imagenet_jax.train.watched_metric import improves, resolve_mode

SET_FIELDS = ("type", "dataset", "split", "holdout")


def entries(config: ml_collections.ConfigDict) -> dict[str, dict]:
    """config.evals as {set name: plain dict}."""
    evals = config.get("evals") or {}
    return {name: dict(entry.to_dict() if isinstance(entry, ml_collections.ConfigDict) else entry)
            for name, entry in dict(evals).items()}


def validate(config: ml_collections.ConfigDict) -> None:
    """ConfigError naming config.evals.<set>.<key> for a malformed entry, before anything runs."""
    evals = config.get("evals")
    if evals is not None and not isinstance(evals, (ml_collections.ConfigDict, dict)):
        raise ConfigError(f"config.evals must be a dict of eval sets ({{name: {{type, ...}}}}), not {evals!r}.")
    holdouts = []
    for name, entry in entries(config).items():
        if "/" in name or not name:
            raise ConfigError(f"config.evals.{name}: a set name must be non-empty and contain no '/'.")
        if not isinstance(entry, dict) or "type" not in entry:
            raise ConfigError(f"config.evals.{name} must be a dict with a \"type\" (one of: "
                              f"{', '.join(registry.names())}).")
        cls = registry.get(entry["type"], f"evals.{name}.type")
        for key in ("dataset", "split"):
            if not isinstance(entry.get(key, ""), str):
                raise ConfigError(f"config.evals.{name}.{key}={entry[key]!r} must be a string.")
        dataset = entry.get("dataset", "")
        if dataset and not dataset.startswith("folder:"):
            from imagenet_jax.data import datasets

            datasets.get(dataset, f"evals.{name}.dataset")  # a near-match hint, before any data is read
        holdout = entry.get("holdout", 0)
        if not isinstance(holdout, int) or isinstance(holdout, bool) or holdout < 0:
            raise ConfigError(f"config.evals.{name}.holdout={holdout!r} must be an integer >= 0.")
        if holdout and (entry.get("dataset") or entry.get("split")):
            raise ConfigError(f"config.evals.{name}.holdout holds out training examples of the run's dataset: "
                              "leave dataset and split empty.")
        if holdout:
            holdouts.append(holdout)
        cls.validate(name, {key: value for key, value in entry.items() if key not in SET_FIELDS})
    if len(set(holdouts + ([config.minival_examples] if config.get("minival_examples") else []))) > 1:
        raise ConfigError("config.evals: every holdout (and config.minival_examples) must hold out the same number "
                          f"of training examples (found {sorted(set(holdouts))}).")
    best = config.get("best_metric", "")
    if not isinstance(best, str) or (best and (best.count("/") < 1 or not best.rpartition("/")[2])):
        raise ConfigError(f"config.best_metric={best!r} must be \"<set>/<metric>\" as logged (e.g. \"test/top1\"), "
                          "or \"\" for the main set's top1.")


def holdout_examples(config: ml_collections.ConfigDict) -> int:
    """Training examples held out for evaluation (config.minival_examples or an eval set's holdout)."""
    held = [entry.get("holdout", 0) for entry in entries(config).values()]
    return config.get("minival_examples", 0) or max(held, default=0)


def eval_sets(config: ml_collections.ConfigDict, info, load: Callable | None = None) -> list[tuple]:
    """[(EvalSet, evaluator type, options)] of the run; `info` is the dataset before the holdout."""
    from imagenet_jax.data import inputs, pipeline

    load = load or (lambda name, split: pipeline.load_dataset(name, config.data_dir, "", "", split))
    out = [(eval_set, "classification", {}) for eval_set in inputs.eval_sets(config, info, load)]
    for name, entry in entries(config).items():
        options = {key: value for key, value in entry.items() if key not in SET_FIELDS}
        if entry.get("holdout"):
            _, held_out = info.holdout(info.train_split, entry["holdout"])
            eval_set = inputs.EvalSet(name=name, info=info, split=held_out)
        else:
            eval_set = inputs.other_eval_set(info, name, entry.get("dataset", ""), entry.get("split", ""), load,
                                             f"{name}={entry.get('dataset', '')}:{entry.get('split', '')}",
                                             key=f"evals.{name}.dataset")
        out.append((eval_set, entry["type"], options))
    names = [eval_set.name for eval_set, _, _ in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"config.evals: two evaluation sets are named alike ({', '.join(names)}); rename one.")
    return out


class EvalRunner:
    """Every evaluator of the run; `evaluate(state, step)` -> {set name: metrics} (the main set first)."""

    def __init__(self, config: ml_collections.ConfigDict, info, context: EvalContext, load: Callable | None = None,
                 only: list[str] | None = None):
        """Builds (and compiles lazily) one evaluator per eval set; `only` keeps those set names."""
        sets = eval_sets(config, info, load)
        if only:
            unknown = sorted(set(only) - {eval_set.name for eval_set, _, _ in sets})
            if unknown:
                raise ConfigError(f"--evals: no eval set {', '.join(unknown)}; this run's sets are "
                                  f"{', '.join(eval_set.name for eval_set, _, _ in sets)}.")
            sets = [entry for entry in sets if entry[0].name in only]
        self.main = sets[0][0].name
        self.evaluators: list[Evaluator] = [registry.get(type_name)(eval_set.name, eval_set, options, context)
                                            for eval_set, type_name, options in sets]

    @property
    def names(self) -> list[str]:
        """The logged set names, in evaluation order."""
        return [evaluator.name for evaluator in self.evaluators]

    def evaluate(self, state, step: int) -> dict[str, dict]:
        """{set: {metric: value}} of `state`; every example of every set scored once."""
        results = {}
        for evaluator in self.evaluators:
            results[evaluator.name] = dict(evaluator.run(state, step))
            logging.info("eval %s (%s) at step %d: %s", evaluator.name, evaluator.type_name, step,
                         {k: round(v, 4) for k, v in list(results[evaluator.name].items())[:6]})
        return results


class BestTracker:
    """The best value of config.best_metric ("<set>/<metric>"; default the main set's top1) and its step."""

    def __init__(self, metric: str, main: str):
        """metric "" means "<main>/top1"; mode is auto (min for loss/error keys)."""
        self.metric = metric or f"{main}/top1"
        self.mode = resolve_mode(self.metric, "auto")
        self.main = main

    def check_sets(self, sets: list[str]) -> None:
        """ConfigError up front when the metric's set is not evaluated."""
        split = self.metric.rpartition("/")[0]
        if split not in sets:
            raise ConfigError(f"config.best_metric={self.metric!r}: this run logs no eval set {split!r}; its sets "
                              f"are {', '.join(sets)}.")

    def update(self, step: int, logged: dict[str, dict], meta: dict) -> bool:
        """Records a new best in `meta` (best_metric, best_value, best_step, best_top1); True if it improved."""
        split, _, key = self.metric.rpartition("/")
        if key not in logged.get(split, {}):
            raise ConfigError(f"config.best_metric={self.metric!r} is not logged; {split!r} logs "
                              f"{', '.join(logged.get(split, {}))}.")
        value = float(logged[split][key])
        if "best_metric" in meta:  # a changed best_metric starts its own record
            best = meta.get("best_value") if meta["best_metric"] == self.metric else None
        else:  # meta written before best_metric existed tracked the main set's top1
            best = meta.get("best_top1") if self.metric == f"{self.main}/top1" else None
        if not improves(value, best, self.mode, 0.0):
            return False
        meta.update(best_metric=self.metric, best_value=value, best_step=step,
                    best_top1=logged.get(self.main, {}).get("top1"))
        return True

    def score(self, logged: dict[str, dict]) -> float:
        """The value as a higher-is-better checkpoint metric (negated in mode min; -inf when not finite)."""
        split, _, key = self.metric.rpartition("/")
        value = float(logged[split][key])
        if not math.isfinite(value):
            return -math.inf
        return value if self.mode == "max" else -value
