"""Adversarial training as a train-step option: config.adversarial_training = {method, epsilon, steps, step_size,
random_start}, in pixel units of the 0-255 image, before normalization (robustness/attacks.py).

- "pgd": Madry et al. 2018, `steps` projected signed-gradient steps of `step_size` (0: 2.5 * epsilon / steps, the
  paper's rule), from a uniform random start in the eps-ball when random_start.
- "fgsm_rs": fast FGSM (Wong et al. 2020), a uniform random start in the eps-ball, then one signed step of
  `step_size` (0: 1.25 * epsilon), projected back onto the ball.
The model is trained on the attacked images only. The attack runs the model as the training step does: BatchNorm
normalizes with the batch's statistics (as in Madry's and Wong's reference code), so the examples are adversarial
for the very function being optimized; the statistics the attack's passes compute are thrown away, so the
running averages see each batch once, as in clean training. Robust accuracy is the `adversarial` evaluator's.
"""

from __future__ import annotations

import dataclasses

import jax
import ml_collections

from imagenet_jax.config.checks import check_sub_dict, is_number
from imagenet_jax.errors import ConfigError
from imagenet_jax.robustness import attacks

METHODS = ("", "pgd", "fgsm_rs")
FIELDS = ("method", "epsilon", "steps", "step_size", "random_start")


@dataclasses.dataclass(frozen=True)
class AdversarialTraining:
    """How each training batch is attacked."""

    method: str
    epsilon: float
    steps: int
    step_size: float
    random_start: bool

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> AdversarialTraining | None:
        """The attack of `config`, step size resolved; None when config.adversarial_training.method is ""."""
        spec = config.adversarial_training
        if not spec.method:
            return None
        eps = float(spec.epsilon)
        if spec.method == "fgsm_rs":
            return cls("fgsm_rs", eps, 1, float(spec.step_size) or 1.25 * eps, True)
        return cls("pgd", eps, int(spec.steps), float(spec.step_size) or 2.5 * eps / int(spec.steps),
                   bool(spec.random_start))

    def perturb(self, loss_fn: attacks.LossFn, images: jax.Array, labels: jax.Array, key: jax.Array) -> jax.Array:
        """Attacked float images in [0, 255], each within epsilon (L-inf) of `images`."""
        return attacks.pgd(loss_fn, images, labels, eps=self.epsilon, step_size=self.step_size, steps=self.steps,
                           random_start=self.random_start, key=key)


def validate_config(config: ml_collections.ConfigDict) -> None:
    """ConfigError naming the config.adversarial_training key that is unknown or out of range."""
    spec = check_sub_dict(config, "adversarial_training", FIELDS)
    if spec.method not in METHODS:
        raise ConfigError(f"config.adversarial_training.method={spec.method!r} is not one of: "
                          f"{', '.join(repr(method) for method in METHODS)} ('' is off).")
    if not spec.method:
        return
    if not _number(spec.epsilon) or not 0 < spec.epsilon <= 255:
        raise ConfigError(f"config.adversarial_training.epsilon={spec.epsilon!r} must be in (0, 255] "
                          "(pixel units of the 0-255 image: 8 is the usual 8/255).")
    if not _number(spec.step_size) or spec.step_size < 0:
        raise ConfigError(f"config.adversarial_training.step_size={spec.step_size!r} must be >= 0 (0: the "
                          "method's default, 2.5 * epsilon / steps for pgd, 1.25 * epsilon for fgsm_rs).")
    if not isinstance(spec.steps, int) or isinstance(spec.steps, bool) or spec.steps < 1:
        raise ConfigError(f"config.adversarial_training.steps={spec.steps!r} must be an integer >= 1.")
    if not isinstance(spec.random_start, bool):
        raise ConfigError(f"config.adversarial_training.random_start={spec.random_start!r} must be True or False.")
    if spec.method == "fgsm_rs" and not spec.random_start:
        raise ConfigError("config.adversarial_training.random_start=False with method 'fgsm_rs': fast FGSM needs "
                          "its random start (without it, it overfits to the attack: catastrophic overfitting).")


_number = is_number
