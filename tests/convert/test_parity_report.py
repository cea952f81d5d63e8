"""PARITY.md's bounds are parsed, enforced by the parity tests, and kept when the table is re-measured."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import parity_report
import pytest


@pytest.mark.parametrize(("error", "tolerance", "bound"), [
    (7.6e-7, 1e-4, 1e-5), (1.8e-7, 1e-4, 2e-6), (3.0e-7, 1e-4, 5e-6), (5e-7, 1e-4, 5e-6), (4.1e-5, 5e-4, 5e-4),
    (2e-5, 1e-4, 1e-4)])
def test_new_bound_is_ten_times_the_measurement_rounded_up_at_most_the_tolerance(error, tolerance, bound):
    assert parity_report.new_bound(error, tolerance) == bound


def test_every_parity_md_row_claims_a_bound_above_its_measurement_within_tolerance():
    bounds = parity_report.documented_bounds()
    assert len(bounds) >= 30
    with open(parity_report.PARITY_MARKDOWN) as stream:
        rows = [line for line in stream if line.startswith("| Keras") or line.startswith("| torchvision")]
    for line in rows:
        reference, model, detail, measured, bound = (cell.strip() for cell in line.strip().strip("|").split("|"))
        tolerance = parity_report.TRAIN_MODE_TOLERANCE if "train" in detail else parity_report.TOLERANCE
        assert float(measured) <= float(bound) <= tolerance, line
        assert bounds[(reference, model, detail)] == float(bound)


def test_error_over_the_documented_bound_fails(monkeypatch):
    monkeypatch.delenv(parity_report.LOG_VARIABLE, raising=False)
    monkeypatch.setattr(parity_report, "documented_bounds", lambda: {("torchvision", "m", "d"): 1e-6})
    expected = np.ones(10)
    assert parity_report.check_and_record("torchvision", "m", "d", expected + 5e-7, expected) == pytest.approx(5e-7)
    with pytest.raises(AssertionError, match="exceeds the bound 1e-06 that PARITY.md claims"):
        parity_report.check_and_record("torchvision", "m", "d", expected + 2e-6, expected)


def test_row_missing_from_parity_md_fails_unless_a_measuring_run_logs_it(monkeypatch, tmp_path):
    monkeypatch.delenv(parity_report.LOG_VARIABLE, raising=False)
    monkeypatch.setattr(parity_report, "documented_bounds", lambda: {})
    expected = np.ones(10)
    with pytest.raises(AssertionError, match=re.escape("PARITY.md has no row for torchvision | m | d")):
        parity_report.check_and_record("torchvision", "m", "d", expected, expected)
    log = tmp_path / "parity.jsonl"
    monkeypatch.setenv(parity_report.LOG_VARIABLE, str(log))
    parity_report.check_and_record("torchvision", "m", "d", expected + 1e-7, expected)
    assert json.loads(log.read_text()) == {"reference": "torchvision", "model": "m", "detail": "d",
                                           "error": pytest.approx(1e-7), "tolerance": 1e-4}


def test_update_keeps_existing_bounds_adds_new_ones_and_records_machine_and_command(tmp_path):
    markdown = tmp_path / "PARITY.md"
    shutil.copyfile(parity_report.PARITY_MARKDOWN, markdown)
    existing = next(iter(parity_report.documented_bounds(str(markdown))))
    log = tmp_path / "parity.jsonl"
    rows = [{"reference": existing[0], "model": existing[1], "detail": existing[2], "error": 3e-9, "tolerance": 1e-4},
            {"reference": "torchvision", "model": "new_model", "detail": "64 px, eval", "error": 3e-7,
             "tolerance": 1e-4}]
    log.write_text("".join(json.dumps(row) + "\n" for row in rows))
    old_bound = parity_report.documented_bounds(str(markdown))[existing]
    parity_report.update_report(str(markdown), str(log), command="pytest by hand")
    assert parity_report.documented_bounds(str(markdown)) == {existing: old_bound,
                                                             ("torchvision", "new_model", "64 px, eval"): 5e-6}
    text = markdown.read_text()
    assert f"on {parity_report.cpu_model()} (" in text and "by:\n`pytest by hand`." in text
