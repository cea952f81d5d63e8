"""Knowledge distillation (Hinton et al. 2015): config.distill = {teacher, teacher_model, teacher_model_options,
temperature, alpha}.

loss = alpha * KL(softmax(teacher / T) || softmax(student / T)) * T^2 + (1 - alpha) * CE(student, labels).
The teacher (a workdir of ours or a converted-weights file, read by init_from.load_pretrained) is loaded once,
placed with the student's sharding rules, and passed into the compiled train step as an argument (not baked in
as constants); it runs in eval mode (running BN statistics, no dropout) and gets no gradient. It is not part of
the TrainState: checkpoints hold the student only, and a resumed run loads the teacher again.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import traverse_util
from jax.sharding import Mesh

from imagenet_jax.config.checks import check_sub_dict, is_number
from imagenet_jax.errors import ConfigError
from imagenet_jax.models.outputs import split_outputs

FIELDS = ("teacher", "teacher_model", "teacher_model_options", "temperature", "alpha")


def kd_divergence(student_logits: jax.Array, teacher_logits: jax.Array, temperature: float) -> jax.Array:
    """Per-example KL(softmax(teacher / T) || softmax(student / T)) * T^2, in float32."""
    student = jax.nn.log_softmax(student_logits.astype(jnp.float32) / temperature, axis=-1)
    teacher = jax.nn.log_softmax(teacher_logits.astype(jnp.float32) / temperature, axis=-1)
    kl = jnp.sum(jnp.exp(teacher) * (teacher - student), axis=-1)
    return kl * temperature**2  # keeps the soft term's gradient scale independent of T


def distillation_loss(student_logits: jax.Array, teacher_logits: jax.Array, hard_loss: jax.Array, *,
                      temperature: float, alpha: float) -> jax.Array:
    """Per-example alpha * KD divergence + (1 - alpha) * hard_loss (the per-example cross-entropy)."""
    return alpha * kd_divergence(student_logits, teacher_logits, temperature) + (1.0 - alpha) * hard_loss


@dataclasses.dataclass(frozen=True)
class Distill:
    """The teacher module and the loss weights; the teacher's variables travel separately (a step argument)."""

    teacher_model: nn.Module
    temperature: float
    alpha: float

    def teacher_logits(self, variables: dict, images: jax.Array) -> jax.Array:
        """The teacher's eval-mode logits of normalized images, without gradient."""
        outputs = self.teacher_model.apply(variables, images, train=False)
        logits, _ = split_outputs(outputs)
        return jax.lax.stop_gradient(logits.astype(jnp.float32))


def from_config(config: ml_collections.ConfigDict, num_classes: int, dtype: Any) -> Distill | None:
    """The distillation of `config`; None when config.distill.teacher is empty."""
    from imagenet_jax import models

    spec = config.distill
    if not spec.teacher:
        return None
    teacher = models.create(spec.teacher_model, num_classes=num_classes, dtype=dtype,
                            **spec.teacher_model_options.to_dict())
    return Distill(teacher, float(spec.temperature), float(spec.alpha))


def load_teacher(config: ml_collections.ConfigDict, distill: Distill, input_shape: tuple[int, ...], mesh: Mesh,
                 ) -> tuple[dict, Any]:
    """(teacher variables on device, their shardings): read once, shape-checked, sharded like the student."""
    from imagenet_jax.parallel import mesh as mesh_lib
    from imagenet_jax.training.init_from import load_pretrained

    abstract = jax.eval_shape(lambda key: distill.teacher_model.init(
        {"params": key, "dropout": key}, jnp.zeros((1, *input_shape), jnp.float32), train=False),
        jax.random.key(0))
    abstract = {"params": abstract["params"], "batch_stats": abstract.get("batch_stats", {})}
    loaded = load_pretrained(config.distill.teacher)
    variables, problems = {}, []
    for collection, expected in abstract.items():
        source = traverse_util.flatten_dict(dict(loaded.get(collection) or {}), sep="/")
        target = traverse_util.flatten_dict(dict(expected), sep="/")
        arrays = {}
        for path, leaf in target.items():
            value = source.get(path)
            if value is None or np.shape(value) != leaf.shape:
                problems.append(f"{collection}/{path}: teacher file {None if value is None else np.shape(value)} "
                                f"vs {config.distill.teacher_model} {leaf.shape}")
            else:
                arrays[path] = np.asarray(value).astype(leaf.dtype)
        variables[collection] = traverse_util.unflatten_dict(arrays, sep="/") if arrays else {}
    if problems:
        raise ConfigError(f"config.distill.teacher={config.distill.teacher!r} does not fit config.distill."
                          f"teacher_model={config.distill.teacher_model!r} with its teacher_model_options and "
                          f"{len(problems)} arrays differ: " + "; ".join(problems[:5]))
    shardings = mesh_lib.state_shardings(abstract, mesh, config.fsdp_min_size, config.fsdp_rules)
    return jax.device_put(variables, shardings), shardings


def validate_config(config: ml_collections.ConfigDict) -> None:
    """ConfigError naming the config.distill key that is missing, unknown or out of range."""
    from imagenet_jax import models

    spec = check_sub_dict(config, "distill", FIELDS)
    if not isinstance(spec.teacher, str):
        raise ConfigError(f"config.distill.teacher={spec.teacher!r} must be a workdir or converted-weights path.")
    if not spec.teacher:
        return
    models.MODELS.get(spec.teacher_model, key="distill.teacher_model")  # unknown: one line, with close names
    if not isinstance(spec.teacher_model_options, ml_collections.ConfigDict):
        raise ConfigError(f"config.distill.teacher_model_options={spec.teacher_model_options!r} must be a "
                          "ConfigDict of model options.")
    try:
        models.create(spec.teacher_model, **spec.teacher_model_options.to_dict())
    except (TypeError, ValueError) as error:
        raise ConfigError(f"config.distill.teacher_model_options of {spec.teacher_model!r}: {error}.") from None
    if not _number(spec.temperature) or spec.temperature <= 0:
        raise ConfigError(f"config.distill.temperature={spec.temperature!r} must be a number > 0.")
    if not _number(spec.alpha) or not 0 <= spec.alpha <= 1:
        raise ConfigError(f"config.distill.alpha={spec.alpha!r} must be in [0, 1] (the weight of the KD term).")
    if config.loss != "softmax_xent":
        raise ConfigError(f"config.distill needs config.loss='softmax_xent' (the KD term is a softmax KL), "
                          f"not {config.loss!r}.")


_number = is_number
