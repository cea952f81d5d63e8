"""Tasks: what a run learns (classification; detection next), behind one contract with the training loop
(base.Task). `get(config.task)` returns the registered task."""

from __future__ import annotations

from imagenet_jax.tasks.base import Task, TrainStep
from imagenet_jax.tasks.registry import TASKS

__all__ = ["TASKS", "Task", "TrainStep", "get", "names"]


def get(name: str) -> Task:
    """The task registered as `name` (config.task); ConfigError with close matches otherwise."""
    return TASKS.get(name)()


def names() -> list[str]:
    """Every registered task's name."""
    return TASKS.names()
