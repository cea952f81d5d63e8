"""colab/*.ipynb: stored without outputs, parameterized, and executed headless (a failing cell fails the test)."""

from __future__ import annotations

import glob
import os

import nbformat
import pytest

from tests.conftest import REPO

NOTEBOOKS = sorted(glob.glob(os.path.join(REPO, "colab", "*.ipynb")))
COLAB_LINK = "https://colab.research.google.com/github/imagenet-jax/imagenet_jax/blob/main/colab/{}"


def test_notebooks_are_stored_clean_with_a_badge_and_a_parameters_cell():
    assert [os.path.basename(path) for path in NOTEBOOKS] == ["ablation.ipynb", "explain.ipynb", "finetune.ipynb",
                                                          "quickstart.ipynb"]
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert all(not cell.outputs and cell.execution_count is None for cell in code), f"{path} has outputs"
        assert "parameters" in code[0].metadata.get("tags", []), f"{path}: first code cell must be the parameters"
        assert "IMAGENET_JAX_NOTEBOOK_TEST" in code[0].source
        assert COLAB_LINK.format(os.path.basename(path)) in notebook.cells[0].source


def execute(name: str, tmp_path, monkeypatch, data_dir: str = "", devices: int = 1, timeout: int = 600):
    """Runs colab/NAME.ipynb in a fresh kernel from the repository root, in test mode with `devices` CPU devices."""
    from nbclient import NotebookClient

    monkeypatch.setenv("IMAGENET_JAX_NOTEBOOK_TEST", "1")
    monkeypatch.setenv("IMAGENET_JAX_NOTEBOOK_WORKDIR", str(tmp_path / name))
    monkeypatch.setenv("IMAGENET_JAX_NOTEBOOK_DATA_DIR", data_dir)
    monkeypatch.setenv("XLA_FLAGS", f"--xla_force_host_platform_device_count={devices}")  # the kernel inherits these
    monkeypatch.setenv("PYTHONPATH", REPO)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = nbformat.read(os.path.join(REPO, "colab", f"{name}.ipynb"), as_version=4)
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": REPO}}).execute()
    return notebook


def _text(notebook) -> str:
    return "\n".join(output.get("text", "") or str(output.get("data", {}).get("text/plain", ""))
                     for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs)


@pytest.mark.slow
def test_quickstart_runs_headless(fashion_mnist_dir, tmp_path, monkeypatch):
    notebook = execute("quickstart", tmp_path, monkeypatch, fashion_mnist_dir, devices=8)  # the sharding cell
    text = _text(notebook)
    assert "CPU runtime, 8 device(s)" in text and "on 512 images" in text
    images = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
              if "image/png" in output.get("data", {})]
    assert len(images) == 2  # curves and the grid of predictions
    assert "CPU 0" in text and "CPU 7" in text  # visualize_array_sharding drew one block per device


@pytest.mark.slow
def test_ablation_runs_headless_and_shows_the_report(fashion_mnist_dir, tmp_path, monkeypatch):
    notebook = execute("ablation", tmp_path, monkeypatch, fashion_mnist_dir)
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    tables = [output["data"]["text/markdown"] for output in outputs if "text/markdown" in output.get("data", {})]
    assert len(tables) == 1 and "baseline" in tables[0] and "label_smoothing" in tables[0]
    assert "Δ vs baseline [95% CI]" in tables[0]
    row = next(line for line in tables[0].splitlines() if line.startswith("| label_smoothing "))
    assert row.split("|")[3].strip() == "2"  # n (no paper column: no figures): both seeds entered the interval
    assert any("image/png" in output.get("data", {}) for output in outputs)
    for variant in ("baseline", "label_smoothing"):
        for seed in (0, 1):
            assert os.path.exists(tmp_path / "ablation" / variant / f"seed_{seed}" / "sweep_status.json")


@pytest.mark.slow
def test_finetune_runs_headless(tmp_path, monkeypatch):
    notebook = execute("finetune", tmp_path, monkeypatch)
    assert "fine-tuned ResNet-50, step 2" in _text(notebook)
    # Keras' ResNet50 takes caffe inputs: the config gets the converter's mean and std, not hand-typed ones.
    assert ("caffe preprocessing as config: {'normalize_mean': (123.68, 116.779, 103.939), "
            "'normalize_std': (1.0, 1.0, 1.0)}") in _text(notebook)


@pytest.mark.slow
def test_explain_runs_headless_and_shows_maps_checks_filters_and_embedding(fashion_mnist_dir, tmp_path, monkeypatch):
    notebook = execute("explain", tmp_path, monkeypatch, fashion_mnist_dir)
    text = _text(notebook)
    assert "Grad-CAM layer: stage3_block1" in text and "embedded 256 images" in text
    deletion = [line for line in text.splitlines() if "deletion area" in line]
    assert [line.split()[0] for line in deletion] == ["gradcam", "integrated_gradients", "occlusion"]
    images = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
              if "image/png" in output.get("data", {})]
    assert len(images) == 3  # the grid of maps, the filters, the t-SNE plot
