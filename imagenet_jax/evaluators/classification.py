"""`classification`: loss, top-1 and top-5 of the set (ReaL label sets and class subsets as the set says).

Option `write`: analyses whose files it also writes from the same pass, with no metrics of their own (the log
keeps one line per set): "per_class" (per_class.json, the confusion matrix: evaluators/per_class.py) and
"calibration" (calibration.json with 15 bins: evaluators/calibration.py). The default config's main set writes
both, so every run's report has its per-class table, confusion matrix and reliability diagram.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import flax.linen as nn
import jax.numpy as jnp

from imagenet_jax.core import losses
from imagenet_jax.errors import ConfigError
from imagenet_jax.evaluators import calibration, per_class
from imagenet_jax.evaluators.base import Evaluator, count_metrics, count_sums, scored_mask, write_json
from imagenet_jax.evaluators.logits import correct, eval_logits
from imagenet_jax.evaluators.registry import register


def make_eval_step(
    model: nn.Module, *, num_classes: int, mean: Sequence[float], std: Sequence[float],
    class_subset: Sequence[int] | None = None, loss_name: str = "softmax_xent",
) -> Callable[[object, dict], dict]:
    """Returns eval_step(state, batch) -> sums of loss/top1/top5 over real (mask=True) examples and their count.

    `class_subset` scores only those model classes (labels then index into the subset: ImageNet-R/-A). A batch
    "label_set" [N, K] (-1 padded) counts a top-k prediction as correct when it is any of the set (ImageNet-ReaL);
    examples with an empty set are not scored. A batch "skipped" flag (unreadable images) is summed. The loss is
    the training loss `loss_name` (losses.py) against one-hot labels.
    """
    per_example_loss = losses.create(loss_name)
    classes = num_classes if class_subset is None else len(class_subset)

    def eval_step(state, batch: dict) -> dict:
        logits = eval_logits(model, state, batch["image"], mean, std, class_subset)
        mask = scored_mask(batch)
        weights = mask.astype(jnp.float32)
        return {
            "loss": jnp.sum(per_example_loss(logits, losses.soft_targets(batch["label"], classes)) * weights),
            "top1": jnp.sum(correct(logits, batch, 1) * weights),
            "top5": jnp.sum(correct(logits, batch, 5) * weights),
            **count_sums(batch, mask),
        }

    return eval_step


def averages(totals: dict, keys: Sequence[str]) -> dict[str, float]:
    """Each summed key divided by the number of scored examples."""
    count = max(int(totals["num_examples"]), 1)
    return {key: float(totals[key]) / count for key in keys}


@register("classification")
class Classification(Evaluator):
    """Loss, top-1 and top-5: the metrics every eval line has had (and, with `write`, analysis files)."""

    OPTIONS = {"write": ()}
    ANALYSES = ("per_class", "calibration")

    @classmethod
    def validate(cls, name: str, options: dict, where: str = "") -> None:
        """write must be a list of ANALYSES."""
        super().validate(name, options, where)
        write = options.get("write", ())
        if isinstance(write, str) or not all(item in cls.ANALYSES for item in write):
            raise ConfigError(f"{where or f'config.evals.{name}'}.write={write!r} must be a list of "
                              f"{', '.join(map(repr, cls.ANALYSES))} (e.g. ('per_class', 'calibration')).")

    def __init__(self, *args, **kwargs):
        """The eval step for this set's class subset (compiled on first use, or shared with the set's others)."""
        super().__init__(*args, **kwargs)
        context = self.context
        steps = {"": make_eval_step(
            context.model, num_classes=context.num_classes, mean=context.mean, std=context.std,
            class_subset=self.eval_set.class_subset, loss_name=context.config.loss)}
        if "per_class" in self.options["write"]:
            steps["per_class"] = per_class.confusion_step(
                context.model, num_classes=context.num_classes, mean=context.mean, std=context.std,
                class_subset=self.eval_set.class_subset)
        if "calibration" in self.options["write"]:
            steps["calibration"] = calibration.calibration_step(context, self.eval_set.class_subset)
        # One step: XLA computes the shared forward pass once (the analyses' own work is a few sums).
        self.pass_step = steps[""] if len(steps) == 1 else lambda state, batch: {
            name: step(state, batch) for name, step in steps.items()}

    def checked(self, totals: dict) -> dict:
        """The main sums (every example counted once), with the analyses' sums beside them."""
        if "" not in totals:
            return super().checked(totals)
        return {**super().checked(totals[""]), **{name: totals[name] for name in totals if name}}

    def finish(self, totals: dict, step: int) -> Iterator[tuple[str, float]]:
        """loss, top1, top5, num_examples (and the unlabeled/skipped counts when non-zero); writes the analyses."""
        if self.context.process_index == 0 and self.context.workdir:
            self._write_analyses(totals, step)
        yield from averages(totals, ("loss", "top1", "top5")).items()
        yield from count_metrics(totals).items()

    def _write_analyses(self, totals: dict, step: int) -> None:
        import numpy as np

        if "per_class" in totals:
            confusion = np.asarray(totals["per_class"]["confusion"], np.int64)
            per_class.write_files(self, step, confusion, per_class.report(confusion))
        if "calibration" in totals:
            sums = totals["calibration"]
            write_json(f"{self.output_dir(step)}/calibration.json",
                       calibration.reliability(sums["bin_count"], sums["bin_hits"], sums["bin_confidence"]))
