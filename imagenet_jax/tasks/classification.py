"""Image classification: the first task. Everything the loop must not know lives here: the dataset and its
classes, the classifier, the loss and metrics of a step (with mixup/cutmix, distillation, adversarial training,
frozen layers for transfer, quantization-aware training as options of this task), and the evaluators.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from imagenet_jax import compress, evaluators, models
from imagenet_jax.config.sections import ConfigSection
from imagenet_jax.core.state import TrainState
from imagenet_jax.data import inputs, pipeline
from imagenet_jax.tasks import classification_config
from imagenet_jax.tasks.base import Task, TrainStep
from imagenet_jax.tasks.registry import register
from imagenet_jax.training import adversarial_training, distill, optim, regularization, transfer
from imagenet_jax.training.steps import make_train_step


@dataclasses.dataclass(frozen=True)
class ClassificationData:
    """The training dataset (without held-out examples), the dataset as loaded (evaluators cut minival from it)
    and the number of classes the model predicts."""

    info: inputs.AnyDatasetInfo
    eval_info: inputs.AnyDatasetInfo
    num_classes: int

    @property
    def note(self) -> str:
        """What the run's log says about the data once (e.g. that the JPEGs are a re-encoded copy)."""
        return self.info.note

    def steps_per_epoch(self, global_batch_size: int) -> int:
        """Full global batches per epoch."""
        return pipeline.steps_per_epoch(self.info, global_batch_size)

    def train_examples(self) -> int:
        """Training examples per epoch."""
        return self.info.num_examples(self.info.train_split)


@register("classification")
class Classification(Task):
    """Softmax (or sigmoid) classification of images into the dataset's classes."""

    def config_sections(self) -> Sequence[ConfigSection]:
        """Model, data, loss, optimizer, transfer, distillation, adversarial training, compression, evaluators."""
        return [ConfigSection.from_module(module) for module in (
            classification_config, inputs, optim, regularization, transfer, distill, adversarial_training,
            compress, evaluators, models.conv_lowering)]

    def load_data(self, config: ml_collections.ConfigDict, process_index: int,
                  process_count: int) -> ClassificationData:
        """config.dataset, prepared by process 0 alone while the others wait, minus the held-out examples."""
        info = inputs.load_dataset(config) if process_index == 0 else None
        if process_count > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("dataset prepared")
        info = info or inputs.load_dataset(config)
        return ClassificationData(info=inputs.apply_holdout(config, info), eval_info=info,
                                  num_classes=config.num_classes or info.num_classes)

    def model(self, config: ml_collections.ConfigDict, data: ClassificationData) -> nn.Module:
        """The classifier; fake-quantized under config.quantization.mode="qat"."""
        models.set_cpu_conv_lowering(config.cpu_conv_lowering)  # CPU only: small maps as patches + matmul
        return compress.for_training(config, models.model_from_config(config, data.num_classes))

    def input_shape(self, config: ml_collections.ConfigDict, data: ClassificationData) -> tuple[int, ...]:
        """One image at the config's training resolution."""
        return (config.image_size, config.image_size, data.info.channels)

    def optimizer(self, config: ml_collections.ConfigDict, data: ClassificationData, *, total_steps: int,
                  steps_per_epoch: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
        """config.optimizer with its schedule; num_classes tells a linear probe which layer is the head."""
        return optim.create(config, total_steps=total_steps, steps_per_epoch=steps_per_epoch,
                            num_classes=data.num_classes)

    def initialize(self, config: ml_collections.ConfigDict, data: ClassificationData, state: TrainState,
                   optimizer: optax.GradientTransformation, state_sharding: Any) -> TrainState:
        """config.init_from's pretrained weights (those config.init_from_layers selects) merged into a fresh state
        (its head kept when classes differ)."""
        if not config.init_from:
            return state
        from imagenet_jax.training.init_from import load_pretrained, merge_pretrained

        initial = jax.device_get({"params": state.params, "batch_stats": state.batch_stats})
        merged = merge_pretrained(initial, load_pretrained(config.init_from), data.num_classes,
                                  tuple(config.init_from_layers))
        params = jax.device_put(merged["params"], state_sharding.params)
        batch_stats = jax.device_put(merged["batch_stats"], state_sharding.batch_stats)
        opt_state = jax.jit(optimizer.init, out_shardings=state_sharding.opt_state)(params)
        ema = None if state.ema is None else jax.device_put(merged, state_sharding.ema)  # the average starts here
        return state.replace(params=params, batch_stats=batch_stats, opt_state=opt_state, ema=ema)

    def train_step(self, config: ml_collections.ConfigDict, data: ClassificationData, model: nn.Module,
                   optimizer: optax.GradientTransformation, schedule: optax.Schedule, mesh: Any) -> TrainStep:
        """Loss, top-1/top-5; a distillation teacher (read once, sharded like the student) is its extra argument."""
        dtype = jnp.bfloat16 if config.half_precision else jnp.float32
        distillation = distill.from_config(config, data.num_classes, dtype)  # the teacher in the student's precision
        extra, extra_shardings = (), ()
        if distillation is not None:
            variables, shardings = distill.load_teacher(config, distillation, self.input_shape(config, data), mesh)
            extra, extra_shardings = (variables,), (shardings,)
        step = make_train_step(
            model, optimizer, schedule, num_classes=data.num_classes, mean=config.normalize_mean,
            std=config.normalize_std, label_smoothing=config.label_smoothing,
            skip_nonfinite=config.nonfinite_policy == "skip", mixup_alpha=config.mixup_alpha,
            cutmix_alpha=config.cutmix_alpha, mix_prob=config.mix_prob, mix_switch_prob=config.mix_switch_prob,
            loss_name=config.loss, bce_target_threshold=config.bce_target_threshold, ema_decay=config.ema_decay,
            ema_warmup=config.ema_warmup, freeze=transfer.Freeze.from_config(config, data.num_classes),
            distill=distillation, adversarial=adversarial_training.AdversarialTraining.from_config(config))
        return TrainStep(step, extra, extra_shardings)

    def train_batches(self, config: ml_collections.ConfigDict, data: ClassificationData, *, start_step: int,
                      steps_per_epoch: int, process_index: int,
                      process_count: int) -> Iterator[dict[str, np.ndarray]]:
        """The training chain's batches ({"image" uint8, "label"[, "mask"]}), resolution schedule included."""
        return inputs.train_stream(config, data.info, start_step=start_step, steps_per_epoch=steps_per_epoch,
                                   process_index=process_index, process_count=process_count)

    def evaluation(self, config: ml_collections.ConfigDict, data: ClassificationData, model: nn.Module, *,
                   mesh: Any, state_sharding: Any, workdir: str, process_index: int,
                   process_count: int) -> evaluators.EvalRunner:
        """The main split, then every config.evals set, each scored by its evaluator."""
        local_batch_size = (config.eval_batch_size or config.batch_size) // process_count
        return evaluators.EvalRunner(config, data.eval_info, evaluators.EvalContext(
            config, model, data.num_classes, mesh, state_sharding, local_batch_size, workdir, process_index,
            process_count))
