"""experiments/paired_comparison.py on the tiny run's two checkpoints: metrics equal the run's own evaluation, the
ensemble row is the mean softmax, and a paired interval of a model against itself is exactly zero."""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest

import imagenet_jax
from tests.conftest import REPO

SCRIPT = os.path.join(REPO, "experiments", "paired_comparison.py")


def _script():
    spec = importlib.util.spec_from_file_location("paired_comparison", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_are_the_runs_own_numbers_and_a_self_comparison_is_zero(tiny_run, tmp_path, capsys):
    script = _script()
    out = tmp_path / "paired.json"
    assert script.main(["--model", f"early={tiny_run}:6", "--model", f"late={tiny_run}:12", "--model",
                        f"both=ensemble:{tiny_run}:6,{tiny_run}:12", "--baseline", "late", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert table.count("\n") == 5 and "| both |" in table
    rows = json.loads(out.read_text())["models"]
    run = imagenet_jax.load_run(tiny_run)
    assert rows["early"]["top1"] == pytest.approx(run.evaluate(6)["top1"], abs=1e-9)
    assert rows["late"]["top1"] == pytest.approx(run.evaluate(12)["top1"], abs=1e-9)
    assert rows["late"]["delta_top1"] == 0 and rows["late"]["interval"] == [0.0, 0.0]
    low, high = rows["early"]["interval"]
    assert low <= rows["early"]["delta_top1"] <= high and low < high
    early, labels = script.probabilities(f"{tiny_run}:6")
    late, _ = script.probabilities(f"{tiny_run}:12")
    both, _ = script.probabilities(f"ensemble:{tiny_run}:6,{tiny_run}:12")
    np.testing.assert_allclose(both, (early + late) / 2, rtol=1e-12)
    assert rows["both"]["top1"] == pytest.approx(np.mean(both.argmax(1) == labels), abs=1e-12)


def test_ece_and_nll_match_their_definitions_on_constructed_probabilities():
    script = _script()
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    labels = np.array([0, 1, 1, 1])
    values = script.metrics(probs, labels)
    assert values["top1"] == 0.75
    assert values["nll"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.7, 0.8])))
    # bins of 1/15: 0.9 -> 13 (hit), 0.6 -> 9 (miss), 0.7 -> 10 (hit), 0.8 -> 12 (hit)
    assert values["ece"] == pytest.approx((abs(1 - 0.9) + abs(0 - 0.6) + abs(1 - 0.7) + abs(1 - 0.8)) / 4)
