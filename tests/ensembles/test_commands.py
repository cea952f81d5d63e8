"""evaluate --ensemble and soup on a real (tiny) Fashion-MNIST run: numbers equal those computed member by member."""

from __future__ import annotations

import json
import shutil

import jax
import numpy as np
import pytest

import imagenet_jax
from imagenet_jax.cli import main as cli_main
from imagenet_jax.errors import ConfigError


def _eval_lines(workdir: str) -> list[dict]:
    with open(f"{workdir}/eval/evaluate.jsonl") as stream:
        return [json.loads(line) for line in stream]


def _separately(run, steps):
    """Each checkpoint's logits on the run's whole main eval split, computed apart, with the labels."""
    batches = list(run.eval_batches(None, 250))
    keep = np.concatenate([b["mask"] for b in batches])
    labels = np.concatenate([b["label"] for b in batches])[keep]
    logits = [np.concatenate([run.logits(b["image"], step) for b in batches])[keep].astype(np.float64)
              for step in steps]
    return logits, labels


def test_snapshot_ensemble_scores_the_mean_of_its_members_probabilities(tiny_run, tmp_path, capsys):
    out = str(tmp_path / "ensemble")
    assert cli_main(["evaluate", "--workdir", out, "--ensemble", f"{tiny_run}:last2"]) == 0
    table = capsys.readouterr().out
    assert "member 0" in table and "member 1" in table and "ensemble" in table
    run = imagenet_jax.load_run(tiny_run)
    split = "test[:1000]"
    lines = {(line["member"], line["split"]): line for line in _eval_lines(out)}
    assert [lines[(index, split)]["step"] for index in (0, 1)] == [6, 12]
    logits, labels = _separately(run, [6, 12])
    probabilities = [np.exp(z - z.max(1, keepdims=True)) / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)
                     for z in logits]
    mean = (probabilities[0] + probabilities[1]) / 2
    ensemble = lines[("ensemble", split)]
    assert ensemble["num_examples"] == len(labels) == 1000
    assert ensemble["top1"] == pytest.approx(np.mean(mean.argmax(1) == labels), abs=1e-9)
    assert ensemble["loss"] == pytest.approx(-np.mean(np.log(mean[np.arange(len(labels)), labels])), rel=1e-4)
    for index in (0, 1):  # each member alone, as evaluate scores it, and inside the ensemble's pass
        own = np.mean(logits[index].argmax(1) == labels)
        assert lines[(index, split)]["top1"] == pytest.approx(own, abs=1e-9)
        assert lines[("ensemble", "members")][f"member_{index}_top1"] == pytest.approx(own, abs=1e-9)
    disagreement = np.mean(logits[0].argmax(1) != logits[1].argmax(1))
    assert lines[("ensemble", "members")]["mean_disagreement"] == pytest.approx(disagreement, abs=1e-9)
    assert 0 < disagreement < 1  # two checkpoints that differ (a metric of identical members would be 0)
    record = json.loads(open(f"{out}/ensemble.json").read())
    assert [member["step"] for member in record["members"]] == [6, 12] and record["combine"] == "probabilities"


def test_ensemble_members_must_share_their_classes_and_lastn_must_exist(tiny_run, tmp_path):
    from imagenet_jax.ensembles.members import load_members, split_spec

    assert split_spec("gs://bucket/run") == ("gs://bucket/run", "best")
    assert split_spec("gs://bucket/run:last3") == ("gs://bucket/run", "last3")
    assert split_spec("runs/a:120") == ("runs/a", "120")
    with pytest.raises(ConfigError, match=r"last5 needs 1 to 2 checkpoints"):
        load_members([f"{tiny_run}:last5"])
    with pytest.raises(ConfigError, match="named twice"):
        load_members([f"{tiny_run}:12", f"{tiny_run}:latest"])


def test_a_soup_of_identical_runs_is_the_run_and_evaluate_and_export_accept_it(tiny_run, tmp_path):
    twin = str(tmp_path / "twin")
    shutil.copytree(tiny_run, twin)
    out = str(tmp_path / "soup")
    assert cli_main(["soup", "--workdir", out, "--ingredients", f"{tiny_run}:12", f"{twin}:12",
                     "--method", "uniform"]) == 0
    run, soup = imagenet_jax.load_run(tiny_run), imagenet_jax.load_run(out)
    for mine, theirs in zip(jax.tree.leaves(soup.variables("best")), jax.tree.leaves(run.variables(12)), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert cli_main(["evaluate", "--workdir", out]) == 0
    soup_line = _eval_lines(out)[-1]
    own = run.evaluate(12)
    assert soup_line["top1"] == pytest.approx(own["top1"], abs=1e-9) and soup_line["num_examples"] == 1000
    assert cli_main(["export", "--workdir", out, "--format", "stablehlo", "--output", str(tmp_path / "soup.hlo")]) == 0
    assert cli_main(["soup", "--workdir", out, "--ingredients", f"{tiny_run}:12", f"{twin}:12"]) != 0  # not over it


def test_greedy_soup_keeps_an_ingredient_only_when_the_held_out_score_does_not_drop(tiny_run, tmp_path):
    out = str(tmp_path / "greedy")
    assert cli_main(["soup", "--workdir", out, "--ingredients", f"{tiny_run}:last2", "--method", "greedy",
                     "--held_out", "minival", "--eval", "minival=classification,holdout=500", "--bn_batches", "2"]) == 0
    record = json.loads(open(f"{out}/soup.json").read())
    history = record["history"]
    alone = {entry["ingredient"]: entry["alone"] for entry in history}
    assert [entry["ingredient"] for entry in history] == sorted(alone, key=lambda index: (-alone[index], index))
    assert history[0]["kept"] and history[1]["kept"] == (history[1]["with_it"] >= history[0]["alone"])
    assert record["soup_top1"] >= max(entry["alone"] for entry in history) - 1e-9
    assert record["kept"] == [entry["ingredient"] for entry in history if entry["kept"]]
    assert imagenet_jax.load_run(out).steps() == [12]


def test_greedy_soup_needs_a_held_out_set(tiny_run, tmp_path, capsys):
    code = cli_main(["soup", "--workdir", str(tmp_path / "s"), "--ingredients", f"{tiny_run}:last2"])
    assert code == 2
    assert "the greedy soup needs an eval set" in capsys.readouterr().err
