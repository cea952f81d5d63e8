"""The flat augmentation keys became ops of config.train_preprocess (issue 20) with no change in behaviour: every
config file and variant is what it was, with the chain train_chain made; an old key names the op to write instead;
a run checkpointed before the change resumes."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from imagenet_jax.config import get, get_base_config
from imagenet_jax.config.files import load_config_file, load_config_module
from imagenet_jax.config.moved_keys import MOVED_KEYS, OLD_DEFAULTS, fold_moved_keys
from imagenet_jax.data import inputs
from imagenet_jax.errors import ConfigError
from imagenet_jax.experiment.validate import config_drift, refuse_config_drift, validate_config
from tests.conftest import REPO

# Recorded at bdc829b, before the keys moved: for every config file (and variant, and finetune.py:MODEL), the chain
# inputs.train_chain gave, and the sha256 of its config's to_json_best_effort() (json.dumps, sorted keys, compact)
# with the eleven flat keys dropped and train_preprocess set to that chain: what it must be now.
BEFORE = json.load(open(os.path.join(os.path.dirname(__file__), "configs_before_issue20.json")))


def _digest(config_json: dict) -> str:
    return hashlib.sha256(json.dumps(config_json, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# Keys added later at the value the code had before (config.task: the loop's only task then; issue 21's
# config.main_eval: the center-crop classification eval; config.init_from_layers: every matching array loaded).
ADDED_AT_OLD_BEHAVIOUR = {"task": "classification", "main_eval": {"type": "classification"}, "init_from_layers": [],
                          # issue 23's config.tune: trial -1 is an ordinary run, as every run was
                          "tune": {"storage": "", "study": "", "trial": -1, "pruner": "none", "metric": ""}}
# Keys added later whose default changed behaviour on purpose: issue 28's config.cpu_devices (0: command-line CPU
# runs split the batch over one host device per core; before, one device) changes how a step is run, not what it
# computes.
ADDED_WITH_NEW_DEFAULT = {"cpu_devices": 0}
# Issue 22: configs/default.py's main evaluation also writes the per-class and calibration files (the first report
# shows them); the configs built on it inherit this. Its metrics are what they were.
REPORT_MAIN_EVAL = {"type": "classification", "write": ["per_class", "calibration"]}
# Issue 21 gave vgg_table3 the paper's protocol: dense evaluation at Q, AlexNet's colour shift, net A's layers only.
# Everything else of it must be as it was.
VGG_TABLE3 = "configs/papers/vgg_table3.py"
VGG_COLOUR_SHIFT = "|pca_lighting(0.1)"
# Config files added after the record: nothing to compare with.
ADDED_SINCE = {"configs/papers/fixres.py", "configs/ablations/degradation.py"}
# Config files changed on purpose after the record, with why: only their chain's consistency is checked.
CHANGED_ON_PURPOSE = {
    "configs/papers/resnet_cifar.py": "issue 21: the paper's option-A shortcuts, option B as variants",
    "configs/ablations/fashion_mnist.py": "issue 21: no per-run HTML report (the sweep report is what they are for)",
}


def _json(argument: str) -> dict:
    config = json.loads(load_config_file(os.path.join(REPO, argument)).to_json_best_effort())
    if argument.startswith(VGG_TABLE3):
        assert config["main_eval"]["mode"] == "dense" and config["train_preprocess"].endswith(VGG_COLOUR_SHIFT)
        config["train_preprocess"] = config["train_preprocess"].removesuffix(VGG_COLOUR_SHIFT)
        config["main_eval"], config["init_from_layers"] = {"type": "classification"}, []
    if config.get("main_eval") == REPORT_MAIN_EVAL:
        config["main_eval"] = {"type": "classification"}
    for key, value in {**ADDED_AT_OLD_BEHAVIOUR, **ADDED_WITH_NEW_DEFAULT}.items():
        assert config.pop(key) == value, f"{argument}: config.{key}"
    return config


@pytest.mark.parametrize("argument", sorted(BEFORE))
def test_every_config_is_unchanged_and_its_chain_is_the_one_train_chain_made(argument):
    config = load_config_file(os.path.join(REPO, argument))
    if argument.split(":")[0] in CHANGED_ON_PURPOSE:
        assert config.train_preprocess == inputs.train_chain(config)
        return
    chain = config.train_preprocess.removesuffix(VGG_COLOUR_SHIFT) if argument.startswith(VGG_TABLE3) \
        else config.train_preprocess
    assert chain == inputs.train_chain(config).removesuffix(VGG_COLOUR_SHIFT) == BEFORE[argument]["train_chain"]
    assert _digest(_json(argument)) == BEFORE[argument]["config_sha256"], (
        f"{argument} differs from its config at bdc829b: compare with `git show bdc829b:{argument.split(':')[0]}`")


def test_every_config_file_and_variant_is_recorded():
    recorded = {argument.split(":")[0] for argument in BEFORE}
    for folder in ("configs", "configs/papers", "configs/ablations"):
        for name in sorted(os.listdir(os.path.join(REPO, folder))):
            path = f"{folder}/{name}"
            if name.endswith(".py") and path != "configs/imagenet.py" and path not in ADDED_SINCE:
                assert path in recorded, path
                if path in CHANGED_ON_PURPOSE:
                    continue
                variants = getattr(load_config_module(os.path.join(REPO, path)), "VARIANTS", ())
                assert {f"{path}:{variant}" for variant in variants} <= set(BEFORE), path


def test_each_imagenet_variant_is_the_old_per_model_file():
    variants = load_config_module(os.path.join(REPO, "configs", "imagenet.py")).variants()
    old_files = [model for model in variants if f"configs/{model}.py" in BEFORE]
    assert len(old_files) == 24  # every model that had a file then
    for model in old_files:
        assert _digest(_json(f"configs/imagenet.py:{model}")) == BEFORE[f"configs/{model}.py"]["config_sha256"], model
    assert _digest(_json("configs/imagenet.py")) == BEFORE["configs/resnet50.py"]["config_sha256"]


def test_the_base_config_has_no_flat_augmentation_key():
    assert set(MOVED_KEYS) == set(OLD_DEFAULTS) and len(MOVED_KEYS) == 11
    assert not set(MOVED_KEYS) & set(get_base_config().keys())


@pytest.mark.parametrize("changes, expected", [
    ({"color_jitter": 0.4}, 'config.color_jitter was removed: append "|color_jitter(0.4)" to config.train_preprocess.'),
    ({"randaugment_num_ops": 2, "randaugment_magnitude": 7.0},
     'config.randaugment_num_ops and config.randaugment_magnitude were removed: append "|randaugment(2, 7.0)" to '
     'config.train_preprocess.'),
    ({"randaugment_num_ops": 2}, 'append "|randaugment(2, 9.0)"'),  # the old default magnitude
    ({"rotation_range": 10, "zoom_range": 0.1},  # 10 as the old float key held it
     '''append "|random_affine(10.0, 0.0, 0.0, 0.1, 0.0, 'nearest')" to config.train_preprocess.'''),
    ({"autoaugment": "imagenet", "random_erasing": 0.25},
     '''append "|autoaugment('imagenet')|random_erasing(0.25)" to config.train_preprocess.'''),
    ({"fill_mode": "reflect"}, "config.fill_mode was removed: fill_mode='reflect' switched no augmentation on, so "
     'leave it out (augmentations are ops of config.train_preprocess now: "|random_affine(ROTATION, WIDTH_SHIFT, '
     'HEIGHT_SHIFT, ZOOM, SHEAR, FILL_MODE)").'),
])
def test_an_old_key_names_the_op_to_append(changes, expected):
    config = get_base_config()
    config.update(changes)
    with pytest.raises(ConfigError) as raised:
        validate_config(config)
    assert expected in str(raised.value) and "\n" not in str(raised.value)


def test_an_old_key_as_an_override_names_the_op_to_append():
    with pytest.raises(ConfigError, match=r'config.color_jitter was removed: append "\|color_jitter\(0.4\)"'):
        get(os.path.join(REPO, "configs", "default.py"), ["color_jitter=0.4"])


def _old_schema(argument: str, old_train_preprocess: str, **old_keys) -> dict:
    # The config a checkpoint of `argument` stored before the change: the old train_preprocess and all 11 keys.
    return {**_json(argument), "train_preprocess": old_train_preprocess, **OLD_DEFAULTS, **old_keys}


def test_folding_an_old_config_gives_the_chain_train_chain_made():
    every_key = _old_schema("configs/default.py", "random_resized_crop|flip_lr", rotation_range=15.0, zoom_range=0.1,
                            randaugment_num_ops=2, randaugment_magnitude=7.0, color_jitter=0.4, random_erasing=0.25)
    folded = fold_moved_keys(every_key)
    assert folded["train_preprocess"] == (  # train_chain's output at bdc829b (tests/data/test_augment.py then)
        "random_resized_crop|flip_lr|random_affine(15.0, 0.0, 0.0, 0.1, 0.0, 'nearest')|randaugment(2, 7.0)"
        "|color_jitter(0.4)|random_erasing(0.25)")
    assert not set(MOVED_KEYS) & set(folded)
    assert fold_moved_keys(_old_schema("configs/default.py", "flip_lr"))["train_preprocess"] == "flip_lr"
    assert fold_moved_keys(_old_schema("configs/default.py", " ", color_jitter=0.4))["train_preprocess"] == (
        "color_jitter(0.4)")


@pytest.mark.parametrize("argument, old_keys", [
    ("configs/papers/bag_of_tricks.py:resnet_d", {"color_jitter": 0.4}),
    ("configs/papers/resnet_strikes_back.py:a1", {"randaugment_num_ops": 2, "randaugment_magnitude": 7.0}),
    ("configs/resnet50.py", {}),
])
def test_a_run_checkpointed_with_the_old_keys_resumes(argument, old_keys):
    stored = _old_schema(argument, "random_resized_crop|flip_lr", **old_keys)
    current = _json(argument)
    assert config_drift(stored, current) == []
    refuse_config_drift(stored, current, "the checkpoint at step 5", allow_change=False)
    changed = {**current, "train_preprocess": current["train_preprocess"] + "|random_erasing(0.25)"}
    with pytest.raises(ConfigError) as raised:  # named with the chain the old run trained with
        refuse_config_drift(stored, changed, "the checkpoint at step 5", allow_change=False)
    assert f"train_preprocess ({current['train_preprocess']!r} -> {changed['train_preprocess']!r})" in str(
        raised.value)
