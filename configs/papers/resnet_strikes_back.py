"""Wightman, Touvron & Jégou 2021, "ResNet strikes back: An improved training procedure in timm", Table 1:
ResNet-50 procedures A1, A2 and A3.

    python -m imagenet_jax.sweep --config configs/papers/resnet_strikes_back.py --workdir runs/rsb --config.data_dir=D
    python -m imagenet_jax.main --config configs/papers/resnet_strikes_back.py:a3 --config.data_dir=D

Top-1 (%) at 224 px test resolution: A1 80.4 (600 epochs), A2 79.8 (300 epochs), A3 78.1 (100 epochs, trained at
160 px). Protocol (Table 1): LAMB, batch 2048, LR 5e-3 (A3: 8e-3), weight decay 0.01 (A2, A3: 0.02) not on BN and
biases, 5 warmup epochs then cosine, binary cross-entropy on the (mixed) targets with target threshold 0.2, label
smoothing 0.1 (A1 only), random resized crop + flip, RandAugment M7 (A3: M6) with magnitude std 0.5, Mixup 0.2
(A2, A3: 0.1) and CutMix 1.0 (switch probability 0.5), stochastic depth 0.05 (A1, A2), repeated augmentation
with 3 repeats (A1, A2), test crop ratio 0.95.
Difference: RandAugment's magnitude is fixed (no std 0.5).
"""

import ml_collections

from imagenet_jax.config.recipes import modern_resnet
from imagenet_jax.sweep.paper import Paper, select_variant

PAPER = Paper(
    title="ResNet strikes back (Wightman et al. 2021): ResNet-50 A1 / A2 / A3",
    source="Wightman, Touvron & Jégou, arXiv:2110.00476, Table 1",
    metric="top1",
    protocol="ImageNet validation, 224 px, crop ratio 0.95",
    dataset="ImageNet",
)
VARIANTS = {"a1": 80.4, "a2": 79.8, "a3": 78.1}
_PROCEDURES = {  # epochs, train size, LR, weight decay, label smoothing, mixup, stochastic depth, RandAugment M,
    # repeated augmentation
    "a1": (600.0, 224, 5e-3, 0.01, 0.1, 0.2, 0.05, 7.0, 3),
    "a2": (300.0, 224, 5e-3, 0.02, 0.0, 0.1, 0.05, 7.0, 3),
    "a3": (100.0, 160, 8e-3, 0.02, 0.0, 0.1, 0.0, 6.0, 1),
}


def get_config(variant: str = "a3") -> ml_collections.ConfigDict:
    """Procedure "a1", "a2" or "a3"."""
    variant = select_variant(VARIANTS, variant, "a3")
    epochs, train_size, lr, weight_decay, smoothing, mixup, drop_path, magnitude, repeats = _PROCEDURES[variant]
    config = modern_resnet("resnet50", zero_init_last_bn=True, stochastic_depth_rate=drop_path)
    config.image_size = train_size
    config.eval_image_size = 224
    config.crop_pct = 0.95
    config.batch_size = 2048
    config.num_epochs = epochs
    config.learning_rate = lr
    config.lr_reference_batch_size = 2048
    config.optimizer = ml_collections.ConfigDict({"name": "lamb", "kwargs": {}})
    config.weight_decay = weight_decay
    config.schedule = ml_collections.ConfigDict({"name": "cosine", "warmup_epochs": 5.0, "kwargs": {}})
    config.loss = "sigmoid_xent"
    config.bce_target_threshold = 0.2
    config.label_smoothing = smoothing
    config.train_preprocess = f"random_resized_crop|flip_lr|randaugment(2, {magnitude})"
    config.mixup_alpha = mixup
    config.cutmix_alpha = 1.0
    config.mix_switch_prob = 0.5
    config.aug_repeats = repeats
    return config
