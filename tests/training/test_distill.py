"""Knowledge distillation (train/distill.py): the KD loss against its formula computed in numpy, the teacher as a
train-step argument (a teacher equal to the student gives zero KD loss; alpha=0 is plain cross-entropy), config
validation, and a distilled run from a teacher workdir that trains, checkpoints the student only and resumes."""

from __future__ import annotations

import os
import re

import jax
import numpy as np
import pytest

from imagenet_jax.errors import ConfigError
from imagenet_jax.training.distill import distillation_loss, kd_divergence
from tests.conftest import read_metrics, run_main, tiny_run_overrides
from tests.training.fashion_mnist_arrays import batches, default_config, train_setup

TEACHER_OPTIONS = {"stage_sizes": (1, 1, 1), "stage_widths": (32, 64, 128), "stem_width": 32, "stem": "small_pool"}


def numpy_log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def numpy_kd_loss(student, teacher, labels, temperature, alpha) -> np.ndarray:
    """Hinton et al. 2015: alpha * T^2 * sum_k p_k (log p_k - log q_k) + (1 - alpha) * (-log softmax(s)_y)."""
    p_log = numpy_log_softmax(teacher / temperature)
    q_log = numpy_log_softmax(student / temperature)
    kl = (np.exp(p_log) * (p_log - q_log)).sum(axis=-1)
    cross_entropy = -numpy_log_softmax(student)[np.arange(len(labels)), labels]
    return alpha * temperature**2 * kl + (1 - alpha) * cross_entropy


@pytest.mark.parametrize("temperature, alpha", [(1.0, 0.5), (4.0, 0.9), (2.5, 1.0), (8.0, 0.0)])
def test_kd_loss_equals_the_formula(temperature, alpha):
    rng = np.random.default_rng(0)
    student = rng.normal(0, 3, (16, 10))
    teacher = rng.normal(0, 5, (16, 10))
    labels = rng.integers(0, 10, 16)
    cross_entropy = -numpy_log_softmax(student)[np.arange(16), labels]
    got = distillation_loss(student.astype(np.float32), teacher.astype(np.float32),
                            cross_entropy.astype(np.float32), temperature=temperature, alpha=alpha)
    np.testing.assert_allclose(np.asarray(got), numpy_kd_loss(student, teacher, labels, temperature, alpha),
                               rtol=2e-5, atol=2e-5)


def test_kd_divergence_is_zero_only_for_equal_distributions():
    logits = np.random.default_rng(1).normal(0, 2, (4, 10)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(kd_divergence(logits, logits + 3.0, 4.0)), 0.0, atol=1e-5)  # shift-free
    assert np.all(np.asarray(kd_divergence(logits, -logits, 4.0)) > 0.1)


def _distill_config(alpha: float):
    return default_config({"distill": {"teacher": "unused-by-this-test", "teacher_model": "resnet_small",
                                       "teacher_model_options": TEACHER_OPTIONS, "temperature": 4.0,
                                       "alpha": alpha}})


def test_teacher_is_a_step_argument_and_the_loss_mixes_kd_and_cross_entropy():
    batch = batches(1)[0]
    _, state, plain_step = train_setup(default_config())
    _, plain = plain_step(state, batch, jax.random.key(0))
    teacher = {"params": state.params, "batch_stats": state.batch_stats}  # the student itself, as the teacher
    _, _, step = train_setup(_distill_config(alpha=0.0))
    _, only_labels = step(state, batch, jax.random.key(0), teacher)
    assert float(only_labels["loss"]) == pytest.approx(float(plain["loss"]), rel=1e-6)
    # alpha=1: the student matches a teacher that is itself in eval mode only where its train-mode BN agrees;
    # at initialization the running statistics (0, 1) differ from the batch's, so the KD term is positive.
    _, _, step = train_setup(_distill_config(alpha=1.0))
    _, only_kd = step(state, batch, jax.random.key(0), teacher)
    model, _, _ = train_setup(default_config())
    images = (batch["image"].astype(np.float32) - np.asarray(default_config().normalize_mean)) / np.asarray(
        default_config().normalize_std)
    student_logits, _ = model.apply(teacher, images, train=True, mutable=["batch_stats"])
    teacher_logits = model.apply(teacher, images, train=False)
    expected = numpy_kd_loss(np.asarray(student_logits, np.float64), np.asarray(teacher_logits, np.float64),
                             batch["label"], 4.0, 1.0).mean()
    assert float(only_kd["loss"]) == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("distill, message", [
    ({"teacher": "t", "teacher_model": "resnet_smal"}, "config.distill.teacher_model='resnet_smal'"),
    ({"teacher": "t", "teacher_model": "resnet_small", "temperature": 0.0}, "config.distill.temperature=0.0"),
    ({"teacher": "t", "teacher_model": "resnet_small", "alpha": 1.5}, "config.distill.alpha=1.5"),
    ({"teacher": "t", "teacher_model": "resnet_small", "teacher_model_options": {"stem": "nope"}},
     "config.distill.teacher_model_options of 'resnet_small'"),
])
def test_bad_distill_keys_are_named(distill, message):
    overrides = {f"distill.{key}": value for key, value in distill.items()}
    with pytest.raises(ConfigError, match=re.escape(message)):
        default_config(overrides)


@pytest.mark.slow
def test_distilled_run_trains_checkpoints_the_student_only_and_resumes(tmp_path, fashion_mnist_dir):
    teacher, student = str(tmp_path / "teacher"), str(tmp_path / "student")
    result = run_main(teacher, *tiny_run_overrides(fashion_mnist_dir, steps=10))
    assert result.returncode == 0, result.stderr[-3000:]
    distill = [f"--config.distill.teacher={teacher}"]  # configs/distill.py: the default model teaches 8-16-32
    result = run_main(student, *tiny_run_overrides(fashion_mnist_dir, steps=6), *distill, config="configs/distill.py")
    assert result.returncode == 0, result.stderr[-3000:]
    result = run_main(student, *tiny_run_overrides(fashion_mnist_dir, steps=12), *distill,
                      "--config.allow_config_change=True", config="configs/distill.py")  # resumes with the teacher
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed from step 6" in result.stderr
    train = [line for line in read_metrics(student) if line["split"] == "train"]
    assert [line["step"] for line in train][-1] == 12 and all(np.isfinite(line["loss"]) for line in train)
    from imagenet_jax.training.init_from import load_pretrained

    student_params = load_pretrained(student)["params"]
    assert student_params["head"]["kernel"].shape == (32, 10)  # the 8-16-32 student, no teacher arrays
    assert max(int(name) for name in os.listdir(os.path.join(student, "checkpoints")) if name.isdigit()) == 12
