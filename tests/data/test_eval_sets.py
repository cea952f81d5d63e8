"""Several evaluation sets per run (label mapping, class subsets, label sets), the minival holdout,
and the resolution schedule (progressive resizing) with exact resume across a resolution change."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_jax import evaluators
from imagenet_jax.config import get_base_config
from imagenet_jax.data import inputs, pipeline
from imagenet_jax.errors import ConfigError
from imagenet_jax.evaluators.classification import make_eval_step
from tests.data.conftest import FOLDER_CLASSES, FOLDER_VAL_PER_CLASS


class _Classes:
    def __init__(self, names, labels=()):
        self.class_names, self._labels = tuple(names), np.asarray(labels, np.int64)


def test_label_mapping_by_class_name():
    train = _Classes(["a", "b", "c", "d", "e"])
    assert inputs.label_mapping(train, _Classes("abcde"), "x", False, "s") == (None, None)
    label_map, subset = inputs.label_mapping(train, _Classes(["d", "b"]), "x", False, "s")
    assert subset == (1, 3) and label_map.tolist() == [1, 0]  # "d" is model class 3, position 1 of the subset
    with pytest.raises(ConfigError, match="classes that the model was not trained on"):
        inputs.label_mapping(train, _Classes(["a", "zebra"]), "x", False, "s")


def test_eval_step_scores_a_class_subset_and_label_sets():
    class Fixed(nn.Module):
        @nn.compact
        def __call__(self, x, train=False):
            del train
            return x[:, 0, 0, :5]  # logits straight from the pixels

    logits = jnp.array([[9., 1., 8., 0., 0.], [0., 9., 0., 8., 7.], [1., 2., 3., 4., 5.]])
    batch = {"image": logits[:, None, None, :], "label": jnp.array([1, 0, 2]), "mask": jnp.array([True, True, False])}
    state = type("State", (), {"params": {}, "batch_stats": {}})()
    subset_step = make_eval_step(Fixed(), num_classes=5, mean=(0.,), std=(1.,), class_subset=(2, 3))
    sums = subset_step(state, batch | {"label": jnp.array([0, 1, 0])})  # classes 2 and 3 only
    assert float(sums["top1"]) == 2.0 and int(sums["num_examples"]) == 2
    real_step = make_eval_step(Fixed(), num_classes=5, mean=(0.,), std=(1.,))
    label_set = jnp.array([[2, 4, -1], [-1, -1, -1], [4, -1, -1]])  # example 2 has no real label
    sums = real_step(state, batch | {"label_set": label_set, "mask": jnp.array([True, True, True])})
    assert int(sums["num_examples"]) == 2 and int(sums["num_unlabeled"]) == 1
    assert float(sums["top1"]) == 1.0 and float(sums["top5"]) == 2.0  # argmax 0 not in {2, 4}; 4 in top-5


def test_eval_sets_of_a_folder_run_with_minival(image_folder):
    config = get_base_config()
    config.dataset = f"folder:{image_folder}"
    config.evals = {"minival": {"type": "classification", "holdout": 6},
                    "again": {"type": "per_class", "dataset": f"folder:{image_folder}", "split": "val"}}
    info = pipeline.load_dataset(config.dataset, "")
    sets = {eval_set.name: eval_set for eval_set, _, _ in evaluators.eval_sets(config, info)}
    assert list(sets)[0] == "val", "the main split comes first"
    val_examples = len(FOLDER_CLASSES) * FOLDER_VAL_PER_CLASS
    assert {name: s.num_examples for name, s in sets.items()} == {"val": val_examples, "minival": 6,
                                                                   "again": val_examples}
    trained = inputs.apply_holdout(config, info)
    train_files = set(trained.files(trained.train_split)[0])
    assert len(train_files) == info.num_examples("train") - 6
    assert not train_files & set(info.files(sets["minival"].split)[0]), "minival is never trained on"


def test_resolution_schedule_switches_size_and_resumes_exactly_across_the_switch(image_folder):
    config = get_base_config()
    config.update(dataset=f"folder:{image_folder}", batch_size=8, image_size_schedule="0:24,1:32")
    info = pipeline.load_dataset(config.dataset, "")
    steps_per_epoch = pipeline.steps_per_epoch(info, 8)
    assert inputs.size_segments(config, steps_per_epoch) == [(0, 24), (steps_per_epoch, 32)]
    assert inputs.eval_image_size(config) == 32
    stream = inputs.train_stream(config, info, start_step=0, steps_per_epoch=steps_per_epoch)
    batches = [next(stream) for _ in range(steps_per_epoch + 2)]
    assert [b["image"].shape[1] for b in batches] == [24] * steps_per_epoch + [32, 32]
    for start in (steps_per_epoch - 1, steps_per_epoch + 1):
        resumed = inputs.train_stream(config, info, start_step=start, steps_per_epoch=steps_per_epoch)
        for offset in range(2 if start < steps_per_epoch else 1):
            np.testing.assert_array_equal(next(resumed)["image"], batches[start + offset]["image"])
