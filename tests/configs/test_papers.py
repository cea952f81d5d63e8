"""Every paper config in configs/papers/ (and configs/ablations/): each variant validates, declares the paper's
figure, and one variant per paper trains a few steps at tiny resolution on Fashion-MNIST through the training
loop."""

from __future__ import annotations

import glob
import math
import os

import pytest

from imagenet_jax.config.files import load_config_file, load_config_module
from imagenet_jax.errors import ConfigError
from imagenet_jax.experiment.validate import resolve_batch_size, validate_config
from imagenet_jax.sweep.paper import METRICS, Paper
from tests.conftest import REPO, read_metrics

PAPER_FILES = sorted(glob.glob(os.path.join(REPO, "configs", "papers", "*.py")) +
                     glob.glob(os.path.join(REPO, "configs", "ablations", "*.py")))
PAPERS = {os.path.splitext(os.path.basename(path))[0]: path for path in PAPER_FILES}


def test_the_five_papers_and_the_cifar_section_are_there():
    assert set(PAPERS) >= {"resnet_table2", "resnet_cifar", "vgg_table3", "bag_of_tricks", "resnet_strikes_back",
                           "goyal_1hour", "mlperf_resnet"}


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_every_variant_of_a_paper_config_validates_and_carries_the_papers_figure(name):
    module = load_config_module(PAPERS[name])
    assert isinstance(module.PAPER, Paper) and module.PAPER.metric in METRICS
    # The paper's figures are labelled with the dataset they were measured on (the report never subtracts ours
    # from another dataset's).
    assert module.PAPER.dataset or all(figure is None for figure in module.VARIANTS.values())
    assert module.__doc__ and "python -m imagenet_jax" in module.__doc__  # the command to run it
    for variant, figure in module.VARIANTS.items():
        assert figure is None or 0 < figure < 100
        if figure is not None:
            assert f"{figure}" in module.__doc__.replace("\n", " "), f"{name}:{variant} figure not in the docstring"
        config = resolve_batch_size(load_config_file(f"{PAPERS[name]}:{variant}"), 1)
        validate_config(config, 1)


def test_an_unknown_variant_names_the_valid_ones():
    with pytest.raises(ConfigError, match="plain34"):
        load_config_file(f"{PAPERS['resnet_table2']}:plain43")


# One representative variant per paper, trained 2 steps at 32 px on Fashion-MNIST (its optimizer, schedule,
# preprocessing and model options unchanged; RSB's A2 for its repeated augmentation).
_TINY_VARIANTS = {"resnet_table2": "plain18", "resnet_cifar": "plain20", "vgg_table3": "a",
                  "bag_of_tricks": "mixup", "resnet_strikes_back": "a2", "goyal_1hour": "kn8k",
                  "mlperf_resnet": "lars_b3200"}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(_TINY_VARIANTS))
def test_a_paper_variant_trains_a_few_steps_at_tiny_resolution(name, fashion_mnist_dir, tmp_path):
    from imagenet_jax.experiment.loop import train_and_evaluate

    config = load_config_file(f"{PAPERS[name]}:{_TINY_VARIANTS[name]}")
    config.update({
        "dataset": "fashion_mnist", "data_dir": fashion_mnist_dir, "image_size": 32, "num_classes": 0,
        "normalize_mean": (72.94,), "normalize_std": (90.02,), "batch_size": 32, "num_train_steps": 2,
        "eval_split": "test[:64]", "log_every_steps": 1, "cache_dataset": False, "half_precision": False,
        "bn_group_size": min(config.bn_group_size, 16)})
    config.init_from, config.init_from_layers = "", ()
    config.train_preprocess = config.train_preprocess.removesuffix("|pca_lighting(0.1)")  # RGB only: this is gray
    if config.main_eval.get("resize"):  # VGG's dense eval at Q=256: at image_size / crop_pct instead, tiny
        config.main_eval.resize = 0
    final = train_and_evaluate(config, str(tmp_path / name))
    assert final["num_examples"] == 64
    train_lines = [line for line in read_metrics(str(tmp_path / name)) if line["split"] == "train"]
    assert [line["step"] for line in train_lines] == [1, 2]
    assert all(math.isfinite(line["loss"]) and line["learning_rate"] >= 0 for line in train_lines)
