"""`per_class`: precision, recall, F1 and support per class and the confusion matrix (sklearn's report).

Process 0 writes WORKDIR/eval/<set>/<step>/:
- per_class.json: {"classes": [name, ...], "precision": [...], "recall": [...], "f1": [...], "support": [...],
  "confusion_matrix": [[...]]} — lists indexed by class; confusion_matrix[true][predicted] counts examples;
  a class never predicted has precision 0, never present has recall 0 (sklearn's zero_division=0);
- per_class.csv: class,precision,recall,f1,support, one row per class;
- confusion_matrix.json ({"classes", "confusion_matrix"}) and confusion_matrix.csv (header row of names).
The logged metrics are the macro averages, accuracy and num_examples. The report (imagenet_jax/report) reads
exactly these files.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_jax.evaluators.base import Evaluator, count_metrics, count_sums, scored_mask, write_json, write_text
from imagenet_jax.evaluators.logits import eval_logits
from imagenet_jax.evaluators.registry import register


def confusion_step(model, *, num_classes: int, mean, std, class_subset=None):
    """step(state, batch) -> {"confusion": [C, C] int32 counts (rows true, cols predicted), counts}."""

    def step(state, batch: dict) -> dict:
        logits = eval_logits(model, state, batch["image"], mean, std, class_subset)
        classes = logits.shape[-1]
        mask = scored_mask(batch)
        # A label of -1 (no such class in the model) one-hots to zeros: counted, in no confusion row.
        true = jax.nn.one_hot(batch["label"], classes, dtype=jnp.int32) * mask[:, None].astype(jnp.int32)
        predicted = jax.nn.one_hot(jnp.argmax(logits, -1), classes, dtype=jnp.int32)
        return {"confusion": true.T @ predicted, **count_sums(batch, mask)}

    return step


def report(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class from a confusion matrix (rows true, columns predicted)."""
    confusion = np.asarray(confusion, np.float64)
    hits = np.diag(confusion)
    support, predicted = confusion.sum(1), confusion.sum(0)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(hits), where=total > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}


def class_names(eval_set, num_classes: int) -> list[str]:
    """Names of the model classes scored on this set (its class subset's, when it has one)."""
    names = list(getattr(eval_set.info, "class_names", None) or [])
    if eval_set.class_subset is not None:
        # Subset positions index model classes; the eval set's own names may be a subset list already.
        return [str(position) for position in eval_set.class_subset] if len(names) != len(eval_set.class_subset) \
            else [str(name) for name in names]
    return [str(name) for name in names] if len(names) == num_classes else [str(i) for i in range(num_classes)]


@register("per_class")
class PerClass(Evaluator):
    """Per-class precision/recall/F1/support and the confusion matrix, as files; macro averages as metrics."""

    OPTIONS = {}

    def __init__(self, *args, **kwargs):
        """The confusion-matrix step (compiled on first use, or shared with the set's other evaluators)."""
        super().__init__(*args, **kwargs)
        context = self.context
        self.pass_step = confusion_step(context.model, num_classes=context.num_classes, mean=context.mean,
                                        std=context.std, class_subset=self.eval_set.class_subset)

    def finish(self, totals: dict, step: int) -> Iterator[tuple[str, float]]:
        """macro_precision, macro_recall, macro_f1, accuracy, num_examples; writes the files on process 0."""
        confusion = np.asarray(totals["confusion"], np.int64)
        stats = report(confusion)
        if self.context.process_index == 0 and self.context.workdir:
            write_files(self, step, confusion, stats)
        yield "macro_precision", float(stats["precision"].mean())
        yield "macro_recall", float(stats["recall"].mean())
        yield "macro_f1", float(stats["f1"].mean())
        yield "accuracy", float(np.trace(confusion) / max(confusion.sum(), 1))
        yield from count_metrics(totals).items()


def write_files(evaluator: Evaluator, step: int, confusion: np.ndarray, stats: dict) -> None:
    """The four report files of one evaluation, in the evaluator's WORKDIR/eval/<set>/<step>/."""
    names = class_names(evaluator.eval_set, confusion.shape[0])
    directory = evaluator.output_dir(step)
    payload = {"classes": names, **{key: value.tolist() for key, value in stats.items()},
               "confusion_matrix": confusion.tolist()}
    write_json(f"{directory}/per_class.json", payload)
    write_json(f"{directory}/confusion_matrix.json", {"classes": names, "confusion_matrix": confusion.tolist()})
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["class", "precision", "recall", "f1", "support"])
    for index, name in enumerate(names):
        writer.writerow([name, f"{stats['precision'][index]:.6f}", f"{stats['recall'][index]:.6f}",
                         f"{stats['f1'][index]:.6f}", int(stats["support"][index])])
    write_text(f"{directory}/per_class.csv", rows.getvalue())
    matrix = io.StringIO()
    writer = csv.writer(matrix)
    writer.writerow(["true\\predicted", *names])
    for name, row in zip(names, confusion.tolist(), strict=True):
        writer.writerow([name, *row])
    write_text(f"{directory}/confusion_matrix.csv", matrix.getvalue())
