"""The explain command's pieces that need no trained run: options, up-front checks, the report's section."""

from __future__ import annotations

import json

import pytest

from imagenet_jax.errors import ConfigError
from imagenet_jax.explain import job
from imagenet_jax.report.explanations import explanations_section


def test_method_options_parse_as_literals_per_method():
    chosen = ("integrated_gradients", "occlusion")
    assert job.parse_options(["integrated_gradients.steps=32", "occlusion.fill=zero",
                              "integrated_gradients.baseline='mean'"], chosen) == {
        "integrated_gradients": {"steps": 32, "baseline": "mean"}, "occlusion": {"fill": "zero"}}
    with pytest.raises(ConfigError, match="METHOD.OPTION=VALUE"):
        job.parse_options(["steps=32"], chosen)
    with pytest.raises(ConfigError, match="'gradcam' is not among --methods"):
        job.parse_options(["gradcam.layer=x"], chosen)


@pytest.mark.parametrize("request_, message", [
    (job.Request(methods=("gradcam", "integrated_gradient")), r"integrated_gradient.*Did you mean integrated_gr"),
    (job.Request(methods=("occlusion",), options={"occlusion": {"size": 4}}), r"occlusion.size.*patch"),
    (job.Request(methods=()), r"--methods is empty"),
    (job.Request(deletion_fill="grey"), r"--deletion_fill='grey'"),
    (job.Request(embedding="isomap"), r"--embedding='isomap'"),
])
def test_a_bad_request_is_refused_before_any_work_naming_the_flag(request_, message):
    with pytest.raises(ConfigError, match=message):
        job.check_request(request_)


def _explain_json(step: int, spearman: float) -> dict:
    curves = {"deletion_auc": 0.2, "random_deletion_auc": 0.4, "insertion_auc": 0.9, "random_insertion_auc": 0.8,
              "deletion_fill": "zero"}
    return {"step": step, "layer": "stage3_block1", "methods": {
        "gradcam": {"deletion_insertion": curves, "randomization": {"spearman": spearman},
                    "other_training_spearman": 0.7}}}


def test_the_report_section_shows_the_newest_explanation_and_its_checks(tmp_path):
    for step, spearman in ((10, 0.5), (30, 0.125)):
        folder = tmp_path / "explain" / str(step)
        folder.mkdir(parents=True)
        (folder / "explain.json").write_text(json.dumps(_explain_json(step, spearman)))
        (folder / "grid.png").write_bytes(b"png of step %d" % step)
    written = {}
    html = explanations_section(str(tmp_path), lambda name, data: written.setdefault(name, data) and name,
                                samples=False)
    assert "step 30" in html and "0.1250" in html and "0.7000" in html and "filled: zero" in html
    assert written == {"explain_grid.png": b"png of step 30"}
    assert "No explanations" in explanations_section(str(tmp_path / "elsewhere"), lambda *_: "", samples=False)


def test_explain_figures_leave_the_callers_matplotlib_backend_alone():
    # The end-of-run report draws the Grad-CAM panel in a notebook's process: its inline backend must survive.
    import matplotlib
    import numpy as np

    from imagenet_jax.explain import figures

    previous = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        images = np.zeros((2, 8, 8, 1), np.uint8)
        png = figures.grid_figure(images, {"gradcam": np.ones((2, 8, 8))}, ["a", "b"])
        curve = {"fractions": [0, 1], "deletion_curve": [1, 0], "insertion_curve": [0, 1], "deletion_auc": 0.5,
                 "insertion_auc": 0.5, "random_deletion_curve": [1, 0], "random_insertion_curve": [0, 1],
                 "random_deletion_auc": 0.5, "random_insertion_auc": 0.5}
        assert png.startswith(b"\x89PNG") and figures.curves_figure({"gradcam": curve}).startswith(b"\x89PNG")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(previous)
