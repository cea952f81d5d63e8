"""The one definition of a run directory's layout, for everything that writes or reads a run: training, `evaluate`,
`runs.Run`, `init_from`, the report and the sweep."""

from __future__ import annotations

import dataclasses
import os

from etils import epath

from imagenet_jax.storage.paths import run_path

METRICS = "metrics.jsonl"  # one JSON line per train log step and per eval set
CONFIG = "config.json"  # the resolved config of the run
CHECKPOINTS = "checkpoints"  # <step>/ Orbax checkpoints
EVAL = "eval"  # <set>/<step>/ files the evaluators write
EVALUATE_LOG = "evaluate.jsonl"  # in EVAL: the lines `evaluate` appends
REPORT = "report"  # index.html and its figures
EXPLAIN = "explain"  # <step>/ the `explain` command's pictures and explain.json


@dataclasses.dataclass(frozen=True)
class RunLayout:
    """The paths of one run's files (the run may be a bucket URL)."""

    root: epath.Path

    @classmethod
    def of(cls, workdir: str | os.PathLike) -> RunLayout:
        """The layout of the run in `workdir`."""
        return cls(run_path(workdir))

    @property
    def metrics(self) -> epath.Path:
        """WORKDIR/metrics.jsonl."""
        return self.root / METRICS

    @property
    def config(self) -> epath.Path:
        """WORKDIR/config.json."""
        return self.root / CONFIG

    @property
    def checkpoints(self) -> epath.Path:
        """WORKDIR/checkpoints (one folder per saved step)."""
        return self.root / CHECKPOINTS

    @property
    def eval(self) -> epath.Path:
        """WORKDIR/eval (evaluators' files, per set and step)."""
        return self.root / EVAL

    @property
    def evaluate_log(self) -> epath.Path:
        """WORKDIR/eval/evaluate.jsonl."""
        return self.root / EVAL / EVALUATE_LOG

    @property
    def report(self) -> epath.Path:
        """WORKDIR/report."""
        return self.root / REPORT

    @property
    def explain(self) -> epath.Path:
        """WORKDIR/explain (one folder per explained checkpoint step)."""
        return self.root / EXPLAIN
