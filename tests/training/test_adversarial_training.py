"""Adversarial training (train/adversarial_training.py): every PGD / fast-FGSM iterate on real Fashion-MNIST stays in
the eps-ball and in [0, 255] and raises the loss, the train step trains on the attacked images, the step sizes
follow the papers, the keys are validated, and a run reports robust accuracy through the `adversarial` evaluator."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_jax.core import losses
from imagenet_jax.core.metrics import normalize_images
from imagenet_jax.errors import ConfigError
from imagenet_jax.training.adversarial_training import AdversarialTraining
from tests.conftest import read_metrics, run_main, tiny_run_overrides
from tests.training.fashion_mnist_arrays import batches, default_config, train_setup

EPS = 25.0


@pytest.fixture(scope="module")
def trained():
    """(config, model, state) after 15 clean steps on real batches: a model with something to attack."""
    config = default_config()
    model, state, step = train_setup(config, total_steps=15)
    for batch in batches(15):
        state, _ = step(state, batch, jax.random.key(0))
    return config, model, state


def _attack_setup(trained):
    config, model, state = trained
    batch = batches(16)[15]  # not seen in training

    def loss_fn(pixels, labels):
        logits = model.apply({"params": state.params, "batch_stats": state.batch_stats},
                             normalize_images(pixels, config.normalize_mean, config.normalize_std), train=False)
        return jnp.sum(losses.softmax_xent(logits, jax.nn.one_hot(labels, 10)))

    return loss_fn, batch["image"].astype(np.float32), batch["label"]


@pytest.mark.parametrize("steps", [1, 3, 7])
def test_pgd_iterates_stay_in_the_eps_ball_and_raise_the_loss(trained, steps):
    loss_fn, images, labels = _attack_setup(trained)
    attack = AdversarialTraining("pgd", EPS, steps, 2.5 * EPS / steps, True)
    attacked = np.asarray(jax.jit(attack.perturb, static_argnums=0)(loss_fn, images, labels, jax.random.key(3)))
    assert np.max(np.abs(attacked - images)) <= EPS + 1e-4
    assert attacked.min() >= 0.0 and attacked.max() <= 255.0
    assert np.mean(np.abs(attacked - images) > EPS - 1e-3) > 0.3  # most pixels pushed to the ball's surface
    assert float(loss_fn(attacked, labels)) > 1.2 * float(loss_fn(images, labels))


def test_step_sizes_follow_madry_and_wong():
    pgd = AdversarialTraining.from_config(default_config({"adversarial_training.method": "pgd",
                                                          "adversarial_training.epsilon": 8.0,
                                                          "adversarial_training.steps": 10}))
    assert (pgd.steps, pgd.step_size, pgd.random_start) == (10, 2.0, True)
    fast = AdversarialTraining.from_config(default_config({"adversarial_training.method": "fgsm_rs",
                                                           "adversarial_training.epsilon": 8.0}))
    assert (fast.steps, fast.step_size, fast.random_start) == (1, 10.0, True)
    assert AdversarialTraining.from_config(default_config()) is None


def test_train_step_trains_on_attacked_images(trained):
    config, _, state = trained
    batch = batches(16)[15]
    _, _, clean_step = train_setup(config)
    _, _, adversarial_step = train_setup(default_config({
        "adversarial_training.method": "pgd", "adversarial_training.epsilon": EPS, "adversarial_training.steps": 3}))
    _, clean = clean_step(state, batch, jax.random.key(0))
    new_state, attacked = adversarial_step(state, batch, jax.random.key(0))
    assert float(attacked["loss"]) > 1.5 * float(clean["loss"])  # the step's loss is the attacked images' loss
    assert float(attacked["top1"]) < float(clean["top1"])
    assert int(new_state.step) == int(state.step) + 1 and np.isfinite(float(attacked["grad_norm"]))


@pytest.mark.parametrize("overrides, message", [
    ({"adversarial_training.method": "trades"}, "config.adversarial_training.method='trades'"),
    ({"adversarial_training.method": "pgd", "adversarial_training.epsilon": 0.0},
     "config.adversarial_training.epsilon=0.0 must be in (0, 255]"),
    ({"adversarial_training.method": "pgd", "adversarial_training.steps": 0},
     "config.adversarial_training.steps=0 must be an integer >= 1"),
    ({"adversarial_training.method": "fgsm_rs", "adversarial_training.random_start": False},
     "config.adversarial_training.random_start=False with method 'fgsm_rs'"),
])
def test_bad_adversarial_keys_are_named(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        default_config(overrides)


@pytest.mark.slow
def test_fast_fgsm_run_reports_clean_and_robust_accuracy(tmp_path, fashion_mnist_dir):
    workdir = str(tmp_path / "run")
    result = run_main(workdir, *tiny_run_overrides(fashion_mnist_dir, steps=8), "--config.eval_split=test[:200]",
                      config="configs/adversarial.py")
    assert result.returncode == 0, result.stderr[-3000:]
    robust = [line for line in read_metrics(workdir) if line["split"] == "pgd"]
    assert len(robust) == 1 and robust[0]["num_examples"] == 200
    assert 0.0 <= robust[0]["top1"] <= robust[0]["clean_top1"] <= 1.0
