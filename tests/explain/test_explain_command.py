"""The explain command on real trained runs: what it writes, and whether its maps pass their checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, run_main, tiny_run_overrides

STEPS = 200  # ~0.4 epoch: a model well above chance (about 80% on Fashion-MNIST), in well under a minute


@pytest.fixture(scope="module")
def trained_runs(fashion_mnist_dir, tmp_path_factory) -> list[str]:
    """Two runs of the default config that differ only in their seed."""
    workdirs = []
    for seed in (0, 1):
        workdir = str(tmp_path_factory.mktemp("explain_runs") / f"seed_{seed}")
        overrides = [*tiny_run_overrides(fashion_mnist_dir, steps=STEPS, batch_size=128), f"--config.seed={seed}",
                     "--config.log_every_steps=50"]
        process = run_main(workdir, *overrides)
        assert process.returncode == 0, process.stderr[-3000:]
        workdirs.append(workdir)
    return workdirs


def _explain(*flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imagenet_jax", "explain", *flags], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": REPO}, timeout=900)


@pytest.mark.slow
def test_explain_writes_a_png_per_image_and_method_the_grid_pictures_and_explain_json(trained_runs):
    workdir = trained_runs[0]
    methods = "gradient,gradient_x_input,smoothgrad,integrated_gradients,gradcam,gradcam_plus_plus,occlusion,lime"
    process = _explain(f"--workdir={workdir}", "--split=test[:3]", f"--methods={methods}",
                       "--option=smoothgrad.samples=4", "--option=integrated_gradients.steps=8",
                       "--option=lime.samples=64", "--option=lime.segments=12", "--check_steps=4",
                       "--embedding=pca", "--embedding_examples=200", "--class_models=1", "--neighbours=3")
    assert process.returncode == 0, process.stderr[-3000:]
    step_dirs = os.listdir(os.path.join(workdir, "explain"))
    assert step_dirs == [str(STEPS)]  # the best checkpoint is the last evaluated one here
    out = os.path.join(workdir, "explain", str(STEPS))
    result = json.load(open(os.path.join(out, "explain.json")))
    assert list(result["methods"]) == methods.split(",")
    assert result["layer"] == "stage3_block1" and len(result["images"]) == 3
    for name in result["methods"]:
        assert sorted(os.listdir(os.path.join(out, name))) == ["0.png", "1.png", "2.png"]
        checks = result["methods"][name]
        assert 0 <= checks["deletion_insertion"]["deletion_auc"] <= 1
        assert -1 <= checks["randomization"]["spearman"] <= 1
    assert result["methods"]["integrated_gradients"]["options"]["steps"] == 8
    for picture in ("grid.png", "curves.png", "filters.png", "feature_maps.png", "class_model_1.png",
                    "embedding.png", "neighbours.png"):
        assert os.path.getsize(os.path.join(out, picture)) > 1000, picture
    assert np.asarray(result["embedding"]["neighbour_indices"]).shape == (3, 3)
    assert "gradcam" in process.stdout and "deletion" in process.stdout


@pytest.mark.slow
def test_explain_refuses_an_unknown_method_or_option_before_restoring_anything(tmp_path):
    process = _explain(f"--workdir={tmp_path}", "--methods=gradcam,grad_cam_pp")
    assert process.returncode == 2 and "grad_cam_pp" in process.stderr and "gradcam_plus_plus" in process.stderr
    process = _explain(f"--workdir={tmp_path}", "--methods=occlusion", "--option=occlusion.size=4")
    assert process.returncode == 2 and "occlusion.size" in process.stderr and "patch" in process.stderr


@pytest.mark.slow
def test_on_a_trained_run_maps_beat_random_orders_and_lose_their_structure_on_a_randomized_model(trained_runs):
    # The quantitative checks: deletion under Grad-CAM's and IG's orders removes the evidence faster than
    # random orders do, and a model with re-initialized top layers gives maps less like the trained model's than
    # a second trained seed gives.
    from imagenet_jax.explain import checks, methods
    from imagenet_jax.explain.network import Network
    from imagenet_jax.runs import load_run

    runs = [load_run(workdir) for workdir in trained_runs]
    networks = [Network.from_run(run, "latest") for run in runs]
    batch = next(runs[0].eval_batches(1, batch_size=16))
    pixels = batch["image"].astype(np.float32)
    targets = batch["label"]
    for name, options in (("gradcam", {}), ("integrated_gradients", {"steps": 16})):
        maps = methods.attribute(networks[0], name, pixels, targets, **options)
        # Black fill: Fashion-MNIST's background (the mean's grey keeps a recognizable silhouette; job.Request).
        curves = checks.deletion_insertion(networks[0], pixels, targets, maps, steps=16, deletion_fill="zero")
        assert curves["deletion_auc"] < curves["random_deletion_auc"] - 0.02, (name, curves["deletion_auc"])

        def attribution(network, images, classes, name=name, options=options):
            return methods.attribute(network, name, images, classes, **options)

        randomized = checks.randomization_check(networks[0], attribution, pixels, targets, seed=7919)
        other_seed = attribution(networks[1], pixels, targets)
        between_seeds = np.mean([checks.spearman(a, b) for a, b in zip(maps, other_seed, strict=True)])
        assert randomized["spearman"] < between_seeds - 0.1, (name, randomized["spearman"], between_seeds)


@pytest.mark.slow
def test_converted_weights_explain_image_files_like_the_run_they_came_from(trained_runs, fashion_mnist_dir, tmp_path):
    from PIL import Image

    from imagenet_jax.convert import save_converted
    from imagenet_jax.runs import load_run
    from imagenet_jax.training.init_from import load_pretrained

    run = load_run(trained_runs[0])
    weights = str(tmp_path / "weights.msgpack")
    save_converted(load_pretrained(trained_runs[0]), weights, "resnet_small")
    batch = next(run.eval_batches(1, batch_size=3))
    folder = tmp_path / "photos"
    folder.mkdir()
    for index, image in enumerate(batch["image"]):
        Image.fromarray(image[..., 0]).save(folder / f"garment_{index}.png")
    out = tmp_path / "converted"
    process = _explain(f"--workdir={out}", "--config=configs/default.py", f"--init_from={weights}",
                       f"--data_dir={fashion_mnist_dir}", f"--images={folder}", "--methods=gradcam,gradient",
                       "--embedding=", "--check_steps=4")
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.load(open(out / "explain" / "0" / "explain.json"))
    assert result["images"] == ["garment_0.png", "garment_1.png", "garment_2.png"]
    assert result["labels"] == [-1, -1, -1]  # files carry no label
    assert result["predictions"] == run.logits(batch["image"], "latest").argmax(-1).tolist()
    assert sorted(os.listdir(out / "explain" / "0" / "gradcam")) == ["0.png", "1.png", "2.png"]
