"""Evaluators: a registry of named evaluations, configured per eval set by `config.evals.<set>.type` (the main set's
by `config.main_eval.type`)."""

from imagenet_jax.data.holdout import holdout_examples
from imagenet_jax.evaluators.base import EvalContext, Evaluator
from imagenet_jax.evaluators.registry import get, names, register
from imagenet_jax.evaluators.runner import (
    MOVED_KEYS,
    BestTracker,
    EvalRunner,
    eval_sets,
    main_eval,
    parse_eval_flag,
    validate,
    with_eval_flags,
)

# How a run is evaluated, not what a step computes (the held-out count is compared apart: experiment/validate.py).
RESUME_SAFE_KEYS = frozenset({"evals", "main_eval", "best_metric", "eval_batch_size",
                              "extra_eval_splits", "minival_examples"})  # replaced by config.evals; in older runs
validate_config = validate  # this package's config section (imagenet_jax/config/sections.py)

__all__ = ["MOVED_KEYS", "RESUME_SAFE_KEYS", "BestTracker", "EvalContext", "EvalRunner", "Evaluator", "eval_sets",
           "get", "holdout_examples", "main_eval", "names", "parse_eval_flag", "register", "validate",
           "validate_config", "with_eval_flags"]
