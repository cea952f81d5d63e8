"""Published training recipes as config builders; files in configs/ pick one and name the model."""

from __future__ import annotations

import ml_collections

from imagenet_jax.config.base import get_base_config


def modern_resnet(model: str, **model_options) -> ml_collections.ConfigDict:
    """Goyal et al. + "Bag of Tricks": batch 1024, Nesterov SGD 0.1 x b/256, 5-epoch warmup, cosine, LS 0.1, bf16."""
    config = get_base_config()
    config.model = model
    # Every ResNet ablation axis is spelled out, so `--config.model_options.stem=deep` etc. can override it.
    config.model_options = ml_collections.ConfigDict({
        "version": "v1.5", "stem": "imagenet", "shortcut": "projection", "residual": True,
        "zero_init_last_bn": True, **model_options})
    config.half_precision = True
    return config


def torchvision_classic(model: str, **model_options) -> ml_collections.ConfigDict:
    """torchvision's reference recipe for AlexNet/VGG/GoogLeNet: batch 256, SGD 0.01, step x0.1 every 30 epochs."""
    config = get_base_config()
    config.model = model
    config.model_options = ml_collections.ConfigDict(model_options)
    config.batch_size = 256
    config.learning_rate = 0.01
    config.nesterov = False
    config.schedule = "step"
    config.lr_step_epochs = (30.0, 60.0)
    config.warmup_epochs = 0.0
    config.label_smoothing = 0.0
    config.num_epochs = 90.0
    config.decay_bn_and_bias = True  # PyTorch's SGD(weight_decay=1e-4) decays every parameter
    return config


def vgg_paper(model: str, **model_options) -> ml_collections.ConfigDict:
    """Simonyan & Zisserman 2015: batch 256, SGD momentum 0.9, L2 5e-4, LR 0.01 divided by 10 three times, 74 epochs."""
    config = torchvision_classic(model, **model_options)
    config.weight_decay = 5e-4
    config.num_epochs = 74.0
    config.lr_step_epochs = (30.0, 50.0, 65.0)  # the paper divided on plateaus; these are where they fell
    return config
