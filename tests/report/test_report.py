"""write_report and `python -m imagenet_jax.report` on a hand-made workdir: sections, escaping, notes, --compare."""

from __future__ import annotations

import os
import re

from imagenet_jax.report import figure_paths, report_at_end, write_report
from imagenet_jax.report.__main__ import main
from tests.report.fixtures import write_workdir


def _images(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page)


def test_report_has_every_section_with_its_figure_files(tmp_path):
    workdir = write_workdir(str(tmp_path / "run"))
    index = write_report(workdir, samples=False)
    assert index == os.path.join(workdir, "report", "index.html")
    page = open(index).read()
    sources = _images(page)
    assert {"confusion_matrix.png", "reliability.png", "curve_top1_step.png", "curve_top1_epoch.png",
            "curve_learning_rate_step.png", "curve_images_per_second_epoch.png"} <= set(sources)
    assert all(os.path.getsize(os.path.join(workdir, "report", name)) > 1000 for name in sources)
    for heading in ("Per-class metrics", "Confusion matrix", "Calibration", "Robustness", "Config"):
        assert f"<h2>{heading}</h2>" in page
    # The robustness table shows test_c's keys; the headline the main set's last numbers.
    assert "gaussian_noise_1/top1" in page and "0.3100" in page
    assert 'data-key="top1" data-step="4">test top1: <b>0.3500</b>' in page
    assert "http://" not in page and "https://" not in page and "<script" not in page  # offline, no scripts


def test_every_string_from_the_run_is_escaped(tmp_path):
    page = open(write_report(write_workdir(str(tmp_path / "run")), samples=False)).read()
    assert "&lt;Bag &amp; co&gt;" in page and "<Bag" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_missing_analysis_gives_one_line_notes_and_no_figure(tmp_path):
    workdir = write_workdir(str(tmp_path / "run"), with_analysis=False)
    page = open(write_report(workdir, samples=False)).read()
    assert "No per-class evaluation" in page and "No calibration evaluation" in page
    assert "confusion_matrix.png" not in _images(page)


def test_sample_images_without_a_checkpoint_become_a_note(tmp_path):
    page = open(write_report(write_workdir(str(tmp_path / "run")))).read()
    assert "No sample images" in page and "samples.png" not in _images(page)


def test_cli_compare_overlays_runs_into_out(tmp_path, capsys):
    first, second = write_workdir(str(tmp_path / "first")), write_workdir(str(tmp_path / "second"))
    out = str(tmp_path / "out")
    assert main(["--workdir", first, "--compare", second, "--out", out, "--no_samples"]) == 0
    index = capsys.readouterr().out.strip()
    assert index == os.path.join(out, "index.html")
    page = open(index).read()
    assert "compared with second" in page and "Compared run: second" in page
    assert set(figure_paths(index)) >= {"curve_loss_step", "confusion_matrix", "reliability"}


def test_report_at_end_warns_instead_of_raising(tmp_path, caplog):
    blocker = tmp_path / "run"
    write_workdir(str(blocker))
    (blocker / "report").write_text("a file where the report folder should be")
    assert report_at_end(str(blocker)) is None
    assert "could not write the report" in caplog.text


def test_writing_a_report_leaves_the_callers_matplotlib_backend_alone(tmp_path):
    # A notebook trains in-process and then plots inline: the end-of-run report must not switch it to Agg.
    import matplotlib

    previous = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        write_report(write_workdir(str(tmp_path / "run")), samples=False)
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(previous)
