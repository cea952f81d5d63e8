"""Converted weights survive a save/load round trip together with the model they fit."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from imagenet_jax import models
from imagenet_jax.convert import load_converted, save_converted
from imagenet_jax.convert.tree import check_matches_model
from imagenet_jax.models import accounting


def random_variables(name: str, **options) -> dict:
    """Random numpy arrays shaped like `create(name, **options)`'s variables."""
    shapes = accounting.abstract_variables(models.create(name, **options), models.default_image_size(name))
    rng = np.random.default_rng(0)
    return jax.tree.map(lambda leaf: rng.standard_normal(leaf.shape).astype(np.float32), shapes)


def test_round_trip_keeps_every_array_and_the_model(tmp_path):
    variables = random_variables("resnet18", num_classes=10)
    path = str(tmp_path / "resnet18.msgpack")
    save_converted(variables, path, model_name="resnet18", model_options={"num_classes": 10, "bn_epsilon": 1e-5})
    loaded, model = load_converted(path, with_model=True)
    assert model == {"name": "resnet18", "options": {"num_classes": 10, "bn_epsilon": 1e-5}}
    assert jax.tree.structure(loaded) == jax.tree.structure(variables)
    for expected, actual in zip(jax.tree.leaves(variables), jax.tree.leaves(loaded), strict=True):
        assert actual.dtype == np.float32
        np.testing.assert_array_equal(actual, expected)
    check_matches_model(load_converted(path), "resnet18", num_classes=10)


def test_loaded_variables_run_the_model(tmp_path):
    variables = random_variables("resnet_small", num_classes=5)
    path = str(tmp_path / "resnet_small.msgpack")
    save_converted(variables, path)
    model = models.create("resnet_small", num_classes=5)
    logits = jax.jit(model.apply)(load_converted(path), np.zeros((1, 28, 28, 3), np.float32))
    assert logits.shape == (1, 5)


def test_other_files_are_rejected(tmp_path):
    from flax import serialization

    path = tmp_path / "not_converted.msgpack"
    path.write_bytes(serialization.msgpack_serialize({"params": {}}))
    with pytest.raises(ValueError, match="not a converted-weights file"):
        load_converted(str(path))


def test_shape_check_names_the_problem():
    variables = random_variables("resnet18")
    variables["params"]["head"]["kernel"] = np.zeros((512, 7), np.float32)
    del variables["batch_stats"]["stem_bn"]
    with pytest.raises(ValueError, match=r"missing \['batch_stats/stem_bn/mean'.*head/kernel: converted \(512, 7\)"):
        check_matches_model(variables, "resnet18")
