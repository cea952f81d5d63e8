"""Every ImageNet-sized model of the zoo on ImageNet (TFDS imagenet2012), one variant per registered model.

    python -m imagenet_jax.main --config configs/imagenet.py:vgg16_bn --config.data_dir=TFDS_DIR
    python -m imagenet_jax.main --config configs/imagenet.py:resnet50 --workdir DIR --config.data_dir=TFDS_DIR

The variants are the registry's models published at 224 px or more (`python -m imagenet_jax.models`); the
default workdir is runs/imagenet/VARIANT. Each model trains at its published resolution with its family's recipe
(imagenet_jax/config/recipes.py), chosen by the first matching row of RECIPES below:
- ResNet, ResNeXt, Wide ResNet: modern_resnet (Goyal et al. / flax example: batch 1024, Nesterov SGD 0.1 x b/256,
  5 warmup epochs then cosine, label smoothing 0.1, bf16, zero-init of each block's last BN scale);
- Inception-v3: the same modern recipe at 299 px (eval crop 299/342), with its auxiliary classifier;
- VGG configurations A-E (vgg_a ... vgg_e, vgg_a_lrn): vgg_paper (Simonyan & Zisserman 2015: scale jitter
  S~[256, 512], tested at Q=384, LR /10 on plateau, 74 epochs);
- AlexNet, GoogLeNet (with its auxiliary classifiers), torchvision's VGG-11 ... VGG-19(_bn), and any model no row
  names: torchvision_classic (batch 256, SGD 0.01, step x0.1 every 30 epochs, 90 epochs).
configs/resnet50.py, configs/vgg16.py and the other per-model files are these variants under their old names.
No variant has been trained on ImageNet in this repository: the top-1 figures in those files' docstrings are
published ones (torchvision's weights, the VGG paper), each labelled with its source.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import ml_collections

from imagenet_jax.config.recipes import modern_resnet, torchvision_classic, vgg_paper

DEFAULT = "resnet50"
MIN_IMAGE_SIZE = 224  # a registered model published at this resolution or more is an ImageNet model

# Per-model recipe differences as data: (model-name regex matched in full, recipe, model options given to the
# recipe, config keys set after it). The first matching row wins; the last row matches every model.
RECIPES: tuple[tuple[str, Callable[..., ml_collections.ConfigDict], dict[str, Any], dict[str, Any]], ...] = (
    (r"resnet\d+|resnext\d+_\d+x\d+d|wide_resnet\d+_\d+", modern_resnet, {}, {}),
    (r"inception_v3", modern_resnet, {}, {"model_options": {"aux_logits": True}, "crop_pct": 299 / 342}),
    (r"vgg_[a-e](_lrn)?", vgg_paper, {"batch_norm": False}, {}),
    (r"alexnet", torchvision_classic, {"lrn": False}, {}),  # the paper's LRN: --config.model_options.lrn=True
    (r"googlenet", torchvision_classic, {"aux_logits": True}, {}),
    (r".*", torchvision_classic, {}, {}),
)


def variants() -> list[str]:
    """The registered models published at MIN_IMAGE_SIZE px or more, sorted: this file's variants."""
    from imagenet_jax import models

    return [name for name in models.names() if models.default_image_size(name) >= MIN_IMAGE_SIZE]


def get_config(variant: str = DEFAULT) -> ml_collections.ConfigDict:
    """Model `variant` on ImageNet at its published resolution, with the recipe of its RECIPES row."""
    from imagenet_jax import models

    if variant not in variants():
        raise ValueError(f"unknown variant {variant!r} of configs/imagenet.py; one of: {', '.join(variants())}")
    recipe, options, changes = next((recipe, options, changes) for pattern, recipe, options, changes in RECIPES
                                    if re.fullmatch(pattern, variant))
    config = recipe(variant, **options)
    config.image_size = models.default_image_size(variant)
    for key, value in changes.items():
        config[key] = ml_collections.ConfigDict(value) if isinstance(value, dict) else value
    return config
