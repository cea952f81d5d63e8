"""Parity measurements: tests append them to $IMAGENET_JAX_PARITY_LOG; `python tests/convert/parity_report.py LOG`
prints them as the markdown table of PARITY.md."""

from __future__ import annotations

import json
import os
import sys

import numpy as np

LOG_VARIABLE = "IMAGENET_JAX_PARITY_LOG"
TOLERANCE = 1e-4
# Training-mode BatchNorm normalises by statistics of a few values (the last auxiliary-head layers see one per
# image), which amplifies float32 round-off and flax's E[x^2] - E[x]^2 variance by up to ~10x.
TRAIN_MODE_TOLERANCE = 5e-4


def relative_error(actual: np.ndarray, reference: np.ndarray) -> float:
    """max |actual - reference| / max |reference|: float32 round-off gives ~1e-6, a wrong weight gives ~1."""
    actual, reference = np.asarray(actual, np.float64), np.asarray(reference, np.float64)
    assert actual.shape == reference.shape, (actual.shape, reference.shape)
    return float(np.abs(actual - reference).max() / np.abs(reference).max())


def check_and_record(
    reference: str, model: str, detail: str, actual: np.ndarray, expected: np.ndarray, tolerance: float = TOLERANCE
) -> float:
    """Asserts parity within `tolerance` and appends the measurement to the log when one is configured."""
    error = relative_error(actual, expected)
    log_path = os.environ.get(LOG_VARIABLE)
    if log_path:
        with open(log_path, "a") as stream:
            stream.write(json.dumps({"reference": reference, "model": model, "detail": detail, "error": error}) + "\n")
    assert error < tolerance, f"{reference} {model} ({detail}): relative error {error:.2e}"
    return error


def markdown_table(log_path: str) -> str:
    """The logged measurements as a markdown table, one row per (reference, model, detail), worst error kept."""
    worst: dict[tuple[str, str, str], float] = {}
    with open(log_path) as stream:
        for line in stream:
            row = json.loads(line)
            key = (row["reference"], row["model"], row["detail"])
            worst[key] = max(worst.get(key, 0.0), row["error"])
    lines = ["| reference | model | input, mode | max relative error |", "|---|---|---|---:|"]
    lines += [f"| {ref} | {model} | {detail} | {error:.1e} |" for (ref, model, detail), error in sorted(worst.items())]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table(sys.argv[1]))
