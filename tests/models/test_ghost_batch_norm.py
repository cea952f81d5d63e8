"""Ghost BatchNorm equals BatchNorm for one group, and normalizes each group on its own otherwise."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_jax import models
from imagenet_jax.config import get_base_config
from imagenet_jax.errors import ConfigError
from imagenet_jax.experiment.validate import validate_config
from imagenet_jax.models.ghost_batch_norm import GhostBatchNorm

X = jax.random.normal(jax.random.key(0), (8, 5, 5, 3)) * 3 + 1


def _apply(module, x):
    variables = module.init(jax.random.key(1), x)
    return module.apply(variables, x, mutable=["batch_stats"])


def test_one_group_equals_flax_batchnorm():
    ghost, ghost_stats = _apply(GhostBatchNorm(group_size=8), X)
    plain, plain_stats = _apply(nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5), X)
    np.testing.assert_allclose(ghost, plain, atol=1e-5)
    for key in ("mean", "var"):
        np.testing.assert_allclose(ghost_stats["batch_stats"][key], plain_stats["batch_stats"][key], atol=1e-5)


def test_each_group_is_normalized_on_its_own():
    out, _ = _apply(GhostBatchNorm(group_size=2), X)
    groups = np.asarray(out).reshape(4, 2, 5, 5, 3)
    np.testing.assert_allclose(groups.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(groups.var(axis=(1, 2, 3)), 1, atol=1e-3)


def test_resnet_option_keeps_the_parameter_tree():
    plain = models.create("resnet18", num_classes=10)
    ghost = models.create("resnet18", num_classes=10, bn_group_size=2)
    x = jnp.zeros((4, 32, 32, 3))
    trees = [jax.eval_shape(m.init, jax.random.key(0), x) for m in (plain, ghost)]
    paths = [[(jax.tree_util.keystr(path), leaf.shape) for path, leaf in jax.tree_util.tree_leaves_with_path(tree)]
             for tree in trees]
    assert paths[0] == paths[1]


def test_config_rejects_ghost_bn_for_models_without_it():
    config = get_base_config()
    config.model, config.bn_group_size = "vgg11", 32
    with pytest.raises(ConfigError, match="config.bn_group_size: model 'vgg11' has no ghost-BatchNorm option"):
        validate_config(config)
    config.model, config.bn_group_size = "resnet50", 48
    with pytest.raises(ConfigError, match="config.bn_group_size=48 must be > 0 and divide config.batch_size=1024"):
        validate_config(config)
