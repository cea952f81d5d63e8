"""`python -m imagenet_jax.sweep report DIR`: the paper's table beside ours (DIR/table.md) and the training
curves of every variant (DIR/curves.png), read from each variant's metrics.jsonl and config.json."""

from __future__ import annotations

import dataclasses
import json
import os

from imagenet_jax.errors import ConfigError
from imagenet_jax.storage.files import read_json_lines
from imagenet_jax.storage.layout import RunLayout
from imagenet_jax.sweep.paper import METRICS, Paper
from imagenet_jax.sweep.runner import SWEEP_FILE, load_paper


@dataclasses.dataclass(frozen=True)
class VariantResult:
    """What one variant's run measured."""

    name: str
    paper: float | None
    ours: float | None  # the paper's metric on our final evaluation of the main eval set, in percent
    eval_split: str
    train_error: float | None  # top-1 error (%) of the last logged train window: what degradation is about
    step: int
    epochs: float | None
    wall_seconds: float | None
    images_seen: int
    train_curve: list[tuple[float, float]]  # (epoch or step, train loss)
    eval_curve: list[tuple[float, float]]  # (epoch or step, eval top-1 in percent)
    scored_by: str = ""  # the main eval set's evaluator (config.main_eval), e.g. "multicrop (mode=dense, resize=256)"


def read_metrics(path: str) -> list[dict]:
    """The lines of a metrics.jsonl file (an empty list when the run has not logged yet)."""
    return read_json_lines(path)


def variant_result(workdir: str, name: str, paper: Paper, figure: float | None) -> VariantResult:
    """Reads one variant's outputs; the main eval set is the one whose lines track best_top1."""
    layout = RunLayout.of(os.path.join(workdir, name))
    lines = read_metrics(os.fspath(layout.metrics))
    config = _read_json(os.fspath(layout.config))  # absent when the variant never started
    train = [line for line in lines if line.get("split") == "train"]
    main_eval = [line for line in lines if line.get("split") != "train" and "best_top1" in line]
    final = main_eval[-1] if main_eval else None
    last_step = max((line["step"] for line in lines), default=0)

    def x(line):
        return line["epoch"] if "epoch" in line else line["step"]

    return VariantResult(
        name=name,
        paper=figure,
        ours=METRICS[paper.metric](final) if final else None,
        eval_split=final["split"] if final else "",
        train_error=100.0 * (1.0 - train[-1]["top1"]) if train else None,
        step=last_step,
        epochs=max((line["epoch"] for line in lines if "epoch" in line), default=None),
        wall_seconds=max((line["elapsed_seconds"] for line in train if "elapsed_seconds" in line), default=None),
        images_seen=last_step * int(config.get("batch_size", 0)),
        train_curve=[(x(line), line["loss"]) for line in train],
        eval_curve=[(x(line), 100.0 * line["top1"]) for line in main_eval],
        scored_by=_evaluator(config.get("main_eval") or {"type": "classification"}) if config else "",
    )


def _evaluator(entry: dict) -> str:
    """ "classification (center crop)", or the type with its options: "multicrop (mode=dense, resize=256)"."""
    options = ", ".join(f"{key}={value}" for key, value in entry.items() if key != "type")
    return f"{entry.get('type', '')} ({options or 'center crop'})"


def collect(workdir: str) -> tuple[Paper, list[VariantResult]]:
    """The paper and every variant's result of the sweep in `workdir`."""
    sweep_path = os.path.join(workdir, SWEEP_FILE)
    if not os.path.exists(sweep_path):
        raise ConfigError(f"{workdir} has no {SWEEP_FILE}: run `python -m imagenet_jax.sweep --config FILE "
                          f"--workdir {workdir}` first.")
    sweep = _read_json(sweep_path)
    paper, figures = load_paper(sweep["config"])
    return paper, [variant_result(workdir, name, paper, figures.get(name)) for name in sweep["variants"]]


def markdown_table(paper: Paper, results: list[VariantResult], overrides: list[str]) -> str:
    """The report table: one row per variant, the paper's figure beside ours."""
    unit = paper.metric.replace("_", " ") + " %"
    header = [
        f"# {paper.title}", "",
        f"Source: {paper.source}. Paper's protocol: {paper.protocol}.",
        f"Ours: final evaluation on each variant's main eval set, scored by "
        f"{'; '.join(sorted({result.scored_by for result in results if result.scored_by})) or 'its main_eval'}"
        f"{_overrides_note(overrides)}.", "",
        f"| variant | paper {unit} | ours {unit} | ours − paper | eval set | train top-1 error % | epochs | steps "
        "| wall time | images seen |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    rows = []
    for result in results:
        difference = result.ours - result.paper if result.ours is not None and result.paper is not None else None
        rows.append("| " + " | ".join([
            result.name, _number(result.paper), _number(result.ours), _number(difference, signed=True),
            result.eval_split or "—", _number(result.train_error), _number(result.epochs), str(result.step),
            _duration(result.wall_seconds),
            f"{result.images_seen:,}"]) + " |")
    return "\n".join(header + rows) + "\n"


def plot_curves(paper: Paper, results: list[VariantResult], path: str) -> None:
    """Eval top-1 and train loss against epoch (step when epochs are not logged), one line per variant."""
    from imagenet_jax.report.figures import new_figure  # pyplot-free: a notebook keeps its inline backend

    figure = new_figure(figsize=(12, 4.5))
    top1_axis, loss_axis = figure.subplots(1, 2)
    for result in results:
        if result.eval_curve:
            top1_axis.plot(*zip(*result.eval_curve, strict=True), marker="o", markersize=3, label=result.name)
        if result.train_curve:
            loss_axis.plot(*zip(*result.train_curve, strict=True), label=result.name)
    by_epoch = any(result.epochs is not None for result in results)
    for axis, title in ((top1_axis, "eval top-1 (%)"), (loss_axis, "train loss")):
        axis.set_xlabel("epoch" if by_epoch else "step")
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(paper.title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def write_report(workdir: str) -> tuple[str, str]:
    """Writes DIR/table.md and DIR/curves.png; returns their paths."""
    paper, results = collect(workdir)
    overrides = _read_json(os.path.join(workdir, SWEEP_FILE)).get("overrides", [])
    table_path, curves_path = os.path.join(workdir, "table.md"), os.path.join(workdir, "curves.png")
    with open(table_path, "w") as stream:
        stream.write(markdown_table(paper, results, overrides))
    plot_curves(paper, results, curves_path)
    return table_path, curves_path


def _overrides_note(overrides: list[str]) -> str:
    return f", with overrides `{' '.join(overrides)}`" if overrides else ""


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


def _read_json(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    with open(path) as stream:
        return json.load(stream)
