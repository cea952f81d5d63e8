"""imagenet_jax.report.data: metrics split by set, best/last per metric, newest analysis files."""

from __future__ import annotations

import pytest

from imagenet_jax.errors import CheckpointError
from imagenet_jax.report.data import best_and_last, load_run_data, per_class_rows
from tests.report.fixtures import CALIBRATION, ROWS, per_class_payload, write_workdir


def test_rows_are_split_by_set_in_step_order(tmp_path):
    run = load_run_data(write_workdir(str(tmp_path / "run")))
    assert run.eval_sets == ["test", "test_c"]
    assert run.main_eval_set == "test"
    assert [row["step"] for row in run.split_rows("train")] == [2, 4]
    assert run.config["model"] == "resnet_small"


def test_best_is_max_for_accuracy_and_min_for_loss_last_is_the_newest():
    table = {row[0]: row[1:] for row in best_and_last([row for row in ROWS if row["split"] == "test"])}
    assert table["top1"] == (0.40, 2, 0.35, 4)  # best top-1 at step 2, last at step 4
    assert table["loss"] == (1.6, 4, 1.6, 4)  # lower loss is better
    assert table["top5"] == (0.95, 4, 0.95, 4)


def test_metrics_without_a_direction_get_no_best_value():
    rows = [{"step": 1, "split": "train", "eta_seconds": 90.0, "elapsed_seconds": 10.0, "learning_rate": 0.1,
             "top1": 0.5, "top1_error": 0.5},
            {"step": 2, "split": "train", "eta_seconds": 80.0, "elapsed_seconds": 20.0, "learning_rate": 0.2,
             "top1": 0.6, "top1_error": 0.4}]
    table = {row[0]: row[1:] for row in best_and_last(rows)}
    for key in ("eta_seconds", "elapsed_seconds", "learning_rate"):
        assert table[key][:2] == (None, None) and table[key][2] == rows[1][key]
    assert table["top1"][:2] == (0.6, 2) and table["top1_error"][:2] == (0.4, 2)  # "error" wins: lower is better


def test_newest_step_analysis_files_are_used(tmp_path):
    run = load_run_data(write_workdir(str(tmp_path / "run")))
    assert run.per_class == per_class_payload()  # step 4's, not step 2's zeroed F1
    assert run.calibration["ece"] == pytest.approx(CALIBRATION["ece"])
    assert run.per_class_source == "test at step 4"


def test_a_folder_without_a_run_is_an_error_naming_it(tmp_path):
    with pytest.raises(CheckpointError, match="holds no run"):
        load_run_data(str(tmp_path / "nothing"))


def test_missing_analysis_files_give_none(tmp_path):
    run = load_run_data(write_workdir(str(tmp_path / "run"), with_analysis=False))
    assert run.per_class is None and run.calibration is None


def test_per_class_rows_are_sorted_by_f1_descending():
    rows = per_class_rows(per_class_payload())
    f1 = [row[3] for row in rows]
    assert f1 == sorted(f1, reverse=True)
    # Trouser: precision 10/14, recall 1 -> F1 = 2*(10/14)/(10/14+1) = 20/24.
    assert rows[0][0] == "Trouser" and rows[0][3] == pytest.approx(20 / 24)
