"""The tune command on real Fashion-MNIST trials: resumable after SIGKILL, shared by two tuners, pruning, report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest

from tests.conftest import REPO, tiny_run_overrides

pytestmark = pytest.mark.slow
SPACE = """
def get_space():
    return {"learning_rate": {"distribution": "log_uniform", "low": 0.05, "high": 0.3},
            "label_smoothing": {"distribution": "uniform", "low": 0.0, "high": 0.1}}
"""


def _tune_command(tmp_path, data_dir: str, trials: int, *flags: str) -> list[str]:
    space = tmp_path / "space.py"
    space.write_text(SPACE)
    return [sys.executable, "-m", "imagenet_jax", "tune", "--config", "configs/default.py", "--space", str(space),
            "--trials", str(trials), "--study", "s", "--storage", f"sqlite:///{tmp_path}/study.db",
            "--workdir", str(tmp_path / "tune"), "--sampler", "random", *flags,
            *tiny_run_overrides(data_dir, steps=12), "--config.eval_every_steps=6"]


def _start(command: list[str], log) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, stdout=log,
                            stderr=subprocess.STDOUT)


def _study(tmp_path) -> optuna.Study:
    return optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/study.db")


def _starts(tmp_path, number: int) -> int:
    """How many training processes started in trial N's workdir (each logs its JAX process line once)."""
    with open(tmp_path / "tune" / f"trial_{number}" / "tune_log.txt") as stream:
        return sum("JAX process 0 of 1" in line for line in stream)


def test_a_killed_tuner_resumes_its_running_trial_from_its_checkpoint_and_repeats_none(tmp_path, fashion_mnist_dir):
    command = _tune_command(tmp_path, fashion_mnist_dir, 3, "--pruner", "none")
    with open(tmp_path / "first.log", "w") as log:
        tuner = _start(command, log)
        checkpoint = tmp_path / "tune" / "trial_1" / "checkpoints" / "6"
        deadline = time.monotonic() + 400
        while not checkpoint.exists() and tuner.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert checkpoint.exists(), (tmp_path / "first.log").read_text()[-3000:]
        tuner.send_signal(signal.SIGKILL)
        tuner.wait()
    trial_0_metrics = (tmp_path / "tune" / "trial_0" / "metrics.jsonl").read_text()
    rerun = subprocess.run(command, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, capture_output=True, text=True,
                           timeout=900)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "trial 1: resuming" in rerun.stdout
    trials = _study(tmp_path).get_trials()
    assert [t.number for t in trials] == [0, 1, 2]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert sorted(os.listdir(tmp_path / "tune")) == ["trial_0", "trial_1", "trial_2", "tuner.lock"]
    assert (tmp_path / "tune" / "trial_0" / "metrics.jsonl").read_text() == trial_0_metrics  # not trained again
    assert [_starts(tmp_path, n) for n in range(3)] == [1, 2, 1]
    assert "resumed from step" in (tmp_path / "tune" / "trial_1" / "tune_log.txt").read_text()
    for trial in trials:  # each trial's value is its run's last evaluation, its params its config
        run_dir = tmp_path / "tune" / f"trial_{trial.number}"
        last = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()][-1]
        assert last["split"] == "test[:1000]" and trial.value == pytest.approx(last["top1"])
        config = json.loads((run_dir / "config.json").read_text())
        assert config["learning_rate"] == pytest.approx(trial.params["learning_rate"])
        assert config["tune"]["trial"] == trial.number


def test_two_tuners_sharing_a_study_run_every_trial_once_and_stop_at_the_count(tmp_path, fashion_mnist_dir):
    command = _tune_command(tmp_path, fashion_mnist_dir, 4, "--pruner", "none")
    with open(tmp_path / "a.log", "w") as log_a, open(tmp_path / "b.log", "w") as log_b:
        tuners = [_start(command, log_a), _start(command, log_b)]
        codes = [tuner.wait(timeout=900) for tuner in tuners]
    assert codes == [0, 0], (tmp_path / "a.log").read_text()[-2000:] + (tmp_path / "b.log").read_text()[-2000:]
    trials = _study(tmp_path).get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert [_starts(tmp_path, n) for n in range(4)] == [1, 1, 1, 1]
    ran = [line for name in ("a.log", "b.log") for line in (tmp_path / name).read_text().splitlines()
           if line.startswith("trial ") and line.endswith(tuple("0123456789")) and "complete" in line]
    assert len(ran) == 4  # each completion announced by exactly one of the two tuners


def test_a_hopeless_trial_is_pruned_says_so_and_the_report_shows_the_study(tmp_path, fashion_mnist_dir):
    storage = f"sqlite:///{tmp_path}/study.db"
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    # The median pruner waits for 5 complete trials; the sixth cannot learn in 6 steps: below their median there.
    for rate in (0.1, 0.12, 0.14, 0.16, 0.18, 1e-7):
        study.enqueue_trial({"learning_rate": rate, "label_smoothing": 0.0})
    command = _tune_command(tmp_path, fashion_mnist_dir, 6, "--pruner", "median")
    result = subprocess.run(command, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    states = [t.state for t in _study(tmp_path).get_trials()]
    assert states == [optuna.trial.TrialState.COMPLETE] * 5 + [optuna.trial.TrialState.PRUNED]
    lines = [json.loads(line) for line in (tmp_path / "tune" / "trial_5" / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1] == {**lines[-1], "split": "tune", "pruned": 1, "trial": 5, "step": 6}
    assert max(line["step"] for line in lines) == 6  # stopped at its first evaluation
    assert sorted(os.listdir(tmp_path / "tune" / "trial_5" / "checkpoints")) == ["6"]

    report = subprocess.run([sys.executable, "-m", "imagenet_jax", "tune", "report", "--study", "s", "--storage",
                             storage, "--workdir", str(tmp_path / "tune")], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": REPO}, timeout=300)
    assert report.returncode == 0, report.stderr[-3000:]
    best = json.loads((tmp_path / "tune" / "report" / "best.json").read_text())
    assert best["trial"] in range(5) and best["overrides"].startswith("--config.learning_rate=0.1")
    assert f"re-run it: {best['overrides']}" in report.stdout
    page = (tmp_path / "tune" / "report" / "tune.html").read_text()
    assert "<td>pruned</td>" in page and page.count("<tr>") == 7
    for figure in ("history.png", "importances.png", "parallel_coordinates.png", "slices.png"):
        assert (tmp_path / "tune" / "report" / figure).stat().st_size > 5000
    # The best trial against the base config, as a paper config the sweep re-runs with seeds.
    from imagenet_jax.config.files import load_config_file
    from imagenet_jax.sweep.runner import load_paper

    paper_config = str(tmp_path / "tune" / "report" / "best_vs_base.py")
    paper, variants = load_paper(paper_config)
    assert list(variants) == ["base", "best"] and paper.baseline == "base" and paper.seeds == 3
    base, tuned = load_config_file(f"{paper_config}:base"), load_config_file(f"{paper_config}:best")
    assert base.learning_rate == 0.1 and tuned.learning_rate == best["params"]["learning_rate"]
    assert tuned.num_train_steps == base.num_train_steps == -1  # the search's budget override is not carried
