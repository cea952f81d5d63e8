"""AlexNet (torchvision's single-tower layout) on ImageNet, torchvision's reference recipe.

    python -m imagenet_jax.main --config configs/alexnet.py --workdir DIR --config.data_dir=TFDS_DIR

Published, not measured here: 56.52% top-1, torchvision's IMAGENET1K_V1 weights (its model card). The paper's LRN:
--config.model_options.lrn=True.
This is torchvision's recipe (random-resized crops, flips), not the paper's augmentation; the paper's (Sec. 4.1:
random 224 crops of the 256 image, flips, and the PCA colour shift, op pca_lighting in imagenet_jax/data/lighting.py):
--config.train_preprocess='scale_jitter_crop(256, 256)|flip_lr|pca_lighting(0.1)'.
"""

import os

import ml_collections

from imagenet_jax.config.files import load_config_file


def get_config() -> ml_collections.ConfigDict:
    """configs/imagenet.py:alexnet, under this file's name (default workdir runs/alexnet)."""
    return load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet.py:alexnet"))
