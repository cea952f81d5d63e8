"""ResNet-50 v1.5 on ImageNet (TFDS imagenet2012), the Goyal et al. / flax-example recipe.

    python -m imagenet_jax.main --config configs/resnet50.py --workdir DIR --config.data_dir=TFDS_DIR

Global batch 1024, SGD Nesterov momentum 0.9, LR 0.1 x batch/256 with 5 warmup epochs then cosine, weight
decay 1e-4 (not on BN or biases), label smoothing 0.1, 90 epochs, bf16 compute, zero-init of each block's last
BN scale. Expect ~76.3-77% top-1 on the 50,000 validation images (flax example: 76.37% in 100 epochs, ~4.4 h
on TPU v3-8; NVIDIA DLE: 77.12% in 90 epochs).
"""

import os

import ml_collections

from imagenet_jax.config.files import load_config_file


def get_config() -> ml_collections.ConfigDict:
    """configs/imagenet.py:resnet50, under this file's name (default workdir runs/resnet50)."""
    return load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet.py:resnet50"))
