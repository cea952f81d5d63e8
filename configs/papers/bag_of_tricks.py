"""He et al. 2019, "Bag of Tricks for Image Classification with CNNs", Tables 4-6 as one cumulative chain on
ResNet-50: each variant adds one trick to the previous one.

    python -m imagenet_jax.sweep --config configs/papers/bag_of_tricks.py --workdir runs/tricks --config.data_dir=D
    python -m imagenet_jax.main --config configs/papers/bag_of_tricks.py:resnet_d --config.data_dir=D

Top-1 validation accuracy (%) of the paper: baseline (batch 256) 75.87 (Table 4) -> linear_scaling (batch 1024,
LR 0.4) 75.17 -> warmup (5 epochs) 75.93 -> zero_gamma 76.19 -> no_bias_decay 76.16 -> fp16 76.21 (bf16 here)
-> resnet_b (stride on the 3x3 conv: v1.5) 76.66 -> resnet_c (3x3 deep stem) 76.87 -> resnet_d (avg-pool
shortcut) 77.16 (Table 5) -> cosine 77.91 -> label_smoothing (0.1) 78.31 -> mixup (alpha 0.2, 200 epochs) 79.15
(Table 6; the distillation rows are left out). Baseline protocol (Section 2): ResNet-50 v1, NAG (Nesterov) SGD
momentum 0.9, LR 0.1 x batch/256 divided by 10 at epochs 30, 60 and 90 of 120, weight decay 1e-4 on every
parameter, random resized crop (8-100% area, 3/4-4/3 ratio), flip, colour jitter 0.4 (and PCA noise 0.1, not
implemented here), evaluation: short side 256, center 224.
Differences: He-normal rather than Xavier initialisation; bf16 instead of fp16 for the "fp16" step.
"""

import ml_collections

from imagenet_jax.config import get_base_config
from imagenet_jax.config.recipes import model_options
from imagenet_jax.sweep.paper import Paper, select_variant

PAPER = Paper(
    title='"Bag of Tricks" (He et al. 2019): ResNet-50 tricks, cumulative',
    source="He et al., CVPR 2019, Tables 4, 5 and 6",
    metric="top1",
    protocol="ImageNet validation, 224 center crop of 256, 120 epochs (mixup: 200)",
    dataset="ImageNet",
)
VARIANTS = {
    "baseline": 75.87, "linear_scaling": 75.17, "warmup": 75.93, "zero_gamma": 76.19, "no_bias_decay": 76.16,
    "fp16": 76.21, "resnet_b": 76.66, "resnet_c": 76.87, "resnet_d": 77.16, "cosine": 77.91,
    "label_smoothing": 78.31, "mixup": 79.15,
}


def get_config(variant: str = "mixup") -> ml_collections.ConfigDict:
    """The chain up to and including `variant` (default: every trick)."""
    variant = select_variant(VARIANTS, variant, "mixup")
    chain = list(VARIANTS)[: list(VARIANTS).index(variant) + 1]
    config = get_base_config()
    config.model = "resnet50"
    config.model_options = model_options(
        "resnet50", version="v1", stem="imagenet", shortcut="projection", residual=True, zero_init_last_bn=False)
    config.train_preprocess = "random_resized_crop|flip_lr|color_jitter(0.4)"
    config.batch_size = 256
    config.num_epochs = 120.0
    config.learning_rate = 0.1
    config.lr_reference_batch_size = 256
    config.optimizer = ml_collections.ConfigDict({"name": "sgd", "kwargs": {"momentum": 0.9, "nesterov": True}})
    config.weight_decay = 1e-4
    config.weight_decay_multipliers = ()
    config.schedule = ml_collections.ConfigDict({
        "name": "step", "warmup_epochs": 0.0, "kwargs": {"boundaries_epochs": (30.0, 60.0, 90.0), "factor": 0.1}})
    config.label_smoothing = 0.0
    tricks = {
        "linear_scaling": lambda: config.update({"batch_size": 1024}),
        "warmup": lambda: config.schedule.update({"warmup_epochs": 5.0}),
        "zero_gamma": lambda: config.model_options.update({"zero_init_last_bn": True}),
        "no_bias_decay": lambda: config.update({"weight_decay_multipliers": ((".*/(bias|scale)", 0.0),)}),
        "fp16": lambda: config.update({"half_precision": True}),
        "resnet_b": lambda: config.model_options.update({"version": "v1.5"}),
        "resnet_c": lambda: config.model_options.update({"stem": "deep"}),
        "resnet_d": lambda: config.model_options.update({"shortcut": "avgpool"}),
        "cosine": lambda: setattr(config, "schedule", ml_collections.ConfigDict(
            {"name": "cosine", "warmup_epochs": config.schedule.warmup_epochs, "kwargs": {}})),
        "label_smoothing": lambda: config.update({"label_smoothing": 0.1}),
        "mixup": lambda: config.update({"mixup_alpha": 0.2, "num_epochs": 200.0}),
    }
    for trick in chain[1:]:
        tricks[trick]()
    return config
