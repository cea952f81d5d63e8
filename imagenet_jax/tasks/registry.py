"""Tasks by name: config.task picks one."""

from __future__ import annotations

from imagenet_jax.registry import Registry

TASKS = Registry("task", config_key="task", discover="imagenet_jax.tasks")
register = TASKS.register
