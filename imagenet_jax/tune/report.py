"""tune report: the study as a table, its best trial as an override line, and Optuna's plots in one HTML page.

Writes WORKDIR/report/tune.html with trials.csv, best.json and PNGs beside it: optimization history, parameter
importances (fANOVA, with two or more complete trials), parallel coordinates and slices (Optuna's matplotlib
visualizations). Each trial's own run report is linked from the table (WORKDIR/trial_N/report/index.html).

It also writes WORKDIR/report/best_vs_base.py, a paper config (imagenet_jax/sweep/paper.py) with two variants:
"base", the config the search started from, and "best", it with the best trial's parameters (not the search's
budget overrides such as a shorter num_epochs), so that the sweep re-runs both with seeds and reports their means,
95% intervals and difference:

    python -m imagenet_jax sweep --config runs/tune/NAME/report/best_vs_base.py --workdir runs/tune/NAME/rerun --seeds 3
    python -m imagenet_jax sweep report runs/tune/NAME/rerun
"""

from __future__ import annotations

import csv
import html
import json
import os

from imagenet_jax.tune import space as space_lib

PLOTS = {  # file: Optuna's matplotlib function (name) and whether it needs two complete trials
    "history.png": ("plot_optimization_history", False),
    "importances.png": ("plot_param_importances", True),
    "parallel_coordinates.png": ("plot_parallel_coordinate", True),
    "slices.png": ("plot_slice", False),
}


def write_report(study_name: str, storage: str, workdir: str) -> dict:
    """Writes the report files; returns best.json's content ({} when no trial completed)."""
    import optuna

    from imagenet_jax.training.optuna_study import storage_of

    study = optuna.load_study(study_name=study_name, storage=storage_of(storage))
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    out = os.path.join(workdir, "report")
    os.makedirs(out, exist_ok=True)
    params = sorted({key for trial in trials for key in trial.params})
    with open(os.path.join(out, "trials.csv"), "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["trial", "state", "value", "last_step", *params])
        for trial in trials:
            writer.writerow([trial.number, trial.state.name.lower(), "" if trial.value is None else trial.value,
                             trial.last_step if trial.last_step is not None else "",
                             *[trial.params.get(key, "") for key in params]])
    best = {}
    if complete:
        chosen = study.best_trial
        best = {"trial": chosen.number, "value": chosen.value, "params": chosen.params,
                "overrides": " ".join(space_lib.overrides(chosen.params)), "direction": study.direction.name.lower()}
    with open(os.path.join(out, "best.json"), "w") as stream:
        json.dump(best, stream, indent=1)
    if best and study.user_attrs.get("config"):
        _write_paper_config(os.path.join(out, "best_vs_base.py"), study_name, study.user_attrs["config"], best)
    figures = _plots(study, out, len(complete))
    with open(os.path.join(out, "tune.html"), "w") as stream:
        stream.write(_page(study_name, trials, params, best, figures, workdir))
    return best


def _write_paper_config(path: str, study_name: str, base: str, best: dict) -> None:
    metric = "top1"  # the sweep table's column; the study's own metric is in best.json
    text = f'''"""Written by `tune report` for the study {study_name!r}: its base config and its best trial
({best["trial"]}) as the variants "base" and "best" of a paper config, for
`python -m imagenet_jax sweep --config THIS_FILE --workdir DIR --seeds 3` and `sweep report DIR`."""

import ml_collections

from imagenet_jax.config.files import load_config_file
from imagenet_jax.config.overrides import apply_overrides
from imagenet_jax.sweep.paper import Paper

BASE = {base!r}
BEST = {best["params"]!r}
PAPER = Paper(title="tune study {study_name}: trial {best["trial"]} vs its base config", source="tune report",
              metric={metric!r}, protocol="the base config's own budget", seeds=3, baseline="base")
VARIANTS = {{"base": None, "best": None}}


def get_config(variant: str = "best") -> ml_collections.ConfigDict:
    """The base config, or it with the best trial's parameters."""
    config = load_config_file(BASE)
    return apply_overrides(config, BEST) if variant == "best" else config
'''
    with open(path, "w") as stream:
        stream.write(text)


def _plots(study, out: str, complete: int) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as plots

    written = []
    for name, (function, needs_two) in PLOTS.items():
        if complete < (2 if needs_two else 1):
            continue
        axes = getattr(plots, function)(study)
        figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
        figure.set_size_inches(max(figure.get_size_inches()[0], 8), max(figure.get_size_inches()[1], 5))
        figure.savefig(os.path.join(out, name), dpi=90, bbox_inches="tight")
        plt.close(figure)
        written.append(name)
    return written


def _page(study_name: str, trials, params: list[str], best: dict, figures: list[str], workdir: str) -> str:
    rows = []
    for trial in trials:
        run_report = os.path.join("..", f"trial_{trial.number}", "report", "index.html")
        exists = os.path.exists(os.path.join(workdir, f"trial_{trial.number}", "report", "index.html"))
        link = f'<a href="{html.escape(run_report)}">{trial.number}</a>' if exists else str(trial.number)
        value = "" if trial.value is None else f"{trial.value:.4f}"
        cells = [link, trial.state.name.lower(), value, str(trial.last_step if trial.last_step is not None else ""),
                 *[html.escape(str(trial.params.get(key, ""))) for key in params]]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    header = "".join(f"<th>{html.escape(name)}</th>" for name in ["trial", "state", "value", "last step", *params])
    best_text = (f"<p>Best: trial {best['trial']}, value {best['value']:.4f} ({best['direction']}). Re-run it: "
                 f"<code>{html.escape(best['overrides'])}</code></p>") if best else "<p>No trial has completed.</p>"
    images = "".join(f'<figure><img src="{name}" alt="{name}"><figcaption>{name[:-4].replace("_", " ")}'
                     "</figcaption></figure>" for name in figures)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>tune {html.escape(study_name)}</title></head>"
            f"<body><h1>Study {html.escape(study_name)}</h1>{best_text}<table><thead><tr>{header}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>{images}</body></html>")
