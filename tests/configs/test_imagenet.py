"""configs/imagenet.py: a variant for every ImageNet-sized registered model, the per-model files its aliases."""

from __future__ import annotations

import json
import os

import pytest

from imagenet_jax import models
from imagenet_jax.config.files import load_config_file, load_config_module
from imagenet_jax.experiment.validate import validate_config
from imagenet_jax.main import default_workdir
from tests.conftest import REPO

IMAGENET = os.path.join(REPO, "configs", "imagenet.py")
IMAGENET_MODELS = sorted(name for name in models.names() if models.default_image_size(name) >= 224)


def _json(argument: str) -> dict:
    return json.loads(load_config_file(argument).to_json_best_effort())


def test_the_variants_are_the_registrys_imagenet_models():
    assert IMAGENET_MODELS and load_config_module(IMAGENET).variants() == IMAGENET_MODELS


@pytest.mark.parametrize("model", IMAGENET_MODELS)
def test_every_imagenet_sized_registered_model_has_a_valid_variant(model):
    config = load_config_file(f"{IMAGENET}:{model}")
    assert (config.model, config.image_size) == (model, models.default_image_size(model))
    validate_config(config, device_count=8)


@pytest.mark.parametrize("model", [name for name in IMAGENET_MODELS
                                   if os.path.exists(os.path.join(REPO, "configs", f"{name}.py"))])
def test_a_per_model_file_is_its_imagenet_variant(model):
    assert _json(os.path.join(REPO, "configs", f"{model}.py")) == _json(f"{IMAGENET}:{model}")


def test_the_default_variant_is_resnet50_and_the_workdir_names_the_variant():
    assert _json(IMAGENET) == _json(f"{IMAGENET}:resnet50")
    assert default_workdir("configs/imagenet.py:vgg16_bn") == os.path.join("runs", "imagenet", "vgg16_bn")


def test_an_unknown_variant_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown variant 'resnet_small' of configs/imagenet.py; one of: alexnet"):
        load_config_file(f"{IMAGENET}:resnet_small")
