"""A few evaluation images with the run's predicted and true labels (needs a checkpoint)."""

from __future__ import annotations

import numpy as np


def sample_predictions(workdir: str, count: int = 8) -> tuple[np.ndarray, list[str], list[str]]:
    """(uint8 images, true class names, predicted class names) of the first `count` eval images under the latest
    checkpoint; raises CheckpointError when the run has none."""
    from imagenet_jax.runs import load_run

    run = load_run(workdir)
    variables = run.variables("latest")  # raises before any data is read when there is no checkpoint
    batch = next(run.eval_batches(1, batch_size=count))
    keep = batch["mask"] & (batch["label"] >= 0)
    images, labels = batch["image"][keep][:count], batch["label"][keep][:count]
    predicted = np.argmax(run.logits(images, variables=variables), axis=-1)
    names = run.class_names
    return images, [names[int(label)] for label in labels], [names[int(index)] for index in predicted]
