"""Early stopping on any logged eval metric (`config.early_stopping`), with a counter that survives resumes.

The metric is "<split>/<key>" as logged in metrics.jsonl, e.g. "test/top1", "minival/loss", "test_ema/top1".
An evaluation improves when the value beats the best so far by more than `min_delta` (the first always does);
after `patience` evaluations in a row without improvement the run stops. mode "auto" minimizes keys naming a
loss or an error and maximizes the rest. The counters live in the checkpoint's meta, so a resumed run goes on
counting where the interrupted one was.
"""

from __future__ import annotations

import dataclasses

import ml_collections

from imagenet_jax.core import watched_metric
from imagenet_jax.core.watched_metric import resolve_mode
from imagenet_jax.errors import ConfigError

FIELDS = ("metric", "mode", "patience", "min_delta")


# When to stop, not what a step computes: a stopped run may go on with more patience.
RESUME_SAFE_KEYS = frozenset({"early_stopping"})


def validate_config(config: ml_collections.ConfigDict) -> None:
    """ConfigError naming the key for a malformed config.early_stopping."""
    settings = config.early_stopping
    watched_metric.check_fields(settings, "early_stopping", FIELDS)
    watched_metric.check_watch(settings, "early_stopping", bare_key_allowed=False)
    patience = settings.patience
    if not isinstance(patience, int) or isinstance(patience, bool) or patience < 0:
        raise ConfigError(f"config.early_stopping.patience={patience!r} must be an integer >= 0 (evaluations).")


@dataclasses.dataclass
class EarlyStopping:
    """Tracks the best value of one metric and the evaluations since it last improved."""

    metric: str
    mode: str  # "max" | "min"
    patience: int
    min_delta: float
    best: float | None = None
    best_step: int | None = None
    evaluations_without_improvement: int = 0
    improved: bool = False  # whether the latest evaluation was a new best

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict, saved: dict | None = None) -> EarlyStopping | None:
        """None when config.early_stopping.metric is ""; counters come from `saved` (checkpoint meta) if it matches."""
        settings = config.early_stopping
        if not settings.metric:
            return None
        stopper = cls(settings.metric, resolve_mode(settings.metric, settings.mode), settings.patience,
                      float(settings.min_delta))
        if saved and saved.get("metric") == stopper.metric and saved.get("mode") == stopper.mode:
            stopper.best, stopper.best_step = saved["best"], saved["best_step"]
            stopper.evaluations_without_improvement = saved["evaluations_without_improvement"]
        return stopper

    def state(self) -> dict:
        """The counters as JSON, for the checkpoint's meta."""
        return {"metric": self.metric, "mode": self.mode, "best": self.best, "best_step": self.best_step,
                "evaluations_without_improvement": self.evaluations_without_improvement}

    def check_splits(self, splits: list[str]) -> None:
        """ConfigError up front when the metric's split is not among the evaluated `splits`."""
        watched_metric.check_split("early_stopping", self.metric, splits)

    def update(self, step: int, logged: dict[str, dict]) -> None:
        """Reads the metric from this evaluation's `{split: metrics}` and updates the counters."""
        value = watched_metric.read("early_stopping", self.metric, logged)
        self.improved = watched_metric.improves(value, self.best, self.mode, self.min_delta)
        if self.improved:
            self.best, self.best_step, self.evaluations_without_improvement = value, step, 0
        else:
            self.evaluations_without_improvement += 1

    @property
    def should_stop(self) -> bool:
        """True once `patience` evaluations in a row brought no improvement."""
        return self.best_step is not None and self.evaluations_without_improvement >= self.patience \
            and self.evaluations_without_improvement > 0

    def reason(self, step: int) -> str:
        """Why the run stops, in one line."""
        return (f"early stopping at step {step}: {self.metric} ({self.mode}) has not improved by more than "
                f"{self.min_delta:g} for {self.evaluations_without_improvement} evaluations (patience "
                f"{self.patience}); best {self.best:.6g} at step {self.best_step}, whose checkpoint is kept")
