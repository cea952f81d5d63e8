"""Bad configs fail up front with one line naming the key and the fix."""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import pytest

from imagenet_jax.config import get_base_config, load_config_file
from imagenet_jax.errors import ConfigError
from imagenet_jax.experiment.validate import config_drift, validate_config
from tests.conftest import REPO, run_main


def load_config(name: str) -> ml_collections.ConfigDict:
    """Loads configs/NAME.py the way config_flags does."""
    return load_config_file(os.path.join(REPO, "configs", f"{name}.py"))


CONFIG_NAMES = sorted(name[:-3] for name in os.listdir(os.path.join(REPO, "configs")) if name.endswith(".py"))


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_shipped_configs_are_valid_and_build_their_model(name):
    config = load_config(name)
    validate_config(config, device_count=8)
    from imagenet_jax import models

    model = models.create(config.model, num_classes=10, **config.model_options)
    images = jax.ShapeDtypeStruct((2, config.image_size, config.image_size, 3), jnp.float32)
    logits, variables = jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x, train=False), images)
    assert (logits.shape, logits.dtype) == ((2, 10), jnp.float32)
    assert variables["params"]["head"]["kernel"].shape[-1] == 10
    assert f"--config configs/{name}.py" in open(os.path.join(REPO, "configs", f"{name}.py")).read()


def test_every_imagenet_model_has_a_config():
    # One file, a variant per registered model (tests/configs/test_imagenet.py): no file per model to add.
    from imagenet_jax import models

    imagenet_models = {name for name in models.names() if models.default_image_size(name) >= 224}
    configured = {load_config_file(f"{REPO}/configs/imagenet.py:{name}").model for name in imagenet_models}
    assert configured == imagenet_models


def test_resnet50_config_is_the_published_recipe():
    config = load_config("resnet50")
    assert (config.batch_size, config.num_epochs, config.schedule.warmup_epochs) == (1024, 90, 5)
    assert config.optimizer.to_dict() == {"name": "sgd", "kwargs": {"momentum": 0.9, "nesterov": True}}
    assert config.schedule.name == "cosine" and config.weight_decay == 1e-4
    assert config.weight_decay_multipliers == ((".*/(bias|scale)", 0.0),)
    assert config.label_smoothing == 0.1 and config.half_precision and config.model_options.zero_init_last_bn
    from imagenet_jax.training.optim import peak_learning_rate

    assert peak_learning_rate(config) == pytest.approx(0.4)


def _with(**changes) -> ml_collections.ConfigDict:
    config = get_base_config()
    config.unlock() if hasattr(config, "unlock") else None
    for key, value in changes.items():
        config[key] = value
    return config


@pytest.mark.parametrize(
    "changes, device_count, expected",
    [
        ({"lerning_rate": 0.1}, 1, "config.lerning_rate. Did you mean config.learning_rate"),
        ({"model": "resnet51"}, 1, "config.model='resnet51' is not a registered model. Did you mean"),
        ({"dataset": "imagenet2021"}, 1, "config.dataset='imagenet2021' is not a registered dataset"),
        ({"batch_size": 100}, 8, "config.batch_size=100 does not divide over 8 devices"),
        ({"eval_batch_size": 12}, 8, "config.eval_batch_size=12 does not divide over 8 devices"),
        ({"num_train_steps": 0}, 1, "zero training steps"),
        ({"num_epochs": 0.0}, 1, "zero training steps"),
        ({"optimizer": ml_collections.ConfigDict({"name": "adm", "kwargs": {}})}, 1,
         "config.optimizer.name='adm' is not a registered optimizer or an optax optimizer. Did you mean adam"),
        ({"train_preprocess": "random_resized_crop|flip_ud"}, 1,
         "config.train_preprocess: op 'flip_ud' is not a registered preprocessing op"),
        ({"label_smoothing": 1.0}, 1, "config.label_smoothing"),
        ({"aux_loss_weight": 0.4}, 1, "config.aux_loss_weight. It moved to config.model_options.aux_loss_weight"),
        ({"model": "googlenet", "model_options": ml_collections.ConfigDict({"aux_loss_weight": -1.0})}, 1,
         "config.model_options of 'googlenet': model option aux_loss_weight=-1.0 must be a finite number >= 0"),
        ({"model_options": ml_collections.ConfigDict({"stem": "deeep"})}, 1,
         "config.model_options of 'resnet50': ResNet option stem='deeep' is not one of"),
        ({"model_options": ml_collections.ConfigDict({"zero_init": True})}, 1,
         "config.model_options of 'resnet50': ResNet.__init__() got an unexpected keyword argument 'zero_init'"),
    ],
)
def test_bad_config_names_the_key(changes, device_count, expected):
    with pytest.raises(ConfigError, match=None) as raised:
        validate_config(_with(**changes), device_count=device_count)
    assert expected in str(raised.value)
    assert "\n" not in str(raised.value)


def test_config_drift_names_changed_keys_and_ignores_bookkeeping():
    stored = get_base_config().to_dict()
    current = {**stored, "batch_size": 512, "eval_every_steps": 7, "data_dir": "/elsewhere"}
    assert config_drift(stored, current) == ["batch_size"]


def test_cli_reports_bad_override_in_one_line_without_traceback(tmp_path):
    result = run_main(str(tmp_path / "work"), "--config.batch_size=0", timeout=120)
    assert result.returncode == 2
    assert "error: config.batch_size=0 must be > 0." in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_reports_unknown_override_key(tmp_path):
    result = run_main(str(tmp_path / "work"), "--config.no_such_key=3", timeout=120)
    assert result.returncode != 0
    assert "no_such_key" in result.stderr


def test_missing_imagenet_says_how_to_prepare_within_seconds(tmp_path):
    start = time.monotonic()
    result = run_main(str(tmp_path / "work"), f"--config.data_dir={tmp_path / 'tfds'}", config="configs/resnet50.py",
                      timeout=120)
    elapsed = time.monotonic() - start
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert "ILSVRC2012_img_train.tar" in message and "ILSVRC2012_img_val.tar" in message
    assert f"manual_dir={tmp_path / 'tfds' / 'downloads' / 'manual'}" in message
    assert f"data_dir={tmp_path / 'tfds'}" in message
    assert elapsed < 60


def test_per_device_batch_size_derives_the_global_one():
    from imagenet_jax.experiment.validate import resolve_batch_size

    config = get_base_config()
    config.per_device_batch_size = 32
    assert resolve_batch_size(config, device_count=8).batch_size == 256
    assert config.batch_size == 1024  # the caller's config is left alone
    config.per_device_batch_size = 0
    assert resolve_batch_size(config, device_count=8).batch_size == 1024
