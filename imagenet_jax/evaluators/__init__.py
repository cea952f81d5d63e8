"""Evaluators: a registry of named evaluations, configured per eval set by `config.evals.<set>.type`."""

from imagenet_jax.evaluators.base import EvalContext, Evaluator
from imagenet_jax.evaluators.registry import get, names, register
from imagenet_jax.evaluators.runner import (
    MOVED_KEYS,
    BestTracker,
    EvalRunner,
    eval_sets,
    holdout_examples,
    parse_eval_flag,
    validate,
    with_eval_flags,
)

__all__ = ["MOVED_KEYS", "BestTracker", "EvalContext", "EvalRunner", "Evaluator", "eval_sets", "get",
           "holdout_examples", "names", "parse_eval_flag", "register", "validate", "with_eval_flags"]
