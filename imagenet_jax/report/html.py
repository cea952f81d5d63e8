"""The report's HTML: one self-contained page (figures are PNG files beside it; no scripts, no network)."""

from __future__ import annotations

import json
from html import escape

from imagenet_jax.report.data import RunData, best_and_last, numeric_metrics, per_class_rows

STYLE = """body{font-family:sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}.figures img{margin:4px;vertical-align:top}
.headline span{display:inline-block;margin-right:2em;font-size:1.3em}.note{color:#777;font-style:italic}
pre{background:#f7f7f7;padding:1em;max-height:30em;overflow:auto}"""


def number(value: float) -> str:
    """How every metric is shown: 4 decimals, or an integer as is."""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1):
        return str(int(value))
    return f"{value:.4f}"


def table(header: list[str], rows: list[list], css_id: str = "") -> str:
    """An HTML table, every cell escaped (numbers through number())."""
    def cell(value) -> str:
        if value is None:
            return "\u2014"  # no value: a metric without a direction has no best
        return escape(number(value) if isinstance(value, int | float) else str(value))

    attribute = f' id="{escape(css_id)}"' if css_id else ""
    head = "".join(f"<th>{escape(name)}</th>" for name in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(value)}</td>" for value in row) + "</tr>" for row in rows)
    return f"<table{attribute}><tr>{head}</tr>{body}</table>"


def image(filename: str, alt: str) -> str:
    """An <img> of a figure file beside index.html."""
    return f'<img src="{escape(filename)}" alt="{escape(alt)}">'


def note(text: str) -> str:
    """A one-line note (why a section is absent)."""
    return f'<p class="note">{escape(text)}</p>'


def headline(run: RunData) -> str:
    """The main eval set's last top-1/top-5/loss and the best top-1, each tagged with its metrics.jsonl key."""
    main = run.main_eval_set
    if main is None:
        return note("No evaluation logged yet.")
    last = run.split_rows(main)[-1]
    spans = []
    for key in ("top1", "top5", "loss"):
        if key in last:
            spans.append(f'<span data-split="{escape(main)}" data-key="{escape(key)}" data-step="{last["step"]}">'
                         f'{escape(main)} {escape(key)}: <b>{escape(number(last[key]))}</b></span>')
    best = max((row for row in run.split_rows(main) if "top1" in row), key=lambda row: row["top1"], default=None)
    if best is not None:
        spans.append(f'<span data-split="{escape(main)}" data-key="best_top1" data-step="{best["step"]}">'
                     f'best top1: <b>{escape(number(best["top1"]))}</b> (step {best["step"]})</span>')
    return f'<div class="headline">{"".join(spans)}</div><p>Last step: {last["step"]}</p>'


def metrics_tables(run: RunData) -> str:
    """Best and last value of every metric, per split; then every eval set's last line as its own table (this is
    where corruption and adversarial results appear, whatever their keys)."""
    parts = []
    for split in ["train", *run.eval_sets]:
        rows = best_and_last(run.split_rows(split))
        if rows:
            parts.append(f"<h3>{escape(split)}</h3>" + table(["metric", "best", "best step", "last", "last step"],
                                                              [list(row) for row in rows]))
    return "".join(parts) or note("metrics.jsonl is empty.")


def robustness_tables(run: RunData) -> str:
    """Eval sets whose keys look like corruption or adversarial results, as metric/value tables (the whole line:
    every corruption and severity, not only the keys that gave the set away)."""
    words = ("corrupt", "mce", "mean_ce", "_ce_", "fgsm", "pgd", "adversarial", "severity", "noise", "blur")
    parts = []
    for split in run.eval_sets:
        last = numeric_metrics(run.split_rows(split)[-1])
        if any(word in key.lower() for key in last for word in words) or any(word in split.lower() for word in words):
            parts.append(f"<h3>{escape(split)}</h3>" + table(["metric", "value"], sorted(last.items())))
    return "".join(parts) or note("No corruption or adversarial evaluation in this run.")


def page(runs: list[RunData], curve_images: list[tuple[str, str]], sections: dict[str, str]) -> str:
    """The whole page: headline, config, curves, metrics, per-class, confusion, calibration, robustness, samples."""
    run = runs[0]
    title = f"Report: {run.name}" + (f" (compared with {', '.join(r.name for r in runs[1:])})" if runs[1:] else "")
    body = [f"<h1>{escape(title)}</h1>", f"<p>Workdir: <code>{escape(run.workdir)}</code></p>", headline(run),
            "<h2>Training curves</h2>",
            '<div class="figures">' + "".join(image(name, alt) for name, alt in curve_images) + "</div>",
            "<h2>Best and last metrics</h2>", metrics_tables(run)]
    for other in runs[1:]:
        body += [f"<h3>Compared run: {escape(other.name)}</h3>", headline(other)]
    body += ["<h2>Per-class metrics</h2>", sections["per_class"], "<h2>Confusion matrix</h2>", sections["confusion"],
             "<h2>Calibration</h2>", sections["calibration"], "<h2>Robustness</h2>", robustness_tables(run),
             "<h2>Evaluation images</h2>", sections["samples"],
             "<h2>Explanations</h2>", sections.get("explanations", note("No explanations.")),
             "<h2>Config</h2>", f"<pre>{escape(json.dumps(run.config, indent=2, sort_keys=True))}</pre>"]
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>")


def per_class_section(run: RunData) -> str:
    """The per-class table sorted by F1, or a note when the run wrote no per_class.json."""
    if run.per_class is None:
        return note("No per-class evaluation (WORKDIR/eval/<set>/<step>/per_class.json) in this run.")
    return (f"<p>{escape(run.per_class_source)}</p>"
            + table(["class", "precision", "recall", "F1", "support"], [list(r) for r in per_class_rows(run.per_class)],
                    css_id="per-class"))
