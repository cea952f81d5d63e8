"""MLPerf Training ResNet-50 v1.5: LARS at batch 3,200 to the benchmark's quality target, 75.9% top-1.

    python -m imagenet_jax.main --config configs/papers/mlperf_resnet.py --config.data_dir=TFDS_DIR

MLPerf is a benchmark, not a paper: the figure is the quality target every submission must reach (75.9% top-1 on
the 50,000 validation images, 224 center crop), and submissions tune within its rules (LARS, polynomial decay of
power 2, label smoothing 0.1, a few warmup epochs, ~35-41 epochs; e.g. TF model garden's LARS configs use a peak LR
of 9-10.8, 3-5 warmup epochs and weight decay 1.25e-5-5e-5). This config takes one such point at batch 3,200:
peak LR 10.0 (no further linear scaling), 5 warmup epochs, weight decay 5e-5, 37 epochs, BN and biases excluded from
LARS adaptation and decay, bf16, evaluation every 4 epochs.
"""

import ml_collections

from imagenet_jax.config.recipes import modern_resnet
from imagenet_jax.sweep.paper import Paper, select_variant

PAPER = Paper(
    title="MLPerf Training: ResNet-50 v1.5 with LARS",
    source="MLPerf Training rules (image classification), quality target",
    metric="top1",
    protocol="ImageNet validation, 224 center crop, target 75.9% top-1",
    dataset="ImageNet",
)
VARIANTS = {"lars_b3200": 75.9}


def get_config(variant: str = "lars_b3200") -> ml_collections.ConfigDict:
    """The single variant "lars_b3200"."""
    select_variant(VARIANTS, variant, "lars_b3200")
    config = modern_resnet("resnet50")
    config.batch_size = 3200
    config.num_epochs = 37.0
    config.learning_rate = 10.0
    config.lr_reference_batch_size = 0  # 10.0 is the peak at batch 3,200 itself
    config.optimizer = ml_collections.ConfigDict({
        "name": "lars", "kwargs": {"momentum": 0.9, "trust_coefficient": 0.001, "eps": 0.0}})
    config.weight_decay = 5e-5
    config.schedule = ml_collections.ConfigDict({
        "name": "polynomial", "warmup_epochs": 5.0, "kwargs": {"power": 2.0, "end_value": 1e-4}})
    config.label_smoothing = 0.1
    config.eval_every_steps = 4 * 1_281_167 // 3200
    return config
