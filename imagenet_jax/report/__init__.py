"""A run's HTML report: `python -m imagenet_jax.report --workdir DIR` writes DIR/report/index.html.

Config, training curves (step and epoch), best/last metrics, per-class table, confusion matrix, reliability
diagram, robustness tables and sample predictions, as one page with PNG figures beside it; no network needed.
"""

from __future__ import annotations

import logging

from imagenet_jax.report import figures, html
from imagenet_jax.report.data import RunData, load_run_data
from imagenet_jax.storage import run_path
from imagenet_jax.storage.layout import RunLayout

__all__ = ["write_report", "figure_paths", "report_at_end"]


def _write_figure(out, name: str, png: bytes, written: set[str]) -> str:
    (out / name).write_bytes(png)
    written.add(name)
    return name


def write_report(workdir: str, compare: tuple[str, ...] = (), out: str | None = None,
                 samples: bool = True) -> str:
    """Writes the report of `workdir` (curves overlaid with the runs in `compare`) and returns index.html's path.
    `out` defaults to DIR/report; `samples=False` skips the sample images (which restore a checkpoint)."""
    runs: list[RunData] = [load_run_data(workdir)] + [load_run_data(other) for other in compare]
    out_dir = run_path(out) if out else RunLayout.of(workdir).report
    out_dir.mkdir(parents=True, exist_ok=True)
    written: set[str] = set()
    curve_images = []
    for title, key, which in figures.curve_keys(runs):
        for x_axis in ("step", "epoch"):
            if not any(x_axis in row for run in runs for row in run.rows):
                continue
            png = figures.curves_figure(runs, key, title, which, x_axis)
            curve_images.append((_write_figure(out_dir, f"curve_{key}_{x_axis}.png", png, written),
                                 f"{title} against {x_axis}"))
    run = runs[0]
    sections = {"per_class": html.per_class_section(run)}
    if run.per_class is not None:
        name = _write_figure(out_dir, "confusion_matrix.png", figures.confusion_figure(run.per_class), written)
        sections["confusion"] = f"<p>{html.escape(run.per_class_source)}</p>" + html.image(name, "confusion matrix")
    else:
        sections["confusion"] = html.note("No confusion matrix (no per_class.json) in this run.")
    if run.calibration is not None:
        name = _write_figure(out_dir, "reliability.png", figures.reliability_figure(run.calibration), written)
        sections["calibration"] = (f"<p>{html.escape(run.calibration_source)}: ECE "
                                   f"{html.escape(html.number(run.calibration.get('ece', float('nan'))))}</p>"
                                   + html.image(name, "reliability diagram"))
    else:
        sections["calibration"] = html.note("No calibration evaluation (calibration.json) in this run.")
    sections["samples"] = html.note("Sample images skipped.")
    if samples:
        try:
            from imagenet_jax.report.samples import sample_predictions

            images, true_names, predicted_names = sample_predictions(workdir)
            name = _write_figure(out_dir, "samples.png", figures.samples_figure(images, true_names, predicted_names),
                                 written)
            sections["samples"] = ("<p>Latest checkpoint; title: predicted (true) label.</p>"
                                   + html.image(name, "evaluation images with predicted and true labels"))
        except Exception as error:  # noqa: BLE001  (no checkpoint or no data here: the rest of the report stands)
            logging.info("report: no sample images (%s)", error)
            sections["samples"] = html.note(f"No sample images: {error}")
    from imagenet_jax.report.explanations import explanations_section

    sections["explanations"] = explanations_section(
        workdir, lambda name, png: _write_figure(out_dir, name, png, written), samples)
    index = out_dir / "index.html"
    index.write_text(html.page(runs, curve_images, sections))
    for stale in set(path.name for path in out_dir.glob("*.png")) - set(written):  # figures of an older report
        (out_dir / stale).unlink()
    return str(index)


def figure_paths(index_path: str) -> dict[str, str]:
    """{figure name: PNG path} of the report at `index_path` (what a logger such as W&B uploads)."""
    folder = run_path(index_path).parent
    return {path.stem: str(path) for path in sorted(folder.glob("*.png"))}


def report_at_end(workdir: str) -> str | None:
    """write_report() as a run's last act: a failure is logged as a warning and None returned, never raised."""
    try:
        path = write_report(workdir)
        logging.info("report: %s", path)
        return path
    except Exception as error:  # noqa: BLE001  (the run itself succeeded; a broken report must not lose it)
        logging.warning("could not write the report of %s: %r", workdir, error)
        return None
