"""`sweep report` over seeds, on run directories written by the test (no training): each variant's mean and 95%
interval over its finished seeds, its difference from the baseline with Welch's interval and a verdict, the paper's
figure labelled with the paper's dataset and never subtracted from another dataset's, and curves with a band."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from imagenet_jax.api import load_sweep
from imagenet_jax.sweep import report as sweep_report
from imagenet_jax.sweep.runner import STATUS_FILE, SweepRun, write_sweep_file
from imagenet_jax.sweep.statistics import difference_interval, mean_interval

# Final test errors (%) per variant and seed; "noisy" overlaps the baseline, "worse" clearly does not.
ERRORS = {"baseline": [10.69, 10.31, 11.02], "noisy": [10.95, 10.40, 11.30], "worse": [13.10, 13.42, 12.88]}
_PAPER = '''
from imagenet_jax.sweep.paper import Paper, select_variant
PAPER = Paper(title="toy", source="tests", metric="top1_error", protocol="p", dataset="{dataset}", seeds=3,
              baseline="baseline")
VARIANTS = {{"baseline": 9.0, "noisy": None, "worse": 12.0}}
def get_config(variant=""):
    raise AssertionError("the report must not build configs")
'''


def _write_run(directory: str, final_error: float, seed: int, finished: bool = True) -> None:
    os.makedirs(directory, exist_ok=True)
    lines = [{"split": "train", "step": step, "epoch": step / 10, "loss": 1.0 / step + seed * 0.01,
              "top1": 0.8 + 0.001 * step, "elapsed_seconds": 3.0 * step} for step in (5, 10)]
    lines += [{"split": "test", "step": 10, "epoch": 1.0, "top1": 1 - final_error / 100, "best_top1": 0.9,
               "num_examples": 10_000}]
    with open(os.path.join(directory, "metrics.jsonl"), "w") as stream:
        stream.writelines(json.dumps(line) + "\n" for line in lines)
    with open(os.path.join(directory, "config.json"), "w") as stream:
        json.dump({"batch_size": 32, "dataset": "fashion_mnist", "seed": seed}, stream)
    status = os.path.join(directory, STATUS_FILE)
    if finished:
        with open(status, "w") as stream:
            json.dump({"status": "finished"}, stream)
    elif os.path.exists(status):
        os.remove(status)


def _sweep_dir(tmp_path, dataset: str) -> str:
    config = tmp_path / "toy_paper.py"
    config.write_text(textwrap.dedent(_PAPER.format(dataset=dataset)))
    workdir = str(tmp_path / "sweep")
    write_sweep_file(workdir, str(config), list(ERRORS), [], seeds=3)
    for name, errors in ERRORS.items():
        for seed, error in enumerate(errors):
            _write_run(SweepRun(name, seed).directory(workdir), error, seed)
    return workdir


def _rows(table: str) -> dict[str, list[str]]:
    return {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
            for line in table.splitlines() if line.startswith("| ") and not line.startswith("| variant")}


def test_report_gives_mean_interval_and_welch_difference_per_variant_with_a_verdict(tmp_path):
    workdir = _sweep_dir(tmp_path, "Fashion-MNIST")
    report = load_sweep(workdir)
    assert report.baseline == "baseline" and report.seeds == 3 and report.comparable_to_paper
    for name, errors in ERRORS.items():
        summary = report.variant(name)
        expected = mean_interval(errors)
        assert summary.ours.n == 3
        assert (summary.ours.mean, summary.ours.low, summary.ours.high) == pytest.approx(
            (expected.mean, expected.low, expected.high), abs=1e-9)
    assert report.variant("baseline").verdict == "baseline" and report.variant("baseline").difference is None
    assert report.variant("noisy").verdict == "within seed noise"
    assert report.variant("worse").verdict == "worse"
    expected = difference_interval(ERRORS["worse"], ERRORS["baseline"])
    assert report.variant("worse").difference.low == pytest.approx(expected.low, abs=1e-9)

    table_path, json_path, curves_path = sweep_report.write_report(workdir)
    rows = _rows(open(table_path).read())
    worse = mean_interval(ERRORS["worse"])
    assert rows["worse"][:6] == [
        "12.00", f"{worse.mean:.2f} [{worse.low:.2f}, {worse.high:.2f}]", f"{worse.mean - 12.0:+.2f}", "3",
        f"{expected.mean:+.2f} [{expected.low:+.2f}, {expected.high:+.2f}]", "worse"]
    assert rows["noisy"][5] == "within seed noise" and rows["baseline"][4] == "—"
    saved = json.load(open(json_path))
    assert [run["ours"] for run in saved["variants"][2]["runs"]] == pytest.approx(ERRORS["worse"], abs=1e-9)
    with open(curves_path, "rb") as stream:
        assert stream.read(8) == b"\x89PNG\r\n\x1a\n"


def test_paper_figures_of_another_dataset_are_labelled_and_never_subtracted(tmp_path):
    workdir = _sweep_dir(tmp_path, "CIFAR-10")
    table = open(sweep_report.write_report(workdir)[0]).read()
    header = next(line for line in table.splitlines() if line.startswith("| variant"))
    assert "paper top1 error % (CIFAR-10)" in header and "ours − paper" not in header
    assert "The paper's figures are for CIFAR-10, ours for fashion_mnist" in table
    assert _rows(table)["worse"][0] == "12.00"


def test_unfinished_runs_stay_out_of_the_statistics_and_are_listed(tmp_path):
    workdir = _sweep_dir(tmp_path, "Fashion-MNIST")
    _write_run(SweepRun("worse", 2).directory(workdir), 40.0, 2, finished=False)  # interrupted mid-run
    report = load_sweep(workdir)
    assert report.variant("worse").ours.n == 2
    assert report.variant("worse").ours.mean == pytest.approx(sum(ERRORS["worse"][:2]) / 2)
    table = sweep_report.markdown_table(report)
    assert "Runs in progress (not in the statistics): worse/seed_2 at step 10." in table


def test_another_baseline_can_be_chosen_and_an_unknown_one_is_named(tmp_path):
    workdir = _sweep_dir(tmp_path, "Fashion-MNIST")
    report = load_sweep(workdir, baseline="worse")
    assert report.variant("baseline").verdict == "better"
    with pytest.raises(Exception, match="--baseline='wrose' is not a variant"):
        load_sweep(workdir, baseline="wrose")


def test_band_is_the_t_interval_across_seeds_at_each_x():
    xs, means, lows, highs = sweep_report.band([[(1.0, 10.0), (2.0, 8.0)], [(1.0, 12.0), (2.0, 9.0)], [(1.0, 11.0)]])
    assert xs == [1.0, 2.0] and means == [11.0, 8.5]
    expected = mean_interval([10.0, 12.0, 11.0])
    assert (lows[0], highs[0]) == pytest.approx((expected.low, expected.high))
