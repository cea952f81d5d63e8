"""The sweep runner end to end: two variants trained through the normal CLI, rerun skips them, the report's
table carries exactly the numbers of each variant's metrics.jsonl, and cluster jobs are emitted."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from imagenet_jax.sweep import runner
from imagenet_jax.sweep.report import collect, markdown_table, read_metrics
from imagenet_jax.sweep.statistics import mean_interval
from tests.conftest import REPO

# A paper config over the embedded default (Fashion-MNIST): a plain and a residual net of the same depth.
_PAPER_CONFIG = textwrap.dedent('''
    """Two variants of the default model, for the sweep runner's test."""
    from imagenet_jax.config.files import load_config_file
    from imagenet_jax.sweep.paper import Paper, select_variant

    PAPER = Paper(title="test paper", source="tests", metric="top1_error", protocol="Fashion-MNIST test[:256]")
    VARIANTS = {"plain": 12.5, "residual": None}

    def get_config(variant=""):
        variant = select_variant(VARIANTS, variant, "residual")
        config = load_config_file("configs/default.py")
        config.model_options.residual = variant == "residual"
        return config
''')


def _sweep(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": REPO}
    return subprocess.run([sys.executable, "-m", "imagenet_jax.sweep", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def paper_config(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("papers") / "toy_paper.py"
    path.write_text(_PAPER_CONFIG)
    return str(path)


def _overrides(data_dir: str) -> list[str]:
    return [f"--config.data_dir={data_dir}", "--config.num_train_steps=6", "--config.batch_size=32",
            "--config.eval_split=test[:256]", "--config.log_every_steps=2", "--config.eval_every_steps=3"]


@pytest.mark.slow
def test_sweep_runs_each_variant_skips_finished_ones_and_reports_their_numbers(
        tmp_path, paper_config, fashion_mnist_dir):
    workdir = str(tmp_path / "sweep")
    first = _sweep("--config", paper_config, "--workdir", workdir, *_overrides(fashion_mnist_dir))
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    for variant in ("plain", "residual"):
        assert runner.is_finished(workdir, variant)
        assert [line["step"] for line in read_metrics(os.path.join(workdir, variant, "metrics.jsonl"))
                if line["split"] == "train"] == [2, 4, 6]

    again = _sweep("--config", paper_config, "--workdir", workdir, *_overrides(fashion_mnist_dir))
    assert again.returncode == 0 and again.stdout.count("finished earlier, skipped") == 2

    reported = _sweep("report", workdir)
    assert reported.returncode == 0, reported.stderr[-3000:]
    assert os.path.getsize(os.path.join(workdir, "curves.png")) > 10_000
    with open(os.path.join(workdir, "curves.png"), "rb") as stream:
        assert stream.read(8) == b"\x89PNG\r\n\x1a\n"
    table = open(os.path.join(workdir, "table.md")).read()
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
            for line in table.splitlines() if re.match(r"\| (plain|residual) ", line)}
    finals = {}
    for variant, paper_figure in (("plain", "12.50"), ("residual", "—")):
        lines = read_metrics(os.path.join(workdir, variant, "metrics.jsonl"))
        final_eval = [line for line in lines if "best_top1" in line][-1]
        assert final_eval["step"] == 6 and final_eval["num_examples"] == 256
        ours = finals[variant] = 100 * (1 - final_eval["top1"])
        assert rows[variant][0] == paper_figure
        assert rows[variant][1] == f"{ours:.2f}"
        last_train = [line for line in lines if line["split"] == "train"][-1]
        assert rows[variant][2] == "1"  # n: one seed, so no interval
        assert rows[variant][5] == f"{100 * (1 - last_train['top1']):.2f}"  # train top-1 error
        assert rows[variant][7] == "6"  # steps
        assert rows[variant][9] == f"{6 * 32:,}"  # images seen
    assert rows["plain"][4] == "baseline" and rows["residual"][4] == "no interval (n < 2)"
    # Δ vs the baseline (the first variant); the toy paper names no dataset, so no "ours − paper" column.
    assert rows["residual"][3] == f"{finals['residual'] - finals['plain']:+.2f}"
    assert "main eval set, scored by classification (center crop)" in table


def test_the_report_says_which_evaluator_scored_each_main_eval(tmp_path, paper_config):
    workdir = tmp_path / "scored"
    runner.write_sweep_file(str(workdir), paper_config, ["plain", "residual"], [])
    for name, main_eval in (("plain", {"type": "multicrop", "mode": "dense", "resize": 256}), ("residual", None)):
        os.makedirs(workdir / name)
        config = {"batch_size": 8, **({"main_eval": main_eval} if main_eval else {})}  # before main_eval existed
        (workdir / name / "config.json").write_text(json.dumps(config))
        (workdir / name / "metrics.jsonl").write_text(json.dumps(
            {"split": "validation", "step": 4, "top1": 0.75, "top5": 0.9, "best_top1": 0.75}) + "\n")
    report = collect(str(workdir))
    assert [summary.runs[0].scored_by for summary in report.variants] == [
        "multicrop (mode=dense, resize=256)", "classification (center crop)"]
    assert report.variants[0].runs[0].ours == 25.0
    assert ("main eval set, scored by classification (center crop); multicrop (mode=dense, resize=256)."
            in markdown_table(report))


def test_unknown_variant_is_an_error_listing_the_variants(tmp_path, paper_config):
    result = _sweep("--config", paper_config, "--workdir", str(tmp_path), "--variants", "plian")
    assert result.returncode == 2
    assert "plian" in result.stderr and "plain, residual" in result.stderr


def test_emit_slurm_writes_one_array_task_per_variant_with_the_overrides(tmp_path, paper_config):
    workdir = str(tmp_path / "cluster")
    result = _sweep("--config", paper_config, "--workdir", workdir, "--emit", "slurm", "--config.num_epochs=2")
    assert result.returncode == 0, result.stderr
    script = open(os.path.join(workdir, "sweep.sbatch")).read()
    assert "#SBATCH --array=0-1" in script and "VARIANTS=(plain residual)" in script
    assert f"--config={paper_config}:\"$VARIANT\"" in script and "--config.num_epochs=2" in script
    commands = _sweep("--config", paper_config, "--workdir", workdir, "--emit", "commands", "--variants", "residual")
    assert commands.returncode == 0
    assert commands.stdout.splitlines()[0] == (
        f"python -m imagenet_jax.main --config={paper_config}:residual --workdir={workdir}/residual")


def test_report_of_a_sweep_whose_variants_never_ran_shows_dashes(tmp_path, paper_config):
    workdir = str(tmp_path / "empty")
    runner.write_sweep_file(workdir, paper_config, ["plain", "residual"], [])
    report = collect(workdir)
    assert report.paper.metric == "top1_error" and report.baseline == "plain"
    assert [(summary.name, summary.paper, summary.ours, summary.verdict) for summary in report.variants] == [
        ("plain", 12.5, None, "baseline"), ("residual", None, None, "not run")]
    assert [run.step for summary in report.variants for run in summary.runs] == [0, 0]


def test_variants_that_start_from_another_get_its_workdir_and_run_in_order_on_slurm(tmp_path):
    workdir = str(tmp_path / "vgg")
    commands = _sweep("--config", "configs/papers/vgg_table3.py", "--workdir", workdir, "--emit", "commands",
                      "--variants", "a,b,d_384")
    assert commands.returncode == 0, commands.stderr
    lines = commands.stdout.splitlines()
    assert "--config.init_from" not in lines[0]
    assert lines[1].endswith(f"--workdir={workdir}/b --config.init_from={workdir}/a")
    assert lines[2].endswith(f"--config.init_from={workdir}/d_256")
    slurm = _sweep("--config", "configs/papers/vgg_table3.py", "--workdir", workdir, "--emit", "slurm")
    assert slurm.returncode == 0, slurm.stderr
    script = open(os.path.join(workdir, "sweep.sbatch")).read()
    assert "#SBATCH --array=0-11%1" in script
    init_from = next(line for line in script.splitlines() if line.startswith("INIT_FROM=("))
    assert init_from.split()[3] == f"{workdir}/a"  # variant b (array task 2) starts from a
    assert subprocess.run(["bash", "-n", os.path.join(workdir, "sweep.sbatch")]).returncode == 0


def test_a_variant_whose_parent_has_not_finished_is_not_started(tmp_path):
    workdir = str(tmp_path / "vgg")
    result = _sweep("--config", "configs/papers/vgg_table3.py", "--workdir", workdir, "--variants", "b")
    assert result.returncode == 1
    assert "starts from variant 'a', which has not finished" in result.stdout
    assert not os.path.exists(os.path.join(workdir, "b", "metrics.jsonl"))


@pytest.mark.slow
def test_a_sweep_with_seeds_trains_each_seed_in_its_own_directory_and_reports_their_interval(
        tmp_path, paper_config, fashion_mnist_dir):
    workdir = str(tmp_path / "seeded")
    result = _sweep("--config", paper_config, "--workdir", workdir, "--seeds", "2", *_overrides(fashion_mnist_dir))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert [line.split(":")[0] for line in result.stdout.splitlines() if line.startswith("[")] == [
        "[1/4] plain/seed_0", "[2/4] residual/seed_0", "[3/4] plain/seed_1", "[4/4] residual/seed_1"]
    finals = {}
    for variant in ("plain", "residual"):
        for seed in (0, 1):
            run_dir = os.path.join(workdir, variant, f"seed_{seed}")
            assert json.load(open(os.path.join(run_dir, "config.json")))["seed"] == seed
            final = [line for line in read_metrics(os.path.join(run_dir, "metrics.jsonl")) if "best_top1" in line][-1]
            finals.setdefault(variant, []).append(100 * (1 - final["top1"]))
    # Seeds change the initialization and the data order, so two seeds of one variant differ.
    assert finals["plain"][0] != finals["plain"][1]
    report = collect(workdir)
    for variant, values in finals.items():
        expected = mean_interval(values)
        assert report.variant(variant).ours.n == 2
        assert (report.variant(variant).ours.low, report.variant(variant).ours.high) == pytest.approx(
            (expected.low, expected.high), abs=1e-9)
    again = _sweep("--config", paper_config, "--workdir", workdir, "--seeds", "2", *_overrides(fashion_mnist_dir))
    assert again.returncode == 0 and again.stdout.count("finished earlier, skipped") == 4


def test_emitted_commands_of_a_seeded_sweep_give_each_seed_its_directory_and_seed(tmp_path, paper_config):
    workdir = str(tmp_path / "cluster")
    result = _sweep("--config", paper_config, "--workdir", workdir, "--emit", "commands", "--seeds", "3")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("python")]
    assert len(lines) == 6
    assert lines[1].endswith(f"--workdir={workdir}/residual/seed_0 --config.seed=0")
    assert lines[5].endswith(f"--workdir={workdir}/residual/seed_2 --config.seed=2")
    slurm = _sweep("--config", paper_config, "--workdir", workdir, "--emit", "slurm", "--seeds", "3")
    script = open(os.path.join(workdir, "sweep.sbatch")).read()
    assert "#SBATCH --array=0-5" in script and subprocess.run(
        ["bash", "-n", os.path.join(workdir, "sweep.sbatch")]).returncode == 0
    assert slurm.returncode == 0 and "SEEDS=(--config.seed=0 --config.seed=0 --config.seed=1" in script


def test_seeds_that_conflict_with_a_seed_override_or_the_sweeps_layout_are_refused(tmp_path, paper_config):
    workdir = str(tmp_path / "conflict")
    both = _sweep("--config", paper_config, "--workdir", workdir, "--seeds", "3", "--emit", "commands",
                  "--config.seed=4")
    assert both.returncode == 2 and "--config.seed and --seeds=3 both set the seed" in both.stderr
    assert _sweep("--config", paper_config, "--workdir", workdir, "--emit", "commands").returncode == 0
    relayout = _sweep("--config", paper_config, "--workdir", workdir, "--seeds", "3", "--emit", "commands")
    assert relayout.returncode == 2 and "was started with 1 seed(s)" in relayout.stderr


@pytest.mark.parametrize("code, expected", [(-15, 75), (-2, 75), (75, 75), (1, 1)])
def test_a_run_killed_by_a_signal_stops_the_sweep_instead_of_counting_as_failed(
        tmp_path, paper_config, monkeypatch, code, expected):
    started = []

    def fake_training(command, **kwargs):
        started.append(command)
        return code

    monkeypatch.setattr(runner.subprocess, "call", fake_training)
    assert runner.run_sweep(paper_config, str(tmp_path / "stopped")) == expected
    # A signal or a preemption stops after the first run; an ordinary failure goes on to the next variant.
    assert len(started) == (2 if code == 1 else 1)
