"""The report of a real (tiny) training run, opened in headless Chromium: every image loads and the headline
numbers are metrics.jsonl's; a screenshot is saved in the test's tmp_path. Tests never write tracked files:
`IMAGENET_JAX_REFRESH_SCREENSHOT=1 python -m pytest tests/report/test_browser.py` copies it to docs/ for the
README."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.conftest import REPO, read_metrics

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = "/usr/bin/chromedriver"
REFRESH_SCREENSHOT = "IMAGENET_JAX_REFRESH_SCREENSHOT"  # =1: copy the screenshot over docs/report_screenshot.png


def _browser():
    """Headless Chromium through Selenium and Debian's chromium-driver; skips (fails on CI) when absent."""
    binary = next((path for path in CHROMIUM if os.path.exists(path)), None)
    webdriver = None
    try:
        from selenium import webdriver
    except ImportError:
        pass
    if binary is None or not os.path.exists(CHROMEDRIVER) or webdriver is None:
        reason = ("headless Chromium is not installed: `make test` installs it (apt-get install chromium "
                  "chromium-driver; selenium from the dev extra)")
        if os.environ.get("CI") in ("true", "1"):
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,2000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def test_report_of_a_default_run_loads_in_chromium_with_metrics_jsonl_numbers_per_class_and_grad_cam(trained_workdir,
                                                                                                  tmp_path):
    from selenium.webdriver.common.by import By

    index = os.path.join(trained_workdir, "report", "index.html")
    assert os.path.exists(index), "the run did not write its report at the end"
    browser = _browser()
    try:
        browser.get("file://" + index)
        images = browser.find_elements(By.TAG_NAME, "img")
        names = [image.get_attribute("src").rsplit("/", 1)[-1] for image in images]
        assert {"curve_loss_step.png", "curve_top1_epoch.png", "samples.png", "confusion_matrix.png",
                "reliability.png", "gradcam.png"} <= set(names)  # the default config's evaluators, Grad-CAM
        for image, name in zip(images, names):
            loaded = browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image)
            assert loaded and loaded > 0, f"{name} did not load"
        config = json.load(open(os.path.join(trained_workdir, "config.json")))
        eval_rows = [row for row in read_metrics(trained_workdir) if row["split"] == config["eval_split"]]
        last = eval_rows[-1]
        spans = browser.find_elements(By.CSS_SELECTOR, ".headline span[data-key]")
        shown = {span.get_attribute("data-key"): span for span in spans}
        for key in ("top1", "top5", "loss"):
            number = shown[key].find_element(By.TAG_NAME, "b").text
            assert float(number) == pytest.approx(last[key], abs=5e-5), key  # shown with 4 decimals
            assert int(shown[key].get_attribute("data-step")) == last["step"]
        best = max(eval_rows, key=lambda row: row["top1"])
        assert float(shown["best_top1"].find_element(By.TAG_NAME, "b").text) == pytest.approx(best["top1"], abs=5e-5)
        assert json.loads(browser.find_element(By.TAG_NAME, "pre").text)["model"] == config["model"]
        per_class = browser.find_elements(By.CSS_SELECTOR, "#per-class tr")
        assert len(per_class) == 1 + 10  # header + Fashion-MNIST's ten classes
        f1 = [float(row.find_elements(By.TAG_NAME, "td")[3].text) for row in per_class[1:]]
        assert f1 == sorted(f1, reverse=True)
        screenshot = str(tmp_path / "report.png")
        assert browser.save_screenshot(screenshot)
    finally:
        browser.quit()
    assert os.path.getsize(screenshot) > 10_000
    if os.environ.get(REFRESH_SCREENSHOT) == "1":
        os.makedirs(os.path.join(REPO, "docs"), exist_ok=True)
        shutil.copyfile(screenshot, os.path.join(REPO, "docs", "report_screenshot.png"))


@pytest.mark.slow
def test_explain_output_appears_in_the_report_with_its_checks_table(trained_workdir, tmp_path):
    import subprocess
    import sys

    from selenium.webdriver.common.by import By

    from imagenet_jax.report import write_report

    workdir = str(tmp_path / "run")
    shutil.copytree(trained_workdir, workdir)
    command = [sys.executable, "-m", "imagenet_jax", "explain", f"--workdir={workdir}", "--split=test[:3]",
               "--methods=gradient,gradcam", "--embedding=pca", "--embedding_examples=64", "--check_steps=4"]
    process = subprocess.run(command, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, capture_output=True,
                             text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    index = write_report(workdir, samples=False)
    browser = _browser()
    try:
        browser.get("file://" + index)
        rows = browser.find_elements(By.CSS_SELECTOR, "#explain-checks tr")
        assert [row.find_elements(By.TAG_NAME, "td")[0].text for row in rows[1:]] == ["gradient", "gradcam"]
        images = {image.get_attribute("src").rsplit("/", 1)[-1]: image for image in
                  browser.find_elements(By.TAG_NAME, "img")}
        for name in ("explain_grid.png", "explain_curves.png", "explain_filters.png", "explain_embedding.png"):
            loaded = browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", images[name])
            assert loaded and loaded > 0, f"{name} did not load"
    finally:
        browser.quit()


@pytest.mark.slow
def test_write_report_false_leaves_no_report(fashion_mnist_dir, tmp_path):
    from tests.conftest import run_main, tiny_run_overrides

    workdir = str(tmp_path / "run")
    process = run_main(workdir, *tiny_run_overrides(fashion_mnist_dir, steps=2), "--config.write_report=False")
    assert process.returncode == 0, process.stderr[-3000:]
    assert os.path.exists(os.path.join(workdir, "metrics.jsonl"))
    assert not os.path.exists(os.path.join(workdir, "report"))
