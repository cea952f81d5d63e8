"""`python -m imagenet_jax sweep report DIR`: per variant the mean over seeds with its 95% interval, its difference
from the baseline variant with its own interval, the paper's figure in a column named after the paper's dataset
(DIR/table.md, DIR/table.json), and the curves of every variant with a band over seeds (DIR/curves.png). Everything
is read from each run's metrics.jsonl and config.json; only finished runs enter the statistics."""

from __future__ import annotations

import dataclasses
import json
import os
from collections import defaultdict
from collections.abc import Sequence

from imagenet_jax.errors import ConfigError
from imagenet_jax.storage.files import read_json_lines
from imagenet_jax.storage.layout import RunLayout
from imagenet_jax.sweep.paper import METRICS, Paper, same_dataset
from imagenet_jax.sweep.runner import (
    SweepRun,
    is_finished,
    load_paper,
    read_json_file,
    read_sweep_file,
    sweep_runs,
)
from imagenet_jax.sweep.statistics import CONFIDENCE, Interval, difference_interval, mean_interval

Curve = list[tuple[float, float]]  # (epoch, or step when epochs are not logged; value)


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What one run (a variant with one seed) measured."""

    name: str
    seed: int | None
    finished: bool
    ours: float | None  # the paper's metric on the final evaluation of the main eval set, in percent
    eval_split: str
    train_error: float | None  # top-1 error (%) of the last logged train window: what degradation is about
    step: int
    epochs: float | None
    wall_seconds: float | None
    images_seen: int
    dataset: str
    train_curve: Curve  # train loss
    train_error_curve: Curve  # train top-1 error (%) per logged window
    eval_curve: Curve  # the paper's metric (%) per evaluation of the main eval set
    scored_by: str = ""  # the main eval set's evaluator (config.main_eval), e.g. "multicrop (mode=dense, resize=256)"


@dataclasses.dataclass(frozen=True)
class VariantSummary:
    """A variant over its finished seeds: the mean and interval of the metric, and the comparison with the baseline."""

    name: str
    paper: float | None
    runs: list[RunResult]
    ours: Interval | None  # None until a run has finished
    train_error: Interval | None
    difference: Interval | None  # ours - baseline (None for the baseline itself, or without finished runs)
    verdict: str  # "baseline", "better", "worse", "within seed noise", "no interval (n < 2)", "not run"

    @property
    def finished_runs(self) -> list[RunResult]:
        """The runs that trained to their last step (the ones the statistics use)."""
        return [run for run in self.runs if run.finished and run.ours is not None]


@dataclasses.dataclass(frozen=True)
class SweepReport:
    """Everything `sweep report` shows: the paper, how the sweep ran, and one summary per variant."""

    paper: Paper
    dataset: str  # the dataset our runs trained on
    seeds: int
    baseline: str
    overrides: list[str]
    variants: list[VariantSummary]

    @property
    def comparable_to_paper(self) -> bool:
        """Whether our numbers were measured on the paper's dataset (only then is "ours - paper" shown)."""
        return same_dataset(self.paper.dataset, self.dataset)

    @property
    def scored_by(self) -> set[str]:
        """The evaluators that scored the runs' main eval sets."""
        return {run.scored_by for summary in self.variants for run in summary.runs if run.scored_by}

    def variant(self, name: str) -> VariantSummary:
        """The summary of one variant."""
        return next(summary for summary in self.variants if summary.name == name)

    def to_json(self) -> dict:
        """The report's numbers as plain JSON (DIR/table.json)."""
        def interval(value: Interval | None) -> dict | None:
            return None if value is None else dataclasses.asdict(value)

        return {
            "paper": dataclasses.asdict(self.paper), "dataset": self.dataset, "seeds": self.seeds,
            "baseline": self.baseline, "overrides": self.overrides, "confidence": CONFIDENCE,
            "variants": [{
                "name": summary.name, "paper": summary.paper, "ours": interval(summary.ours),
                "train_error": interval(summary.train_error), "difference": interval(summary.difference),
                "verdict": summary.verdict,
                "runs": [{"seed": run.seed, "finished": run.finished, "ours": run.ours,
                          "train_error": run.train_error, "step": run.step, "wall_seconds": run.wall_seconds}
                         for run in summary.runs]}
                for summary in self.variants],
        }


def read_metrics(path: str) -> list[dict]:
    """The lines of a metrics.jsonl file (an empty list when the run has not logged yet)."""
    return read_json_lines(path)


def run_result(workdir: str, run: SweepRun, paper: Paper) -> RunResult:
    """Reads one run's outputs; the main eval set is the one whose lines track best_top1."""
    layout = RunLayout.of(run.directory(workdir))
    lines = read_metrics(os.fspath(layout.metrics))
    config = read_json_file(os.fspath(layout.config))  # absent when the run never started
    train = [line for line in lines if line.get("split") == "train"]
    main_eval = [line for line in lines if line.get("split") != "train" and "best_top1" in line]
    final = main_eval[-1] if main_eval else None
    last_step = max((line["step"] for line in lines), default=0)
    metric = METRICS[paper.metric]

    def x(line):
        return line["epoch"] if "epoch" in line else line["step"]

    return RunResult(
        name=run.variant,
        seed=run.seed,
        finished=is_finished(workdir, run),
        ours=metric(final) if final else None,
        eval_split=final["split"] if final else "",
        train_error=100.0 * (1.0 - train[-1]["top1"]) if train else None,
        step=last_step,
        epochs=max((line["epoch"] for line in lines if "epoch" in line), default=None),
        wall_seconds=max((line["elapsed_seconds"] for line in train if "elapsed_seconds" in line), default=None),
        images_seen=last_step * int(config.get("batch_size", 0)),
        dataset=str(config.get("dataset", "")),
        train_curve=[(x(line), line["loss"]) for line in train],
        train_error_curve=[(x(line), 100.0 * (1.0 - line["top1"])) for line in train if "top1" in line],
        eval_curve=[(x(line), metric(line)) for line in main_eval],
        scored_by=_evaluator(config.get("main_eval") or {"type": "classification"}) if config else "",
    )


def _evaluator(entry: dict) -> str:
    """ "classification (center crop)", or the type with its options: "multicrop (mode=dense, resize=256)"."""
    # "write" adds report files, not a different score.
    options = ", ".join(f"{key}={value}" for key, value in entry.items() if key not in ("type", "write"))
    return f"{entry.get('type', '')} ({options or 'center crop'})"


def summarize(name: str, figure: float | None, runs: list[RunResult], baseline: list[float] | None,
              lower_is_better: bool) -> VariantSummary:
    """One variant's statistics over its finished runs, compared with the baseline's values (None: it is one)."""
    finished = [run for run in runs if run.finished and run.ours is not None]
    values = [run.ours for run in finished]
    train_errors = [run.train_error for run in finished if run.train_error is not None]
    ours = mean_interval(values) if values else None
    difference = difference_interval(values, baseline) if values and baseline else None
    if baseline is None:
        verdict = "baseline"
    elif difference is None:
        verdict = "not run"
    elif difference.low is None:
        verdict = "no interval (n < 2)"
    elif not difference.excludes_zero:
        verdict = "within seed noise"
    else:
        verdict = "better" if (difference.mean < 0) == lower_is_better else "worse"
    return VariantSummary(name=name, paper=figure, runs=runs, ours=ours,
                          train_error=mean_interval(train_errors) if train_errors else None,
                          difference=difference, verdict=verdict)


def collect(workdir: str, baseline: str = "") -> SweepReport:
    """The paper and every variant's summary of the sweep in `workdir`."""
    sweep = read_sweep_file(workdir)
    paper, figures = load_paper(sweep["config"])
    names = list(sweep["variants"])
    baseline = baseline or paper.baseline or names[0]
    if baseline not in names:
        raise ConfigError(f"--baseline={baseline!r} is not a variant of the sweep in {workdir}; variants: "
                          f"{', '.join(names)}.")
    seeds = int(sweep.get("seeds", 1))
    by_variant: dict[str, list[RunResult]] = defaultdict(list)
    for run in sweep_runs(names, seeds):
        by_variant[run.variant].append(run_result(workdir, run, paper))
    baseline_values = [run.ours for run in by_variant[baseline] if run.finished and run.ours is not None]
    summaries = [summarize(name, figures.get(name), by_variant[name],
                           None if name == baseline else baseline_values, paper.lower_is_better)
                 for name in names]
    datasets = sorted({run.dataset for runs in by_variant.values() for run in runs if run.dataset})
    return SweepReport(paper=paper, dataset=", ".join(datasets), seeds=seeds, baseline=baseline,
                       overrides=list(sweep.get("overrides", [])), variants=summaries)


def markdown_table(report: SweepReport) -> str:
    """The report table: one row per variant, mean [95% CI] over seeds, the difference from the baseline."""
    paper = report.paper
    unit = paper.metric.replace("_", " ") + " %"
    paper_column = f"paper {unit} ({paper.dataset or 'dataset not stated'})"
    has_figures = any(summary.paper is not None for summary in report.variants)
    compare = report.comparable_to_paper and has_figures
    header = [
        f"# {paper.title}", "",
        f"Source: {paper.source}. Paper's protocol: {paper.protocol}.",
        f"Ours: {report.dataset or 'not run yet'}; the final evaluation of each run's main eval set, scored by "
        f"{'; '.join(sorted(report.scored_by)) or 'its main_eval'}{_overrides_note(report.overrides)}.",
        f"{report.seeds} seed(s) per variant; mean over finished runs with its {CONFIDENCE:.0%} t interval, and "
        f"Δ = variant − {report.baseline} with Welch's {CONFIDENCE:.0%} interval "
        f"({'lower' if paper.lower_is_better else 'higher'} is better).",
    ]
    if not report.comparable_to_paper and has_figures:
        header.append(f"The paper's figures are for {paper.dataset or 'another dataset'}, ours for "
                      f"{report.dataset or 'the data this sweep runs on'}: read them side by side, not as a "
                      "difference.")
    # The paper's column only when it has figures; "ours − paper" only when they are on our dataset.
    columns = ["variant", *([paper_column] if has_figures else []), f"ours {unit}: mean [95% CI]", "n",
               f"Δ vs {report.baseline} [95% CI]", "Δ beyond seed noise?"]
    if compare:
        columns.insert(3, "ours − paper")
    columns += ["train top-1 error %", "epochs", "steps", "wall time", "images seen"]
    header += ["", "| " + " | ".join(columns) + " |",
               "|" + "|".join("---" if column in ("variant", "Δ beyond seed noise?") else "---:" for column in columns)
               + "|"]
    rows = []
    for summary in report.variants:
        last = summary.finished_runs[-1] if summary.finished_runs else (summary.runs[-1] if summary.runs else None)
        cells = [summary.name, *([_number(summary.paper)] if has_figures else []), _interval(summary.ours),
                 str(summary.ours.n if summary.ours else 0),
                 "—" if summary.difference is None else _interval(summary.difference, signed=True),
                 summary.verdict]
        if compare:
            gap = summary.ours.mean - summary.paper if summary.ours and summary.paper is not None else None
            cells.insert(3, _number(gap, signed=True))
        walls = [run.wall_seconds for run in summary.finished_runs if run.wall_seconds is not None]
        cells += [_number(summary.train_error.mean if summary.train_error else None),
                  _number(last.epochs if last else None), str(last.step if last else 0),
                  _duration(sum(walls) / len(walls) if walls else None),
                  f"{last.images_seen if last else 0:,}"]
        rows.append("| " + " | ".join(cells) + " |")
    unfinished = [run for summary in report.variants for run in summary.runs if not run.finished and run.step]
    footer = []
    if unfinished:
        footer = ["", "Runs in progress (not in the statistics): " + ", ".join(
            f"{run.name}{'' if run.seed is None else f'/seed_{run.seed}'} at step {run.step}" for run in unfinished)
            + "."]
    return "\n".join(header + rows + footer) + "\n"


def band(curves: Sequence[Curve]) -> tuple[list[float], list[float], list[float], list[float]]:
    """(x, mean, low, high) over the curves at each x they share; low = high = mean where fewer than 2 have it."""
    by_x: dict[float, list[float]] = defaultdict(list)
    for curve in curves:
        for x, value in curve:
            by_x[x].append(value)
    xs, means, lows, highs = [], [], [], []
    for x in sorted(by_x):
        interval = mean_interval(by_x[x])
        xs.append(x)
        means.append(interval.mean)
        lows.append(interval.mean if interval.low is None else interval.low)
        highs.append(interval.mean if interval.high is None else interval.high)
    return xs, means, lows, highs


def plot_curves(report: SweepReport, path: str) -> None:
    """Eval metric, train top-1 error and train loss against epoch: per variant the mean over seeds, 95% band."""
    from imagenet_jax.report.figures import new_figure  # pyplot-free: a notebook keeps its inline backend

    figure = new_figure(figsize=(15, 4.5))
    axes = figure.subplots(1, 3)
    panels = ((axes[0], "eval_curve", f"eval {report.paper.metric.replace('_', ' ')} (%)"),
              (axes[1], "train_error_curve", "train top-1 error (%)"), (axes[2], "train_curve", "train loss"))
    for color_index, summary in enumerate(report.variants):
        color = f"C{color_index % 10}"
        runs = summary.finished_runs or [run for run in summary.runs if run.step]
        for axis, field, _ in panels:
            xs, means, lows, highs = band([getattr(run, field) for run in runs])
            if not xs:
                continue
            axis.plot(xs, means, color=color, marker="o" if field == "eval_curve" else None, markersize=3,
                      label=f"{summary.name} (n={len(runs)})")
            if any(low != high for low, high in zip(lows, highs, strict=True)):
                axis.fill_between(xs, lows, highs, color=color, alpha=0.2, linewidth=0)
    by_epoch = any(run.epochs is not None for summary in report.variants for run in summary.runs)
    for axis, _, title in panels:
        axis.set_xlabel("epoch" if by_epoch else "step")
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(f"{report.paper.title}: mean over seeds, band = {CONFIDENCE:.0%} t interval", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def write_report(workdir: str, baseline: str = "") -> tuple[str, str, str]:
    """Writes DIR/table.md, DIR/table.json and DIR/curves.png; returns their paths."""
    report = collect(workdir, baseline)
    table_path = os.path.join(workdir, "table.md")
    json_path = os.path.join(workdir, "table.json")
    curves_path = os.path.join(workdir, "curves.png")
    with open(table_path, "w") as stream:
        stream.write(markdown_table(report))
    with open(json_path, "w") as stream:
        json.dump(report.to_json(), stream, indent=2)
    plot_curves(report, curves_path)
    return table_path, json_path, curves_path


def _overrides_note(overrides: list[str]) -> str:
    return f", with overrides `{' '.join(overrides)}`" if overrides else ""


def _interval(value: Interval | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    if value.low is None:
        return _number(value.mean, signed)
    return f"{_number(value.mean, signed)} [{_number(value.low, signed)}, {_number(value.high, signed)}]"


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"

