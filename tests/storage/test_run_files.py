"""The files a run reads besides checkpoints: a torn metrics.jsonl line, a damaged config.json or dataset_info.json
give a warning or one actionable line, never a traceback and never a lost metrics line."""

from __future__ import annotations

import json
import logging
import os
import shutil

import pytest
from etils import epath

import imagenet_jax
from imagenet_jax.data import pipeline
from imagenet_jax.errors import CheckpointError, DatasetNotPreparedError
from imagenet_jax.storage import LineFile
from imagenet_jax.storage.files import read_json_lines
from imagenet_jax.training.reporting import truncate_metrics_after

LINES = [json.dumps({"step": step, "split": "train", "loss": 1.0 / step}) for step in (1, 2, 3, 4)]


def _write(path, lines: list[str], tail: str = "") -> None:
    path.write_text("".join(line + "\n" for line in lines) + tail)


def test_a_torn_last_line_is_dropped_on_resume_and_every_whole_line_is_kept(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    _write(path, LINES, '{"step": 5, "split": "tr')  # SIGKILL in the middle of writing step 5's line
    with caplog.at_level(logging.WARNING):
        truncate_metrics_after(LineFile(epath.Path(path)), 4)
    assert path.read_text() == "".join(line + "\n" for line in LINES)
    assert "dropped the torn last line" in caplog.text
    LineFile(epath.Path(path)).append(json.dumps({"step": 5}))  # the resumed run's next line starts a line
    assert [row["step"] for row in read_json_lines(path)] == [1, 2, 3, 4, 5]


def test_an_unparsable_line_in_the_middle_is_kept_on_resume_and_skipped_by_readers(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    _write(path, [LINES[0], "{garbage", *LINES[1:]])
    truncate_metrics_after(LineFile(epath.Path(path)), 2)
    assert path.read_text().splitlines() == [LINES[0], "{garbage", LINES[1]]  # only lines past step 2 go
    with caplog.at_level(logging.WARNING):
        assert [row["step"] for row in read_json_lines(path)] == [1, 2]
    assert "line 2 is not a JSON object" in caplog.text


def test_a_damaged_config_json_is_one_line_naming_the_file_and_the_repair(tmp_path):
    (tmp_path / "config.json").write_text('{"model": "resnet_sm')
    with pytest.raises(CheckpointError, match=r"config.json is damaged \(JSONDecodeError.*rerun its command"):
        imagenet_jax.load_run(tmp_path)
    from imagenet_jax.report.data import load_run_data

    with pytest.raises(CheckpointError, match="config.json is damaged"):
        load_run_data(str(tmp_path))


@pytest.mark.parametrize("damage", [lambda text: text[: len(text) // 3], lambda text: "", lambda text: "\x00garbage"])
def test_a_damaged_dataset_info_names_the_file_and_the_prepare_command(fashion_mnist_dir, tmp_path, damage):
    data_dir = str(tmp_path / "tfds")
    shutil.copytree(fashion_mnist_dir, data_dir)
    (info,) = epath.Path(data_dir).glob("fashion_mnist/*/dataset_info.json")
    info.write_text(damage(info.read_text()))
    with pytest.raises(DatasetNotPreparedError) as raised:
        pipeline.load_dataset("fashion_mnist", data_dir)
    message = str(raised.value)
    assert f"{info} is damaged" in message
    assert f"python -m imagenet_jax.prepare --dataset fashion_mnist --data_dir {data_dir} --overwrite" in message


@pytest.mark.slow
def test_the_named_prepare_command_repairs_a_damaged_dataset_info(fashion_mnist_dir, tmp_path):
    from imagenet_jax import prepare

    data_dir = str(tmp_path / "tfds")
    shutil.copytree(fashion_mnist_dir, data_dir)
    (info,) = epath.Path(data_dir).glob("fashion_mnist/*/dataset_info.json")
    info.write_text(info.read_text()[:100])
    assert prepare.main(["--dataset", "fashion_mnist", "--data_dir", data_dir, "--overwrite"]) == 0
    loaded = pipeline.load_dataset("fashion_mnist", data_dir)
    assert loaded.num_examples("train") == 60000 and loaded.num_examples("test") == 10000
    assert os.path.exists(info)
