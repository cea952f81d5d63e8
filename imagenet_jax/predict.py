"""Top-k classes of image files with a trained run's model and its eval preprocessing.

    python -m imagenet_jax predict --workdir DIR [--checkpoint best|latest|STEP] [--top_k 5] [--json] img.jpg dir/

(`python -m imagenet_jax.predict ...` is the same command; its flags are in imagenet_jax/cli/predict.py.)

Directories are searched recursively for images. Images are preprocessed one by one on the host (the run's
`eval_preprocess` chain, e.g. resize + center crop) and classified in batches of --batch_size. A file that
cannot be decoded is reported on stderr (and under "skipped" with --json) and the others go on.
Exit codes: 0 every image classified, 1 some were skipped, 2 nothing to do (no run, checkpoint or image).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from imagenet_jax.errors import UserFacingError  # noqa: E402

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
EXIT_OK, EXIT_SOME_SKIPPED, EXIT_NOTHING_TO_DO = 0, 1, 2  # the last: a UserFacingError (imagenet_jax/cli)


def image_files(paths: Iterable[str]) -> list[str]:
    """The files named, and the image files under the directories named (recursively, sorted)."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            for root, _, names in sorted(os.walk(path)):
                found += [os.path.join(root, name) for name in sorted(names) if name.lower().endswith(IMAGE_SUFFIXES)]
        elif os.path.exists(path):
            found.append(path)
        else:
            raise UserFacingError(f"{path}: no such file or directory")
    return found


def eval_preprocessor(run):
    """fn(encoded image bytes) -> uint8 HxWxC array: the run's eval preprocessing (raises on undecodable bytes)."""
    import tensorflow as tf

    from imagenet_jax.data import inputs, preprocessing

    config = run.config
    chain = preprocessing.build(config.eval_preprocess, inputs.context(config, run.image_size, run.channels),
                                "eval_preprocess")
    compiled = tf.function(lambda data: chain(data, tf.zeros((2,), tf.int64)),
                           input_signature=[tf.TensorSpec((), tf.string)])
    return lambda data: compiled(tf.constant(data)).numpy()


def predict_files(run, files: Sequence[str], checkpoint: str | int = "best", top_k: int = 5,
                  batch_size: int = 64) -> tuple[list[dict], list[dict]]:
    """([{"path", "predictions": [{"class", "index", "probability"}]}], [{"path", "error"}]) for `files`."""
    import tensorflow as tf

    preprocess = eval_preprocessor(run)
    variables = run.variables(checkpoint)
    names = run.class_names
    top_k = max(1, min(top_k, run.num_classes))
    images, kept, skipped = [], [], []
    for path in files:
        try:
            with open(path, "rb") as stream:
                images.append(preprocess(stream.read()))
            kept.append(path)
        except (OSError, tf.errors.OpError) as error:
            message = re.sub(r"\{\{[^}]*\}\}\s*", "", getattr(error, "message", None) or str(error)).strip()
            skipped.append({"path": path, "error": (message.splitlines() or ["unreadable"])[0][:200]})
    results = []
    for begin in range(0, len(kept), batch_size):
        batch = np.stack(images[begin:begin + batch_size])
        padded = np.concatenate([batch, np.zeros((batch_size - len(batch), *batch.shape[1:]), batch.dtype)])
        logits = run.logits(padded, variables=variables)[:len(batch)]  # one compiled shape for every batch
        probabilities = _softmax(logits.astype(np.float64))
        for offset, row in enumerate(probabilities):
            top = np.argsort(-row, kind="stable")[:top_k]
            results.append({"path": kept[begin + offset], "predictions": [
                {"class": names[index], "index": int(index), "probability": float(row[index])} for index in top]})
    return results, skipped


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m imagenet_jax.predict`: the predict command (imagenet_jax/cli/predict.py); returns the exit code."""
    from imagenet_jax.entry_points import forward

    return forward("predict", argv, prog="python -m imagenet_jax.predict")


if __name__ == "__main__":
    sys.exit(main())
