"""per_class: precision/recall/F1/support from a confusion matrix counted by hand, and the step's matrix."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from imagenet_jax.evaluate import EvalState
from imagenet_jax.evaluators.per_class import confusion_step, report


def test_report_matches_a_hand_count():
    true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
    pred = np.array([0, 1, 0, 1, 1, 2, 0, 2, 1, 0])
    confusion = np.zeros((4, 4), np.int64)
    for t, p in zip(true, pred, strict=True):
        confusion[t, p] += 1
    stats = report(confusion)
    # Class 0 is predicted 4 times (twice for true 0, once each for true 2 and 3): precision 2/4.
    np.testing.assert_allclose(stats["precision"], [2 / 4, 2 / 4, 2 / 2, 0.0])
    np.testing.assert_allclose(stats["recall"], [2 / 3, 2 / 2, 2 / 4, 0.0])
    f1_0 = 2 * (2 / 4) * (2 / 3) / (2 / 4 + 2 / 3)
    np.testing.assert_allclose(stats["f1"], [f1_0, 2 * 0.5 * 1.0 / 1.5, 2 * 1.0 * 0.5 / 1.5, 0.0])
    np.testing.assert_array_equal(stats["support"], [3, 2, 4, 1])


class LogitsAreTheImage(nn.Module):
    """Logits = the flattened image (1x1x4 images, 4 classes): predictions set by the test's pixels."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        return x.reshape(x.shape[0], -1)


def test_confusion_step_counts_rows_true_columns_predicted_and_skips_masked():
    predicted = np.array([0, 1, 1, 3, 2, 0])
    images = (np.eye(4)[predicted] * 100).reshape(6, 1, 1, 4).astype(np.uint8)
    labels = np.array([0, 1, 2, 3, 2, 3])
    mask = np.array([True, True, True, True, True, False])
    step = confusion_step(LogitsAreTheImage(), num_classes=4, mean=(0.0,), std=(1.0,))
    sums = step(EvalState(params={}, batch_stats={}),
                {"image": jnp.asarray(images), "label": jnp.asarray(labels), "mask": jnp.asarray(mask)})
    expected = np.zeros((4, 4), np.int64)
    for t, p, keep in zip(labels, predicted, mask, strict=True):
        expected[t, p] += keep
    np.testing.assert_array_equal(np.asarray(sums["confusion"]), expected)
    assert int(sums["num_examples"]) == 5
