"""Parity measurements and the bounds PARITY.md claims for them.

Each parity test measures a relative error, appends it to $IMAGENET_JAX_PARITY_LOG when that is set, and fails
when the error exceeds the test's tolerance or the bound PARITY.md's table states for its row (reference, model,
input and mode), or when PARITY.md has no row for it. `python tests/convert/parity_report.py LOG` prints the
logged measurements as that table, and `... LOG --update PARITY.md [--command TEXT]` rewrites the file's table
and its "Measured ..." paragraph (date, machine, versions, command); `make test-parity` does all of it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from importlib import metadata

import numpy as np

from imagenet_jax.parallel import cpu_devices

LOG_VARIABLE = "IMAGENET_JAX_PARITY_LOG"
TOLERANCE = 1e-4
# Training-mode BatchNorm normalises by statistics of a few values (the last auxiliary-head layers see one per
# image), which amplifies float32 round-off and flax's E[x^2] - E[x]^2 variance by up to ~10x.
TRAIN_MODE_TOLERANCE = 5e-4
PARITY_MARKDOWN = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                               "PARITY.md")
TABLE_HEADER = "| reference | model | input, mode | max relative error | bound |"
# A new row's bound: 10x its first measurement (room for another CPU's round-off), rounded up to 1, 2 or 5 x 10^k,
# at most the test's tolerance. Existing rows keep their bound: a claim is loosened by editing PARITY.md by hand.
BOUND_MARGIN = 10.0

Row = tuple[str, str, str]  # (reference, model, "input, mode")


def relative_error(actual: np.ndarray, reference: np.ndarray) -> float:
    """max |actual - reference| / max |reference|: float32 round-off gives ~1e-6, a wrong weight gives ~1."""
    actual, reference = np.asarray(actual, np.float64), np.asarray(reference, np.float64)
    assert actual.shape == reference.shape, (actual.shape, reference.shape)
    return float(np.abs(actual - reference).max() / np.abs(reference).max())


def check_and_record(
    reference: str, model: str, detail: str, actual: np.ndarray, expected: np.ndarray, tolerance: float = TOLERANCE
) -> float:
    """Logs the measurement (when a log is configured), then asserts it is within `tolerance` and within the bound
    PARITY.md states for this row (a row missing from PARITY.md fails, except in a measuring run that writes it)."""
    error = relative_error(actual, expected)
    log_path = os.environ.get(LOG_VARIABLE)
    if log_path:
        with open(log_path, "a") as stream:
            record = {"reference": reference, "model": model, "detail": detail, "error": error, "tolerance": tolerance}
            stream.write(json.dumps(record) + "\n")
    assert error < tolerance, f"{reference} {model} ({detail}): relative error {error:.2e} over {tolerance:.0e}"
    bound = documented_bounds().get((reference, model, detail))
    if bound is None:
        assert log_path, (f"PARITY.md has no row for {reference} | {model} | {detail} (measured {error:.1e}): "
                          "`make test-parity` measures and adds it")
    else:
        assert error <= bound, (f"{reference} {model} ({detail}): relative error {error:.2e} exceeds the bound "
                                f"{bound:.0e} that PARITY.md claims")
    return error


def documented_bounds(markdown_path: str = PARITY_MARKDOWN) -> dict[Row, float]:
    """The "bound" column of PARITY.md's table, by (reference, model, input and mode)."""
    with open(markdown_path) as stream:
        lines = stream.read().splitlines()
    header = lines.index(TABLE_HEADER)
    bounds = {}
    for line in lines[header + 2:]:
        if not line.startswith("|"):
            break
        reference, model, detail, _, bound = (cell.strip() for cell in line.strip("|").split("|"))
        bounds[(reference, model, detail)] = float(bound)
    return bounds


def new_bound(error: float, tolerance: float) -> float:
    """BOUND_MARGIN x `error` rounded up to 1, 2 or 5 x 10^k, at most `tolerance`."""
    target = BOUND_MARGIN * max(error, 1e-12)
    exponent = math.floor(math.log10(target))
    steps = [mantissa * 10.0**power for power in (exponent, exponent + 1) for mantissa in (1, 2, 5)]
    return min(float(f"{next(step for step in steps if step >= target * (1 - 1e-9)):.0e}"), tolerance)


def measurements(log_path: str) -> dict[Row, tuple[float, float]]:
    """(worst error, tolerance) per row of the log."""
    worst: dict[Row, tuple[float, float]] = {}
    with open(log_path) as stream:
        for line in stream:
            row = json.loads(line)
            key = (row["reference"], row["model"], row["detail"])
            error = max(worst.get(key, (0.0, 0.0))[0], row["error"])
            worst[key] = (error, row.get("tolerance", TOLERANCE))
    return worst


def markdown_table(log_path: str, bounds: dict[Row, float] | None = None) -> str:
    """The logged measurements as PARITY.md's table: worst error per row, and its bound (`bounds`' or a new one)."""
    bounds = bounds or {}
    lines = [TABLE_HEADER, "|---|---|---|---:|---:|"]
    for key, (error, tolerance) in sorted(measurements(log_path).items()):
        bound = bounds.get(key, new_bound(error, tolerance))
        lines.append(f"| {' | '.join(key)} | {error:.1e} | {bound:.0e} |")
    return "\n".join(lines)


def update_report(markdown_path: str, log_path: str, command: str = "make test-parity") -> None:
    """Replaces the table and the "Measured ..." paragraph of `markdown_path` (PARITY.md) with this measurement."""
    table = markdown_table(log_path, documented_bounds(markdown_path)).splitlines()
    if len(table) <= 2:
        raise SystemExit(f"{log_path} holds no measurements: were the parity tests skipped?")
    with open(markdown_path) as stream:
        lines = stream.read().splitlines()
    start = lines.index(TABLE_HEADER)
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    lines[start:end] = table
    first = next(i for i, line in enumerate(lines) if line.startswith("Measured "))
    last = next((i for i in range(first, len(lines)) if not lines[i].strip()), len(lines))
    lines[first:last] = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {cpu_model()} ({os.cpu_count()} cores, "
        f"{platform.system()} {platform.machine()}; float32), with jax {_version('jax')}, flax {_version('flax')},",
        f"torch {_version('torch')}, torchvision {_version('torchvision')}, keras {_version('keras')} "
        f"(TensorFlow {_version('tensorflow-cpu')} backend), by:",
        f"`{command}`.",
    ]
    with open(markdown_path, "w") as stream:
        stream.write("\n".join(lines) + "\n")


def cpu_model() -> str:
    """The CPU's model name (imagenet_jax.parallel.cpu_devices.cpu_model), or "an unknown CPU"."""
    return cpu_devices.cpu_model() or "an unknown CPU"


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "(not installed)"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log", help="the JSON lines the parity tests appended to $IMAGENET_JAX_PARITY_LOG")
    parser.add_argument("--update", metavar="PARITY.md", help="rewrite this file's table and Measured paragraph")
    parser.add_argument("--command", default="make test-parity", help="the command that measured, for the record")
    arguments = parser.parse_args()
    if arguments.update:
        update_report(arguments.update, arguments.log, arguments.command)
    else:
        print(markdown_table(arguments.log, documented_bounds()))
