"""The classification task's own config keys: the model and its options, the dataset, the label and pixel
conventions (number of classes, label smoothing, normalization, ghost-BatchNorm groups)."""

from __future__ import annotations

import ml_collections

from imagenet_jax import models
from imagenet_jax.data import datasets
from imagenet_jax.errors import ConfigError

# Keys that became model options (with each model's own default), named in "unknown key" errors.
MOVED_KEYS = {"aux_loss_weight": "config.model_options.aux_loss_weight (each model's own default)"}


def validate_config(config: ml_collections.ConfigDict) -> None:
    """ConfigError naming config.model, config.model_options, config.dataset or a label/pixel key."""
    models.MODELS.get(config.model)  # config.model='resnt50' is not a registered model. Did you mean resnet50? ...
    if "dtype" in config.model_options or "num_classes" in config.model_options:
        raise ConfigError("config.model_options must not set dtype or num_classes: use config.half_precision "
                          "and config.num_classes")
    try:  # each model checks its own options when built (unknown names, bad values)
        models.create(config.model, **config.model_options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"config.model_options of {config.model!r}: {error}.") from None
    datasets.get(config.dataset)
    if config.bn_group_size:
        if config.bn_group_size < 0 or config.batch_size % config.bn_group_size:
            raise ConfigError(f"config.bn_group_size={config.bn_group_size} must be > 0 and divide "
                              f"config.batch_size={config.batch_size}.")
        try:
            models.create(config.model, bn_group_size=config.bn_group_size, **config.model_options)
        except TypeError:
            raise ConfigError(f"config.bn_group_size: model {config.model!r} has no ghost-BatchNorm option "
                              "(the ResNet family has); set it to 0.") from None
    if config.num_classes < 0:
        raise ConfigError(f"config.num_classes={config.num_classes} must be >= 0 (0 means the dataset's).")
    if not 0 <= config.label_smoothing < 1:
        raise ConfigError(f"config.label_smoothing={config.label_smoothing} must be in [0, 1).")
    for key in ("normalize_mean", "normalize_std"):
        if len(config[key]) not in (1, 3) or (key == "normalize_std" and min(config[key]) <= 0):
            raise ConfigError(f"config.{key}={tuple(config[key])} needs 1 or 3 values (stds > 0).")
