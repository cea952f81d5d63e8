"""configs/papers/fixres.py: phase 2 starts from phase 1 at the test resolution, trains only the classifier and the
BatchNorm preceding the global pooling, and leaves every other weight and BatchNorm statistic bit-equal."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from imagenet_jax import models
from imagenet_jax.config.files import load_config_file, load_config_module
from imagenet_jax.sweep.runner import initialized_from
from imagenet_jax.training import transfer
from imagenet_jax.training.init_from import load_pretrained
from imagenet_jax.training.optim import param_rules
from tests.conftest import REPO, read_metrics

PATH = os.path.join(REPO, "configs", "papers", "fixres.py")


def _config(variant: str):
    return load_config_file(f"{PATH}:{variant}")


def test_phase_two_starts_from_phase_one_and_trains_and_tests_at_the_test_resolution():
    module = load_config_module(PATH)
    assert module.VARIANTS == {"train224": 77.0, "test384": 79.0, "fmnist_train24": None, "fmnist_test32": None}
    assert "ImageNet" in module.PAPER.protocol
    for phase1, phase2, r_train, r_test in (("train224", "test384", 224, 384),
                                           ("fmnist_train24", "fmnist_test32", 24, 32)):
        first, second = _config(phase1), _config(phase2)
        assert initialized_from(PATH, phase2) == phase1 and not first.init_from and not first.freeze
        assert (first.image_size, second.image_size, second.eval_image_size) == (r_train, r_test, 0)
        assert first.train_preprocess.startswith("random_resized_crop")
        assert second.train_preprocess == second.eval_preprocess == "resize_center_crop"  # test-time preprocessing
        assert second.model == first.model and dict(second.model_options) == dict(first.model_options)
        # One centre crop at the test resolution (the default config's main eval also writes its report files).
        assert second.main_eval.type == "classification" and set(second.main_eval) <= {"type", "write"}


@pytest.mark.parametrize("variant, size, last_bn", [("test384", 64, "stage4_block3/BatchNorm_2"),
                                                    ("fmnist_test32", 32, "stage3_block1/BatchNorm_1")])
def test_phase_two_freezes_all_but_the_classifier_and_the_batch_norm_before_the_pooling(variant, size, last_bn):
    config = _config(variant)
    model = models.create(config.model, num_classes=10, **config.model_options)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, size, size, 3)), train=False))
    paths = set(param_rules.paths(shapes["params"]))
    frozen = transfer.Freeze.from_config(config, 10).frozen_paths(shapes["params"])
    assert paths - frozen == {"head/kernel", "head/bias", f"{last_bn}/scale", f"{last_bn}/bias"}
    # It is the last BatchNorm of the last block's residual branch (torchvision's layer4[2].bn3 in ResNet-50).
    blocks = sorted({path.split("/")[0] for path in paths if path.startswith("stage")})
    branch = sorted(path.rpartition("/")[0] for path in paths if path.startswith(f"{blocks[-1]}/BatchNorm_"))
    assert branch[-1] == last_bn


def _flat(tree) -> dict[str, np.ndarray]:
    return {path: np.asarray(value) for path, value in traverse_util.flatten_dict(tree, sep="/").items()}


@pytest.mark.slow
def test_fine_tuning_changes_only_the_classifier_and_the_last_batch_norm_bit_for_bit(fashion_mnist_dir, tmp_path):
    from imagenet_jax.experiment.loop import train_and_evaluate

    tiny = {"data_dir": fashion_mnist_dir, "batch_size": 32, "num_train_steps": 3, "eval_split": "test[:64]",
            "log_every_steps": 1, "cache_dataset": False, "write_report": False}
    phase1, phase2 = str(tmp_path / "fmnist_train24"), str(tmp_path / "fmnist_test32")
    config = _config("fmnist_train24")
    config.update(tiny)
    train_and_evaluate(config, phase1)
    config = _config("fmnist_test32")
    config.update({**tiny, "init_from": phase1})
    final = train_and_evaluate(config, phase2)
    assert final["num_examples"] == 64
    assert {line["split"] for line in read_metrics(phase2)} == {"train", "test[:64]"}

    before, after = load_pretrained(phase1), load_pretrained(phase2)
    trained = {"head/kernel", "head/bias", "stage3_block1/BatchNorm_1/scale", "stage3_block1/BatchNorm_1/bias"}
    params_before, params_after = _flat(before["params"]), _flat(after["params"])
    assert set(params_before) == set(params_after) and trained <= set(params_before)
    for path, value in params_before.items():
        same = value.dtype == params_after[path].dtype and value.tobytes() == params_after[path].tobytes()
        assert same == (path not in trained), path
    stats_before, stats_after = _flat(before["batch_stats"]), _flat(after["batch_stats"])
    for path, value in stats_before.items():  # re-estimated at 32 px in the fine-tuned layer only
        same = value.tobytes() == stats_after[path].tobytes()
        assert same == (not path.startswith("stage3_block1/BatchNorm_1/")), path
