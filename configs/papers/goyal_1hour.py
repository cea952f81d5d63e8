"""Goyal et al. 2017, "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour": ResNet-50 at batch 256 and 8k.

    python -m imagenet_jax.sweep --config configs/papers/goyal_1hour.py --workdir runs/goyal --config.data_dir=D
    python -m imagenet_jax.main --config configs/papers/goyal_1hour.py:kn8k --config.data_dir=D

Table 1 / Fig. 1 (top-1 validation error, %, mean of 5 runs): kn=256 23.60 ± 0.12, kn=8k 23.74 ± 0.09 — the linear
scaling rule (LR 0.1 x kn/256) with a 5-epoch gradual warmup keeps the small-batch accuracy at 32x the batch
(256 GPUs, 1 hour). Protocol: ResNet-50 (stride on the 3x3 conv, fb.resnet.torch = "v1.5"), BN statistics over
each GPU's n = 32 images (ghost BN, `bn_group_size=32`), zero-initialised last BN gamma per block, SGD momentum
0.9, weight decay 1e-4 on every parameter, LR divided by 10 at epochs 30, 60 and 80 of 90, scale + aspect-ratio
augmentation (random resized crop), flip, single 224 center crop at test.
Difference: warmup ramps from 0 (the paper starts at 0.1); with 8k on fewer devices, use
`--config.grad_accumulation_steps` only if BN's n = 32 grouping is kept (it is, by bn_group_size).
"""

import ml_collections

from imagenet_jax.config import get_base_config
from imagenet_jax.config.recipes import model_options
from imagenet_jax.sweep.paper import Paper, select_variant

PAPER = Paper(
    title="Goyal et al. 2017: ImageNet in 1 hour (linear scaling + warmup), ResNet-50",
    source="Goyal et al., arXiv:1706.02677, Table 1",
    metric="top1_error",
    protocol="ImageNet validation, 224 center crop, 90 epochs, mean of 5 runs",
    dataset="ImageNet",
)
VARIANTS = {"kn256": 23.60, "kn8k": 23.74}


def get_config(variant: str = "kn8k") -> ml_collections.ConfigDict:
    """"kn256" (batch 256, no warmup) or "kn8k" (batch 8192, 5-epoch gradual warmup)."""
    variant = select_variant(VARIANTS, variant, "kn8k")
    config = get_base_config()
    config.model = "resnet50"
    config.model_options = model_options(
        "resnet50", version="v1.5", stem="imagenet", shortcut="projection", residual=True, zero_init_last_bn=True)
    config.bn_group_size = 32  # BN over each worker's 32 images, as on the paper's 8-GPU servers
    config.batch_size = 256 if variant == "kn256" else 8192
    config.num_epochs = 90.0
    config.learning_rate = 0.1  # x batch/256 by the linear scaling rule
    config.lr_reference_batch_size = 256
    config.optimizer = ml_collections.ConfigDict({"name": "sgd", "kwargs": {"momentum": 0.9, "nesterov": False}})
    config.weight_decay = 1e-4
    config.weight_decay_multipliers = ()
    config.schedule = ml_collections.ConfigDict({
        "name": "step", "warmup_epochs": 0.0 if variant == "kn256" else 5.0,
        "kwargs": {"boundaries_epochs": (30.0, 60.0, 80.0), "factor": 0.1}})
    config.label_smoothing = 0.0
    return config
