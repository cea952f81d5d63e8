"""`calibration`: expected calibration error (Guo et al. 2017) and the reliability-diagram bins.

Top-1 confidence (max softmax) is binned into `bins` equal-width bins of [0, 1] (a confidence c falls in bin
min(floor(c * bins), bins - 1)); ECE = sum over bins of count/N * |accuracy - mean confidence|. Process 0 writes
WORKDIR/eval/<set>/<step>/calibration.json: {"bins": [{"lower", "upper", "count", "accuracy", "confidence"}, ...],
"ece": x} (empty bins have accuracy and confidence 0).
"""

from __future__ import annotations

from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_jax.errors import ConfigError
from imagenet_jax.evaluators.base import Evaluator, count_metrics, count_sums, scored_mask, write_json
from imagenet_jax.evaluators.logits import correct, eval_logits
from imagenet_jax.evaluators.registry import register


def bin_sums(probabilities: jax.Array, hits: jax.Array, weights: jax.Array, bins: int) -> dict:
    """Per-bin sums of example count, hits and confidence of top-1 confidences."""
    confidence = jnp.max(probabilities, -1)
    index = jnp.clip(jnp.floor(confidence * bins).astype(jnp.int32), 0, bins - 1)
    one_hot = jax.nn.one_hot(index, bins) * weights[:, None]
    return {"bin_count": jnp.sum(one_hot, 0), "bin_hits": hits @ one_hot, "bin_confidence": confidence @ one_hot}


def reliability(bin_count: np.ndarray, bin_hits: np.ndarray, bin_confidence: np.ndarray) -> dict:
    """{"bins": [...], "ece": x} from the per-bin sums."""
    bins = len(bin_count)
    total = max(float(np.sum(bin_count)), 1.0)
    rows, ece = [], 0.0
    for index in range(bins):
        count = float(bin_count[index])
        accuracy = float(bin_hits[index]) / count if count else 0.0
        confidence = float(bin_confidence[index]) / count if count else 0.0
        ece += count / total * abs(accuracy - confidence)
        rows.append({"lower": index / bins, "upper": (index + 1) / bins, "count": int(round(count)),
                     "accuracy": accuracy, "confidence": confidence})
    return {"bins": rows, "ece": ece}


def calibration_step(context, class_subset=None, bins: int = 15):
    """step(state, batch) -> the per-bin sums of the top-1 confidence and the example counts."""

    def step(state, batch):
        logits = eval_logits(context.model, state, batch["image"], context.mean, context.std, class_subset)
        mask = scored_mask(batch)
        weights = mask.astype(jnp.float32)
        return {**bin_sums(jax.nn.softmax(logits.astype(jnp.float32)), correct(logits, batch, 1) * weights,
                           weights, bins), **count_sums(batch, mask)}

    return step


@register("calibration")
class Calibration(Evaluator):
    """ECE and reliability bins of the top-1 softmax confidence."""

    OPTIONS = {"bins": 15}

    @classmethod
    def validate(cls, name: str, options: dict, where: str = "") -> None:
        """bins must be an integer >= 1."""
        super().validate(name, options, where)
        where = where or f"config.evals.{name}"
        bins = options.get("bins", 15)
        if not isinstance(bins, int) or isinstance(bins, bool) or bins < 1:
            raise ConfigError(f"{where}.bins={bins!r} must be an integer >= 1.")

    def __init__(self, *args, **kwargs):
        """The binning step (compiled on first use, or shared with the set's other evaluators)."""
        super().__init__(*args, **kwargs)
        self.pass_step = calibration_step(self.context, self.eval_set.class_subset, self.options["bins"])

    def finish(self, totals: dict, step: int) -> Iterator[tuple[str, float]]:
        """ece, num_examples; writes calibration.json on process 0."""
        result = reliability(totals["bin_count"], totals["bin_hits"], totals["bin_confidence"])
        if self.context.process_index == 0 and self.context.workdir:
            write_json(f"{self.output_dir(step)}/calibration.json", result)
        yield "ece", result["ece"]
        yield from count_metrics(totals).items()
