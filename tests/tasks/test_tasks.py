"""The loop is task-agnostic: a task registered from outside the package (no file of the loop touched) is
trained, checkpointed, evaluated and resumed by it; classification is the registered default."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from imagenet_jax import tasks
from imagenet_jax.config import get_base_config
from imagenet_jax.config.sections import ConfigSection
from imagenet_jax.errors import ConfigError
from imagenet_jax.experiment.loop import train_and_evaluate
from imagenet_jax.experiment.validate import validate_config
from imagenet_jax.tasks.base import Task, TrainStep

POINTS = 512  # two Gaussian blobs in 2-D, one per class


@dataclasses.dataclass(frozen=True)
class BlobData:
    """Synthetic points and labels; the first 384 train, the rest evaluate."""

    x: np.ndarray
    y: np.ndarray
    note: str = ""

    def steps_per_epoch(self, global_batch_size: int) -> int:
        """Full batches of the 384 training points."""
        return 384 // global_batch_size

    def train_examples(self) -> int:
        """384."""
        return 384


class Mlp(nn.Module):
    """A two-layer perceptron, with the loop's model calling convention (train=...)."""

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Logits of the two classes."""
        del train
        return nn.Dense(2)(nn.relu(nn.Dense(16)(x)))


class _Evaluation:
    main = "holdout"
    names = ["holdout"]

    def __init__(self, model: nn.Module, data: BlobData):
        self.apply = jax.jit(lambda params, x: model.apply({"params": params}, x))
        self.x, self.y = data.x[384:], data.y[384:]

    def evaluate(self, state, step: int) -> dict[str, dict]:
        logits = np.asarray(self.apply(state.params, self.x))
        return {"holdout": {"top1": float(np.mean(logits.argmax(-1) == self.y)), "num_examples": len(self.y)}}


class Blobs(Task):
    """Points to classes: no images, no TFDS, no evaluator registry, yet the same loop."""

    name = "test_blobs"

    def config_sections(self) -> Sequence[ConfigSection]:
        """Nothing of its own to check."""
        return []

    def load_data(self, config, process_index: int, process_count: int) -> BlobData:
        """The blobs, the same on every process."""
        rng = np.random.default_rng(0)
        y = rng.integers(0, 2, POINTS).astype(np.int32)
        x = (rng.normal(size=(POINTS, 2)) + 2.0 * (2 * y[:, None] - 1)).astype(np.float32)
        return BlobData(x, y)

    def model(self, config, data: BlobData) -> nn.Module:
        """The perceptron."""
        return Mlp()

    def input_shape(self, config, data: BlobData) -> tuple[int, ...]:
        """One point."""
        return (2,)

    def optimizer(self, config, data: BlobData, *, total_steps: int, steps_per_epoch: int):
        """SGD at a constant rate."""
        return optax.sgd(config.learning_rate), optax.constant_schedule(config.learning_rate)

    def train_step(self, config, data: BlobData, model: nn.Module, optimizer, schedule, mesh) -> TrainStep:
        """Cross-entropy; the loop's metric conventions (loss, finite)."""

        def step(state, batch, base_key):
            def loss_fn(params):
                logits = model.apply({"params": params}, batch["x"])
                return optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()

            loss, grads = jax.value_and_grad(loss_fn)(state.params)
            updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
            new_state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                                      opt_state=opt_state)
            return new_state, {"loss": loss, "finite": jnp.isfinite(loss).astype(jnp.float32)}

        return TrainStep(step)

    def train_batches(self, config, data: BlobData, *, start_step: int, steps_per_epoch: int, process_index: int,
                      process_count: int) -> Iterator[dict[str, np.ndarray]]:
        """Batches in order, from `start_step` on (so a resumed run reads what the uninterrupted one read)."""
        step = start_step
        while True:
            first = (step % steps_per_epoch) * config.batch_size
            yield {"x": data.x[first:first + config.batch_size], "label": data.y[first:first + config.batch_size]}
            step += 1

    def evaluation(self, config, data: BlobData, model: nn.Module, *, mesh, state_sharding, workdir: str,
                   process_index: int, process_count: int) -> _Evaluation:
        """Top-1 on the held-out points."""
        return _Evaluation(model, data)


@pytest.fixture
def blobs_task():
    tasks.TASKS.register(Blobs.name, Blobs)
    yield Blobs.name
    tasks.TASKS.unregister(Blobs.name)


def _config(task: str, steps: int):
    config = get_base_config()
    config.task = task
    config.batch_size = 32
    config.num_train_steps = steps
    config.learning_rate = 0.1
    config.eval_every_steps = 6
    config.log_every_steps = 6
    config.write_report = False
    config.evals = {}
    return config


def _metrics(workdir: str) -> list[dict]:
    with open(os.path.join(workdir, "metrics.jsonl")) as stream:
        return [json.loads(line) for line in stream]


def test_a_task_registered_outside_the_package_is_trained_evaluated_and_resumed_by_the_loop(blobs_task, tmp_path):
    final = train_and_evaluate(_config(blobs_task, 24), str(tmp_path / "whole"))
    assert final["top1"] >= 0.95  # well-separated blobs: far above chance (0.5)
    half = str(tmp_path / "halves")
    train_and_evaluate(_config(blobs_task, 12), half)
    config = _config(blobs_task, 24)
    config.allow_config_change = True  # num_train_steps grew: the same trajectory, continued
    resumed = train_and_evaluate(config, half)
    assert resumed["top1"] == final["top1"]

    def numbers(lines):
        return [{key: line[key] for key in ("step", "split", "loss", "top1") if key in line} for line in lines]

    assert numbers(_metrics(half)) == numbers(_metrics(str(tmp_path / "whole")))


def test_classification_is_the_default_task_and_an_unknown_task_names_the_key():
    assert get_base_config().task == "classification" and "classification" in tasks.names()
    config = get_base_config()
    config.task = "clasification"
    with pytest.raises(ConfigError, match=r"config.task='clasification' is not a registered task. Did you mean "
                                          r"classification\?"):
        validate_config(config)
