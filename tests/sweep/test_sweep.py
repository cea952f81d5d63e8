"""The sweep runner end to end: two variants trained through the normal CLI, rerun skips them, the report's
table carries exactly the numbers of each variant's metrics.jsonl, and cluster jobs are emitted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

from imagenet_jax.sweep import runner
from imagenet_jax.sweep.report import collect, read_metrics
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
    for variant, paper_figure in (("plain", "12.50"), ("residual", "—")):
        lines = read_metrics(os.path.join(workdir, variant, "metrics.jsonl"))
        final_eval = [line for line in lines if "best_top1" in line][-1]
        assert final_eval["step"] == 6 and final_eval["num_examples"] == 256
        ours = 100 * (1 - final_eval["top1"])
        assert rows[variant][0] == paper_figure
        assert rows[variant][1] == f"{ours:.2f}"
        last_train = [line for line in lines if line["split"] == "train"][-1]
        assert rows[variant][4] == f"{100 * (1 - last_train['top1']):.2f}"  # train top-1 error
        assert rows[variant][6] == "6"  # steps
        assert rows[variant][8] == f"{6 * 32:,}"  # images seen
    assert rows["plain"][2] == f"{float(rows['plain'][1]) - 12.5:+.2f}"
    assert "main eval set, scored by classification (center crop)" in table


def test_the_report_says_which_evaluator_scored_each_main_eval(tmp_path):
    import json

    from imagenet_jax.sweep.paper import Paper
    from imagenet_jax.sweep.report import markdown_table, variant_result

    paper = Paper(title="T", source="S", metric="top1_error", protocol="dense")
    for name, main_eval in (("a", {"type": "multicrop", "mode": "dense", "resize": 256}), ("old", None)):
        os.makedirs(tmp_path / name)
        config = {"batch_size": 8, **({"main_eval": main_eval} if main_eval else {})}  # "old": before main_eval
        (tmp_path / name / "config.json").write_text(json.dumps(config))
        (tmp_path / name / "metrics.jsonl").write_text(json.dumps(
            {"split": "validation", "step": 4, "top1": 0.75, "top5": 0.9, "best_top1": 0.75}) + "\n")
    results = [variant_result(str(tmp_path), name, paper, 30.0) for name in ("a", "old")]
    assert [result.scored_by for result in results] == ["multicrop (mode=dense, resize=256)",
                                                        "classification (center crop)"]
    assert results[0].ours == 25.0
    assert ("main eval set, scored by classification (center crop); multicrop (mode=dense, resize=256)."
            in markdown_table(paper, results, []))


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
    paper, results = collect(workdir)
    assert paper.metric == "top1_error"
    assert [(result.name, result.paper, result.ours, result.step) for result in results] == [
        ("plain", 12.5, None, 0), ("residual", None, None, 0)]


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
    assert "#SBATCH --array=0-11%1" in script and f"[b]={workdir}/a" in script
    assert subprocess.run(["bash", "-n", os.path.join(workdir, "sweep.sbatch")]).returncode == 0


def test_a_variant_whose_parent_has_not_finished_is_not_started(tmp_path):
    workdir = str(tmp_path / "vgg")
    result = _sweep("--config", "configs/papers/vgg_table3.py", "--workdir", workdir, "--variants", "b")
    assert result.returncode == 1
    assert "starts from variant 'a', which has not finished" in result.stdout
    assert not os.path.exists(os.path.join(workdir, "b", "metrics.jsonl"))
