"""From config.evals to evaluators, one evaluation of all sets, and the best-checkpoint bookkeeping.

The main eval split is always evaluated first, under its split name, by `config.main_eval`'s evaluator
(`{"type": "classification"}` by default: one center crop; e.g. `{"type": "multicrop", "mode": "dense", "resize": Q}`
for VGG's dense evaluation): its line carries the best-so-far and is the number a sweep reports. Then every
`config.evals.<set>` entry: `{"type": ..., "dataset": "" (the run's), "split": "" (the dataset's eval split),
"holdout": 0, ...options}`. `holdout: N` evaluates N training examples held out from training (the minival
protocol; split is then unused). On the command line, `--eval NAME=TYPE[,key=value...]` adds or replaces an entry
(`with_eval_flags`), e.g. `--eval minival=classification,holdout=10000` or
`--eval v2=classification,dataset=imagenet_v2,split=test`.
"""

from __future__ import annotations

import ast
import functools
import logging
import math
import os
from collections.abc import Callable, Sequence

import ml_collections

from imagenet_jax.core.watched_metric import improves, resolve_mode
from imagenet_jax.errors import ConfigError
from imagenet_jax.evaluators import registry
from imagenet_jax.evaluators.base import EvalContext, Evaluator, sum_over_pass

SET_FIELDS = ("type", "dataset", "split", "holdout")
MAIN_EVAL_KEY = "config.main_eval"

# Keys that config.evals replaced, named in "unknown key" errors (imagenet_jax/experiment/validate.py).
MOVED_KEYS = {
    "minival_examples": 'config.evals.minival = {"type": "classification", "holdout": N} '
                        "(command line: --eval minival=classification,holdout=N)",
    "extra_eval_splits": 'config.evals.NAME = {"type": "classification", "dataset": D, "split": S} '
                         "(command line: --eval NAME=classification,dataset=D,split=S; a folder: dataset=folder:PATH)",
}


def parse_eval_flag(text: str) -> tuple[str, dict]:
    """ "NAME=TYPE[,key=value...]" -> (NAME, {"type": TYPE, key: value...}); values are Python literals or text."""
    name, has_type, rest = text.partition("=")
    if not has_type or not name.strip() or not rest.strip():
        raise ConfigError(f"--eval {text!r} must be NAME=TYPE[,key=value...] (e.g. --eval minival=classification,"
                          f"holdout=10000); types: {', '.join(registry.names())}.")
    type_name, *options = _split_top_level(rest)
    entry: dict = {"type": type_name.strip()}
    for option in options:
        key, has_value, value = option.partition("=")
        if not has_value or not key.strip():
            raise ConfigError(f"--eval {text!r}: {option!r} is not key=value.")
        entry[key.strip()] = _literal(value.strip())
    return name.strip(), entry


def with_eval_flags(config: ml_collections.ConfigDict, flags: Sequence[str]) -> ml_collections.ConfigDict:
    """`config` (unchanged when no flags) or an unlocked copy with each --eval entry set in config.evals."""
    if not flags:
        return config
    config = ml_collections.ConfigDict(config.to_dict())
    for text in flags:
        name, entry = parse_eval_flag(text)
        config.evals[name] = entry
    return config


def _split_top_level(text: str) -> list[str]:
    # Commas inside brackets or quotes belong to a value: "corruptions,severities=(1,3),names=('fog',)".
    parts, depth, quote, start = [], 0, "", 0
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    return [*parts, text[start:]]


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word: a dataset, split or name


def entries(config: ml_collections.ConfigDict) -> dict[str, dict]:
    """config.evals as {set name: plain dict}."""
    evals = config.get("evals") or {}
    return {name: dict(entry.to_dict() if isinstance(entry, ml_collections.ConfigDict) else entry)
            for name, entry in dict(evals).items()}


def main_eval(config: ml_collections.ConfigDict) -> tuple[str, dict]:
    """(evaluator type, options) of the main eval set: config.main_eval."""
    entry = config.get("main_eval") or {"type": "classification"}
    entry = dict(entry.to_dict() if isinstance(entry, ml_collections.ConfigDict) else entry)
    return entry.get("type", ""), {key: value for key, value in entry.items() if key != "type"}


def _validate_main_eval(config: ml_collections.ConfigDict) -> None:
    entry = config.get("main_eval")
    if entry is not None and not isinstance(entry, (ml_collections.ConfigDict, dict)):
        raise ConfigError(f"{MAIN_EVAL_KEY} must be a dict {{\"type\": EVALUATOR, ...its options}}, not {entry!r}.")
    type_name, options = main_eval(config)
    if not type_name:
        raise ConfigError(f"{MAIN_EVAL_KEY} needs a \"type\" (one of: {', '.join(registry.names())}).")
    cls = registry.get(type_name, "main_eval.type")
    set_fields = sorted(set(options) & set(SET_FIELDS))
    if set_fields:
        raise ConfigError(f"{MAIN_EVAL_KEY}.{set_fields[0]}: the main set is the run's eval split (config.eval_split); "
                          "other data is another set of config.evals.")
    cls.validate("main", options, MAIN_EVAL_KEY)


def validate(config: ml_collections.ConfigDict) -> None:
    """ConfigError naming config.main_eval.<key> or config.evals.<set>.<key> for a malformed entry, before anything
    runs."""
    _validate_main_eval(config)
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
        from imagenet_jax.data import folders

        if folders.is_folder_name(dataset):
            if not os.path.isdir(folders.folder_root(dataset)):
                raise ConfigError(f"config.evals.{name}.dataset={dataset!r} names a folder that does not exist.")
        elif dataset:
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
    if len(set(holdouts)) > 1:
        raise ConfigError("config.evals: every holdout must hold out the same training examples, so the same number "
                          f"(found {sorted(set(holdouts))}).")
    best = config.get("best_metric", "")
    if not isinstance(best, str) or (best and (best.count("/") < 1 or not best.rpartition("/")[2])):
        raise ConfigError(f"config.best_metric={best!r} must be \"<set>/<metric>\" as logged (e.g. \"test/top1\"), "
                          "or \"\" for the main set's top1.")


def eval_sets(config: ml_collections.ConfigDict, info, load: Callable | None = None) -> list[tuple]:
    """[(EvalSet, evaluator type, options)] of the run; `info` is the dataset before the holdout."""
    from imagenet_jax.data import inputs, pipeline

    load = load or (lambda name, split: pipeline.load_dataset(name, config.data_dir, "", "", split))
    out = [(inputs.main_eval_set(info), *main_eval(config))]
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
        main_name = sets[0][0].name  # scored by config.main_eval
        if only:
            unknown = sorted(set(only) - {eval_set.name for eval_set, _, _ in sets})
            if unknown:
                raise ConfigError(f"--evals: no eval set {', '.join(unknown)}; this run's sets are "
                                  f"{', '.join(eval_set.name for eval_set, _, _ in sets)}.")
            sets = [entry for entry in sets if entry[0].name in only]
        self.main = sets[0][0].name
        self.evaluators: list[Evaluator] = [
            registry.get(type_name)(eval_set.name, eval_set, options, context,
                                    where=MAIN_EVAL_KEY if eval_set.name == main_name else "")
            for eval_set, type_name, options in sets]

    @property
    def names(self) -> list[str]:
        """The logged set names, in evaluation order."""
        return [evaluator.name for evaluator in self.evaluators]

    def evaluate(self, state, step: int) -> dict[str, dict]:
        """{set: {metric: value}} of `state`; every example of every set scored once."""
        results = {}
        for group, shared_step in self._passes:
            if shared_step is None:
                results[group[0].name] = dict(group[0].run(state, step))
                continue
            totals = sum_over_pass(shared_step, state, group[0].batches(), group[0].context.mesh)
            for index, evaluator in enumerate(group):
                sums = totals[index] if totals is not None else {"num_examples": 0}
                results[evaluator.name] = dict(evaluator.finish(evaluator.checked(sums), step))
        results = {evaluator.name: results[evaluator.name] for evaluator in self.evaluators}
        for evaluator in self.evaluators:
            logging.info("eval %s (%s) at step %d: %s", evaluator.name, evaluator.type_name, step,
                         {k: round(v, 4) for k, v in list(results[evaluator.name].items())[:6]})
        return results

    @functools.cached_property
    def _passes(self) -> list[tuple[list[Evaluator], Callable | None]]:
        """(evaluators, their one compiled step) per data pass: those with a pass_step on the same examples share
        one pass; any other evaluator runs alone (step None)."""
        groups: dict[tuple, list[Evaluator]] = {}
        for evaluator in self.evaluators:
            key = _pass_key(evaluator) if evaluator.pass_step is not None else ("own", id(evaluator))
            groups.setdefault(key, []).append(evaluator)
        return [(group, _shared_step(group) if len(group) > 1 else None) for group in groups.values()]


def _shared_step(group: list[Evaluator]) -> Callable:
    steps = [evaluator.pass_step for evaluator in group]
    return group[0].context.jit(lambda state, batch: [step(state, batch) for step in steps])


def _pass_key(evaluator: Evaluator) -> tuple:
    """Evaluators with equal keys read identical batches (same split of the same dataset, labels, classes)."""
    eval_set = evaluator.eval_set
    label_map = None if eval_set.label_map is None else eval_set.label_map.tobytes()
    return ("shared", id(eval_set.info), eval_set.split, label_map, eval_set.class_subset, type(evaluator).batches)


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
