"""The contract between the training loop and what it trains.

The loop (imagenet_jax/experiment/loop.py) owns everything that does not depend on the problem: steps and
epochs, the mesh and shardings, checkpoints, resume, preemption, logging, evaluation scheduling, the best
checkpoint and early stopping. A task owns the rest: its config keys, its data, its model, the optimizer's view of
the model, one training step (loss and metrics) and its evaluators. Classification (classification.py) is the
first task; adding another (detection) is one more module here, registered under its name, touching no file of
the loop.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, Protocol

import flax.linen as nn
import ml_collections
import numpy as np
import optax

from imagenet_jax.config.sections import ConfigSection
from imagenet_jax.core.state import TrainState


class TaskData(Protocol):
    """The task's training data as the loop sees it: how many steps an epoch has, and a note to log once."""

    note: str

    def steps_per_epoch(self, global_batch_size: int) -> int:
        """Full global batches per pass over the training examples."""

    def train_examples(self) -> int:
        """How many examples one epoch reads."""


class Evaluation(Protocol):
    """The task's evaluation of a state: named sets, the main one first."""

    main: str
    names: list[str]

    def evaluate(self, state: TrainState, step: int) -> dict[str, dict]:
        """{set name: {metric: value}}."""


@dataclasses.dataclass(frozen=True)
class TrainStep:
    """step(state, batch, base_key, *extra) -> (state, metrics), with `extra` arguments (e.g. a distillation
    teacher's variables) passed to every call with `extra_shardings`. metrics["finite"] (1.0 or 0.0) flags a
    NaN/Inf step for config.nonfinite_policy; the other metrics (e.g. "loss", "learning_rate") are averaged over
    each logging window and written as the train lines of metrics.jsonl."""

    step: Callable[..., tuple[TrainState, dict]]
    extra: tuple = ()
    extra_shardings: tuple = ()


class Task(abc.ABC):
    """One kind of problem the loop can train; stateless, a registry entry (`imagenet_jax.tasks.get(name)`)."""

    name: ClassVar[str]

    @abc.abstractmethod
    def config_sections(self) -> Sequence[ConfigSection]:
        """The config sections of every component this task uses (validated up front, resume-safe keys)."""

    @abc.abstractmethod
    def load_data(self, config: ml_collections.ConfigDict, process_index: int, process_count: int) -> TaskData:
        """Loads (preparing once, on process 0) the run's data; the same on every process."""

    @abc.abstractmethod
    def model(self, config: ml_collections.ConfigDict, data: TaskData) -> nn.Module:
        """The model the run trains."""

    @abc.abstractmethod
    def input_shape(self, config: ml_collections.ConfigDict, data: TaskData) -> tuple[int, ...]:
        """One example's input shape, for initializing the model's variables."""

    @abc.abstractmethod
    def optimizer(self, config: ml_collections.ConfigDict, data: TaskData, *, total_steps: int,
                  steps_per_epoch: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
        """(optimizer, learning rate per step) for this model."""

    def initialize(self, config: ml_collections.ConfigDict, data: TaskData, state: TrainState,
                   optimizer: optax.GradientTransformation, state_sharding: Any) -> TrainState:
        """The fresh state of a new run (e.g. pretrained weights merged in); unchanged by default."""
        del config, data, optimizer, state_sharding
        return state

    @abc.abstractmethod
    def train_step(self, config: ml_collections.ConfigDict, data: TaskData, model: nn.Module,
                   optimizer: optax.GradientTransformation, schedule: optax.Schedule, mesh: Any) -> TrainStep:
        """The pure training step, for the loop to jit with its shardings."""

    @abc.abstractmethod
    def train_batches(self, config: ml_collections.ConfigDict, data: TaskData, *, start_step: int,
                      steps_per_epoch: int, process_index: int,
                      process_count: int) -> Iterator[dict[str, np.ndarray]]:
        """This process's share of every global training batch from `start_step` on."""

    @abc.abstractmethod
    def evaluation(self, config: ml_collections.ConfigDict, data: TaskData, model: nn.Module, *, mesh: Any,
                   state_sharding: Any, workdir: str, process_index: int, process_count: int) -> Evaluation:
        """Every evaluation set of the run and its evaluator."""
