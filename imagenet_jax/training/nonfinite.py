"""NaN/Inf in training: stop with the step named, or (nonfinite_policy="skip") skip and keep the logs finite.

The train step flags each step's loss and gradient norm (metrics["finite"]); with "skip" it keeps the weights
and advances the counters (steps.skip_update). Here, on the host: the policy, and train-log averages that
leave skipped steps out, so metrics.jsonl never holds a NaN.
"""

from __future__ import annotations

import logging

import numpy as np

from imagenet_jax.errors import UserFacingError


class NonFiniteError(UserFacingError):
    """A NaN or Inf appeared in the loss or gradients; the last good checkpoint is untouched."""


def check_finite(window: list[dict], first_step: int, policy: str) -> None:
    """Raises NonFiniteError at the first non-finite step of `window` (steps from `first_step`) unless skipping."""
    for offset, metrics in enumerate(window):
        if metrics["finite"] < 1:
            bad = [key for key in ("loss", "grad_norm") if not np.isfinite(metrics[key])]
            step = first_step + offset
            if policy == "skip":
                logging.warning("step %d: non-finite %s; the update was skipped", step, " and ".join(bad))
                continue
            raise NonFiniteError(
                f"step {step}: {' and '.join(bad)} is not finite ({', '.join(f'{k}={metrics[k]}' for k in bad)}); "
                "stopped before saving, so the last checkpoint is good. Lower config.learning_rate, or pass "
                "--config.nonfinite_policy=skip to skip such steps."
            )


def average_train_metrics(window: list[dict]) -> dict[str, float]:
    """Means of the window's train metrics over its finite steps, and `skipped_steps`: how many were not finite.

    The learning rate is averaged over every step (it is finite and scheduled whether or not a step was
    skipped); the other metrics are left out when every step of the window was skipped.
    """
    kept = [metrics for metrics in window if metrics["finite"] >= 1]
    averaged_keys = [key for key in window[0] if key not in ("finite", "learning_rate")] if kept else []
    averages = {key: float(np.mean([metrics[key] for metrics in kept])) for key in averaged_keys}
    if "learning_rate" in window[0]:  # a task's step may log no rate
        averages["learning_rate"] = float(np.mean([metrics["learning_rate"] for metrics in window]))
    averages["skipped_steps"] = len(window) - len(kept)
    return averages
