"""Evaluators: a registry of named evaluations, configured per eval set by `config.evals.<set>.type`."""

from imagenet_jax.evaluators.base import EvalContext, Evaluator
from imagenet_jax.evaluators.registry import get, names, register
from imagenet_jax.evaluators.runner import BestTracker, EvalRunner, eval_sets, holdout_examples, validate

__all__ = ["BestTracker", "EvalContext", "EvalRunner", "Evaluator", "eval_sets", "get", "holdout_examples", "names",
           "register", "validate"]
