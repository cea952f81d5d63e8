"""Optional W&B logging (offline mode): what MetricsReporter logs there equals metrics.jsonl; config and report
figures go along; a bad mode or a missing package is a ConfigError naming the key."""

from __future__ import annotations

import glob
import json
import os
import struct
import sys
import time

import pytest

from imagenet_jax.config.base import get_base_config
from imagenet_jax.errors import ConfigError
from imagenet_jax.report import figure_paths, write_report
from imagenet_jax.training import wandb_logger
from imagenet_jax.training.reporting import MetricsReporter

pytest.importorskip("wandb")  # in the dev extra: CI has it


def _records(path: str):
    """Protobuf Records of an offline run's .wandb file (a LevelDB-style log of 32 KiB blocks after a 7-byte
    ':W&B' header); wandb.Api needs a server, so the test reads the file itself."""
    from wandb.proto import wandb_internal_pb2

    data = open(path, "rb").read()
    assert data[:4] == b":W&B"
    block, offset, pending = 32768, 7, b""
    while offset + 7 <= len(data):
        if block - offset % block < 7:  # a block's tail too short for a header is padding
            offset += block - offset % block
            continue
        _, length, kind = struct.unpack("<IHB", data[offset:offset + 7])
        pending += data[offset + 7:offset + 7 + length]
        offset += 7 + length
        if kind in (1, 4):  # FULL or LAST fragment: a whole record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record
            pending = b""


def _logged(wandb_dir: str, wait_seconds: float = 60.0) -> tuple[list[dict], dict]:
    """(history rows, config) of the single offline run under `wandb_dir`, once its exit record is on disk.

    wandb's service process writes the file; on a loaded machine its last block can land after finish() returns.
    """
    (path,) = glob.glob(os.path.join(wandb_dir, "wandb", "offline-run-*", "run-*.wandb"))
    deadline = time.monotonic() + wait_seconds
    while not any(record.WhichOneof("record_type") == "exit" for record in _records(path)):
        assert time.monotonic() < deadline, f"{path} has no exit record after {wait_seconds} s"
        time.sleep(0.5)
    history, config = [], {}
    for record in _records(path):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                            for item in record.history.item})
        elif kind in ("run", "config"):
            update = record.run.config.update if kind == "run" else record.config.update
            config.update({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in update})
    return history, config


def test_offline_wandb_logs_what_metrics_jsonl_holds_plus_config_and_figures(tmp_path, monkeypatch):
    wandb_dir = str(tmp_path / "wandb_files")
    monkeypatch.setenv("WANDB_DIR", wandb_dir)
    monkeypatch.setenv("WANDB_SILENT", "true")
    os.makedirs(wandb_dir)
    workdir = str(tmp_path / "run")
    config = get_base_config()
    config.wandb_project, config.wandb_mode = "imagenet-jax-test", "offline"
    reporter = MetricsReporter(workdir, total_steps=4, global_batch_size=8, start_step=0, steps_per_epoch=2,
                               config=config)
    reporter.train(2, {"loss": 2.25, "top1": 0.125, "learning_rate": 0.1})
    reporter.eval(2, "test", {"loss": 2.0, "top1": 0.25, "top5": 0.75})
    reporter.train(4, {"loss": 1.5, "top1": 0.375, "learning_rate": 0.05})
    with open(os.path.join(workdir, "config.json"), "w") as stream:
        json.dump(config.to_dict(), stream)
    reporter.log_figures(figure_paths(write_report(workdir, samples=False)))
    reporter.close()

    history, logged_config = _logged(wandb_dir)
    metric_rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    logged_scalars = {}
    for row in history:
        for key, value in row.items():
            if not key.startswith("_") and not key.startswith("report/"):
                logged_scalars[(row["_step"], key)] = value
    expected = {}
    for row in metric_rows:
        prefix = "train" if row["split"] == "train" else f"eval_{row['split']}"
        expected.update({(row["step"], f"{prefix}/{key}"): value for key, value in row.items()
                         if key not in ("step", "split", "epoch")})
    assert logged_scalars == pytest.approx(expected)
    assert logged_scalars[(2, "eval_test/top1")] == 0.25
    assert logged_config["wandb_project"] == "imagenet-jax-test" and logged_config["model"] == config.model
    # An image is logged as nested keys ("report/<name>/path", ".../width", ...).
    figures = {"/".join(key.split("/")[:2]) for row in history for key in row if key.startswith("report/")}
    assert {"report/curve_loss_step", "report/curve_top1_epoch"} <= figures


def test_empty_project_logs_nothing_to_wandb(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    reporter = MetricsReporter(str(tmp_path / "run"), 2, 8, 0, config=get_base_config())
    reporter.train(2, {"loss": 1.0})
    reporter.close()
    assert reporter.wandb is None and not os.path.exists(tmp_path / "wandb")


def test_bad_mode_is_a_config_error_naming_the_key():
    config = get_base_config()
    config.wandb_mode = "sometimes"
    with pytest.raises(ConfigError, match="config.wandb_mode"):
        wandb_logger.validate_config(config)


def test_missing_wandb_package_names_the_key_and_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb now raises ImportError
    config = get_base_config()
    config.wandb_project = "p"
    with pytest.raises(ConfigError, match=r"config.wandb_project.*pip install 'imagenet_jax\[wandb\]'"):
        wandb_logger.validate_config(config)
    config.wandb_project = ""
    wandb_logger.validate_config(config)  # off: wandb not needed
