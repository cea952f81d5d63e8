"""Adversarial training on Fashion-MNIST, scored by the `adversarial` evaluator (PGD-10 at eps=25 of 255, step 6.25).

    python -m imagenet_jax.main --config configs/adversarial.py --workdir runs/fgsm_rs              # fast FGSM
    python -m imagenet_jax.main --config configs/adversarial.py:pgd --workdir runs/pgd              # PGD-5
    python -m imagenet_jax.main --config configs/adversarial.py:standard --workdir runs/standard    # no attack

Variants: "fgsm_rs" (the default: Wong et al. 2020, random start in the ball, one step of 1.25 eps), "pgd" (Madry
et al. 2018, 5 steps of 2.5 eps / 5 from a random start) and "standard" (clean training, the same evaluation).
eps=25 (~0.1 of the pixel range) is large enough to break an undefended Fashion-MNIST model, small enough that
the garment stays recognizable. Measured: RESULTS.md, "Adversarial training".
"""

import os

import ml_collections

from imagenet_jax.config.files import load_config_file

_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default.py")
EPSILON = 25.0
VARIANTS = ("fgsm_rs", "pgd", "standard")


def get_config(variant: str = "fgsm_rs") -> ml_collections.ConfigDict:
    """The default recipe, trained on attacked images (or not: "standard"), with robust accuracy at every eval."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} of configs/adversarial.py; one of: {', '.join(VARIANTS)}")
    config = load_config_file(_DEFAULT)
    config.evals = ml_collections.ConfigDict({"pgd": {
        "type": "adversarial", "attack": "pgd", "eps": EPSILON, "steps": 10, "step_size": EPSILON / 4,
        "random_start": True}})
    if variant != "standard":
        config.adversarial_training.method = variant
        config.adversarial_training.epsilon = EPSILON
        config.adversarial_training.steps = 5
        config.adversarial_training.step_size = 0.0  # the method's default
    return config
