"""ResNet-50 v1.5 on ImageNet (TFDS imagenet2012), the Goyal et al. / flax-example recipe.

    python -m imagenet_jax.main --config configs/resnet50.py --workdir DIR --config.data_dir=TFDS_DIR

Global batch 1024, SGD Nesterov momentum 0.9, LR 0.1 x batch/256 with 5 warmup epochs then cosine, weight
decay 1e-4 (not on BN or biases), label smoothing 0.1, 90 epochs, bf16 compute, zero-init of each block's last
BN scale.

Not measured here (no ImageNet run of this config in this repository). Published top-1 on the 50,000 validation
images for the closest recipes: 76.13% torchvision's ResNet-50 IMAGENET1K_V1 weights (step schedule, 90 epochs, no
label smoothing); 76.37% google/flax examples/imagenet on TPU v3-8 (batch 1024, warmup + cosine, 100 epochs, no
label smoothing; its README); 77.12 +/- 0.11% NVIDIA DeepLearningExamples ResNet50 v1.5 for PyTorch, 90 epochs, AMP
on DGX A100 (cosine, label smoothing 0.1, but momentum 0.875, LR 0.256 x b/256, weight decay 1/32768; its README).
"""

import os

import ml_collections

from imagenet_jax.config.files import load_config_file


def get_config() -> ml_collections.ConfigDict:
    """configs/imagenet.py:resnet50, under this file's name (default workdir runs/resnet50)."""
    return load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet.py:resnet50"))
