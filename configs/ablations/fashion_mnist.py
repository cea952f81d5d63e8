"""Small-scale ablations on Fashion-MNIST that run on a 2-core CPU in minutes each (ABLATIONS.md has the results):
BatchNorm on/off in a VGG-style net; label smoothing and mixup against the default recipe; cosine vs step decay.

    python -m imagenet_jax sweep --config configs/ablations/fashion_mnist.py --workdir runs/ablations
    python -m imagenet_jax sweep report runs/ablations                      # each variant vs "baseline"
    python -m imagenet_jax sweep report runs/ablations --baseline vgg_bn    # BN off vs on

Every variant is the embedded default (configs/default.py: resnet_small, SGD Nesterov 0.1, cosine) trained for 1
epoch with 0.1 warmup epochs, with one change: "vgg_bn"/"vgg_no_bn" swap in vgg_small (VGG-style: 3 stages of two
3x3 convs, two 256-unit FC layers with dropout 0.5) with and without BN, both at LR 0.02;
"label_smoothing" adds smoothing 0.1; "mixup" adds Mixup alpha 0.2; "step_schedule" replaces cosine by x0.1 drops
at epochs 0.5 and 0.75. Three seeds per variant (Paper.seeds): the report states a sign only where the 95% interval
of the difference excludes zero. No paper figure: the report's "paper" column stays empty.
"""

import os

import ml_collections

from imagenet_jax.config.files import load_config_file
from imagenet_jax.config.recipes import model_options
from imagenet_jax.sweep.paper import Paper, select_variant

PAPER = Paper(
    title="Small-scale ablations on Fashion-MNIST (1 epoch each, 2-core CPU)",
    source="this repository, ABLATIONS.md",
    metric="top1_error",
    protocol="Fashion-MNIST test set (10,000 images), 28 px",
    dataset="Fashion-MNIST",
    seeds=3,
    baseline="baseline",
)
VARIANTS = {"vgg_bn": None, "vgg_no_bn": None, "baseline": None, "label_smoothing": None, "mixup": None,
            "step_schedule": None}


def get_config(variant: str = "baseline") -> ml_collections.ConfigDict:
    """One ablation variant of the default recipe."""
    variant = select_variant(VARIANTS, variant, "baseline")
    config = load_config_file(_DEFAULT)
    config.num_epochs = 1.0
    config.write_report = False  # the sweep report is what these runs are for
    config.schedule.warmup_epochs = 0.1  # a tenth of the budget, as the default's 0.5 of 4 epochs roughly is
    if variant.startswith("vgg"):
        config.model = "vgg_small"
        config.model_options = model_options("vgg_small", batch_norm=variant == "vgg_bn", dropout_rate=0.5)
        config.learning_rate = 0.02
    elif variant == "label_smoothing":
        config.label_smoothing = 0.1
    elif variant == "mixup":
        config.mixup_alpha = 0.2
    elif variant == "step_schedule":
        config.schedule = ml_collections.ConfigDict({
            "name": "step", "warmup_epochs": config.schedule.warmup_epochs,
            "kwargs": {"boundaries_epochs": (0.5, 0.75), "factor": 0.1}})
    return config


_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "default.py")
