"""The model registry: unknown names, per-model metadata, discovery of the architecture modules."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from imagenet_jax import models
from imagenet_jax.errors import ConfigError
from tests.conftest import REPO


def test_unknown_model_is_one_line_naming_config_model_with_close_names():
    with pytest.raises(models.UnknownModelError) as raised:
        models.create("resnt50")
    message = str(raised.value)
    assert message.startswith("config.model='resnt50' is not a registered model. Did you mean resnet50")
    assert "\n" not in message
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, ConfigError)
    with pytest.raises(models.UnknownModelError):
        models.default_image_size("resnt50")


def test_metadata_of_every_model():
    for name in models.names():
        assert models.default_image_size(name) >= models.min_image_size(name) >= 1
    assert (models.default_image_size("inception_v3"), models.min_image_size("inception_v3")) == (299, 75)
    assert models.default_image_size("resnet_small") == 28


def test_architectures_are_discovered_not_listed():
    # models/__init__.py imports no architecture module; the first lookup imports every module of the package.
    tree = ast.parse(Path(REPO, "imagenet_jax", "models", "__init__.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"imagenet_jax.models.conv_lowering", "imagenet_jax.models.from_config",
                        "imagenet_jax.models.outputs", "imagenet_jax.models.registry"}, imported
    models.names()
    assert {"imagenet_jax.models.resnet", "imagenet_jax.models.vgg", "imagenet_jax.models.alexnet"} <= set(sys.modules)
