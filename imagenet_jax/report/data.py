"""What the report shows, read from a workdir: config, metrics.jsonl, and the per-class/calibration JSON files."""

from __future__ import annotations

import dataclasses
import json
import math

from imagenet_jax.errors import CheckpointError
from imagenet_jax.storage.files import read_json_lines, read_run_config
from imagenet_jax.storage.layout import RunLayout

# Metrics with a direction, by a word of their key (lower is checked first: "top1_error" is an error). Keys with
# neither (eta_seconds, elapsed_seconds, learning_rate, grad_norm, epoch, counts) get no "best": it means nothing.
LOWER_IS_BETTER = ("loss", "error", "ece", "mce", "_ce_", "nll", "brier", "data_wait_fraction")  # "_ce_": corruption
HIGHER_IS_BETTER = ("top1", "top5", "accuracy", "f1", "precision", "recall", "agreement", "auc", "per_second", "mfu")


@dataclasses.dataclass
class RunData:
    """One run's metrics and analysis files, as plain Python values."""

    workdir: str
    name: str
    config: dict
    rows: list[dict]
    per_class: dict | None = None  # newest WORKDIR/eval/<set>/<step>/per_class.json
    per_class_source: str = ""
    calibration: dict | None = None  # newest WORKDIR/eval/<set>/<step>/calibration.json
    calibration_source: str = ""

    def split_rows(self, split: str) -> list[dict]:
        """metrics.jsonl lines of one split ("train" or an eval set), in step order."""
        return sorted((row for row in self.rows if row.get("split") == split), key=lambda row: row["step"])

    @property
    def eval_sets(self) -> list[str]:
        """Eval sets that logged metrics, in first-seen order."""
        seen: dict[str, None] = {}
        for row in self.rows:
            if row.get("split") not in (None, "train"):
                seen.setdefault(row["split"], None)
        return list(seen)

    @property
    def main_eval_set(self) -> str | None:
        """The run's main eval set (config.eval_split, as the loop names it), else "test", else the first logged."""
        sets = self.eval_sets
        for name in (self.config.get("eval_split"), "test"):
            if name in sets:
                return name
        return sets[0] if sets else None


def numeric_metrics(row: dict) -> dict[str, float]:
    """The finite numeric metrics of a metrics.jsonl line (step, split and epoch left out)."""
    return {key: float(value) for key, value in row.items()
            if key not in ("step", "split", "epoch") and isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(float(value))}


def direction(key: str) -> str | None:
    """"min" or "max" for a metric whose best value means something, else None."""
    if any(word in key for word in LOWER_IS_BETTER):
        return "min"
    if any(word in key for word in HIGHER_IS_BETTER):
        return "max"
    return None


def best_and_last(rows: list[dict]) -> list[tuple[str, float | None, int | None, float, int]]:
    """(metric, best value, its step, last value, its step) per metric of one split's rows; best and its step are
    None for a metric without a direction."""
    table = []
    keys = sorted({key for row in rows for key in numeric_metrics(row)})
    for key in keys:
        points = [(row["step"], numeric_metrics(row)[key]) for row in rows if key in numeric_metrics(row)]
        best_step = best_value = None
        if (way := direction(key)) is not None:
            best_step, best_value = (min if way == "min" else max)(points, key=lambda point: point[1])
        last_step, last_value = points[-1]
        table.append((key, best_value, best_step, last_value, last_step))
    return table


def _newest(workdir: str, filename: str) -> tuple[dict | None, str]:
    # WORKDIR/eval/<set>/<step>/<filename>: the highest step wins (ties: the "test" set, then the last by name).
    root = RunLayout.of(workdir).eval
    if not root.exists():
        return None, ""
    candidates = []
    for set_dir in root.iterdir():
        if not set_dir.is_dir():
            continue
        for step_dir in set_dir.iterdir():
            if step_dir.name.isdigit() and (step_dir / filename).exists():
                candidates.append((int(step_dir.name), set_dir.name == "test", set_dir.name, step_dir / filename))
    if not candidates:
        return None, ""
    step, _, set_name, path = max(candidates, key=lambda candidate: candidate[:3])
    return json.loads(path.read_text()), f"{set_name} at step {step}"


def load_run_data(workdir: str, name: str | None = None) -> RunData:
    """Reads DIR/config.json, DIR/metrics.jsonl and the newest per-class and calibration files."""
    layout = RunLayout.of(workdir)
    config_file, metrics_file = layout.config, layout.metrics
    if not config_file.exists() and not metrics_file.exists():
        raise CheckpointError(f"{workdir} holds no run (no config.json or metrics.jsonl); train into it first.")
    config = read_run_config(config_file) if config_file.exists() else {}
    rows = read_json_lines(metrics_file)
    per_class, per_class_source = _newest(workdir, "per_class.json")
    calibration, calibration_source = _newest(workdir, "calibration.json")
    return RunData(workdir=str(workdir), name=name or layout.root.name, config=config, rows=rows, per_class=per_class,
                   per_class_source=per_class_source, calibration=calibration,
                   calibration_source=calibration_source)


def per_class_rows(per_class: dict) -> list[tuple[str, float, float, float, int]]:
    """(class, precision, recall, F1, support) rows sorted by F1, best first."""
    rows = list(zip(per_class["classes"], per_class["precision"], per_class["recall"], per_class["f1"],
                    per_class["support"]))
    return sorted(rows, key=lambda row: -float(row[3]))
