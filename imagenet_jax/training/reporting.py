"""Where metrics go: DIR/metrics.jsonl, TensorBoard and stdout via clu, and a progress line in a terminal.

DIR may be a bucket (gs://...): metrics.jsonl is written through the storage layer, and TensorBoard's event
files, which TF's summary writer can only write through TF's own GCS client, are written to a local directory
and mirrored into DIR after every evaluation, at most every MIRROR_EVERY_SECONDS otherwise, and at the end.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
import time

import jax
from clu import metric_writers

from imagenet_jax.storage import LineFile, is_remote, run_path
from imagenet_jax.storage.files import json_record
from imagenet_jax.storage.layout import RunLayout
from imagenet_jax.storage.mirror import DirectoryMirror
from imagenet_jax.training import wandb_logger

MIRROR_EVERY_SECONDS = 60.0


class MetricsReporter:
    """Writes train/eval metrics from process 0 to metrics.jsonl, TensorBoard and the log."""

    def __init__(self, workdir: str, total_steps: int, global_batch_size: int, start_step: int,
                 elapsed_before: float = 0.0, steps_per_epoch: int = 0, throughput=None, config=None):
        """Opens the writers; metrics.jsonl lines past `start_step` (from a killed run) are dropped. With
        `steps_per_epoch`, every metrics.jsonl line also carries the epoch (fractional) it was written at. With
        `config.wandb_project` set, the same scalars (and the config) also go to Weights & Biases."""
        self.steps_per_epoch = steps_per_epoch
        self.is_writer = jax.process_index() == 0
        self.metrics_file = LineFile(RunLayout.of(workdir).metrics)
        self.mirror = None  # TensorBoard files of a remote workdir: written here, then copied there
        tensorboard_dir = str(run_path(workdir))
        if self.is_writer and is_remote(workdir):
            tensorboard_dir = tempfile.mkdtemp(prefix="imagenet_jax_tensorboard_")
            self.mirror = DirectoryMirror(tensorboard_dir, run_path(workdir))
            self._last_mirror = time.monotonic()
        self.writer = metric_writers.create_default_writer(tensorboard_dir, just_logging=not self.is_writer,
                                                           asynchronous=False)  # keeps log and progress line in order
        self.total_steps = total_steps
        self.global_batch_size = global_batch_size
        self.progress = ProgressLine(enabled=self.is_writer and sys.stderr.isatty())
        self.throughput = throughput  # a train.throughput.ThroughputMeter: data_wait_fraction, MFU per train line
        self.elapsed_before = elapsed_before
        self._session_start = time.monotonic()
        self._window_start = (time.monotonic(), start_step)
        if self.is_writer:
            truncate_metrics_after(self.metrics_file, start_step)
        self.wandb = wandb_logger.create(config, workdir, self.is_writer)  # None unless config.wandb_project

    @property
    def elapsed_seconds(self) -> float:
        """Training wall time over all sessions of this run (survives restarts)."""
        return self.elapsed_before + time.monotonic() - self._session_start

    def train(self, step: int, metrics: dict[str, float]) -> None:
        """Records averaged train metrics plus throughput and ETA for the window ending at `step`."""
        now = time.monotonic()
        start_time, start_step = self._window_start
        self._window_start = (now, step)
        steps_per_second = (step - start_step) / max(now - start_time, 1e-9)
        metrics = dict(metrics)
        metrics["steps_per_second"] = steps_per_second
        metrics["images_per_second"] = steps_per_second * self.global_batch_size
        metrics["eta_seconds"] = (self.total_steps - step) / max(steps_per_second, 1e-9)
        metrics["elapsed_seconds"] = self.elapsed_seconds
        if self.throughput is not None:
            metrics.update(self.throughput.window_metrics(metrics["images_per_second"]))
        self._write(step, "train", metrics)
        self.progress.show(step, self.total_steps, metrics)

    def eval(self, step: int, split: str, metrics: dict[str, float]) -> None:
        """Records eval metrics (loss, top1, top5, num_examples, ...) of `split` at `step`."""
        self._write(step, split, metrics)

    def _write(self, step: int, split: str, metrics: dict[str, float]) -> None:
        self.progress.clear()  # log lines start on a line of their own
        prefix = "train" if split == "train" else f"eval_{split}"
        scalars = {f"{prefix}/{key}": value for key, value in metrics.items()}
        self.writer.write_scalars(step, scalars)
        if self.wandb is not None:
            self.wandb.log(step, scalars)
        if self.is_writer:
            record = {"step": int(step), "split": split, **{key: _plain(value) for key, value in metrics.items()}}
            if self.steps_per_epoch:
                record["epoch"] = round(step / self.steps_per_epoch, 4)  # curves against epochs, as papers plot
            self.metrics_file.append(json.dumps(record))
        if self.mirror and (split != "train" or time.monotonic() - self._last_mirror > MIRROR_EVERY_SECONDS):
            self._mirror_tensorboard()

    def _mirror_tensorboard(self) -> None:
        self.writer.flush()
        self.mirror.sync()
        self._last_mirror = time.monotonic()

    def log_figures(self, paths: list[str]) -> None:
        """Sends the figures of the run's report (their PNG paths) to W&B, when it logs there."""
        if self.wandb is not None and paths:
            self.wandb.log_images(paths)

    def close(self) -> None:
        """Flushes and closes every writer (and mirrors TensorBoard's files into a remote workdir)."""
        self.progress.clear()
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None
        self.writer.flush()
        self.writer.close()
        if self.mirror:
            self.mirror.sync()
            shutil.rmtree(self.mirror.source, ignore_errors=True)


def truncate_metrics_after(metrics_file: LineFile, step: int) -> None:
    """Drops lines logged after `step` (by a run killed before its next checkpoint) so a resume rewrites them."""
    def keep(line: str, is_last: bool) -> bool:
        record = json_record(line)
        if record is None:  # a kill mid-write tears the last line only; any other stays, never lost
            logging.warning("%s: %s line %r", metrics_file.path, "dropped the torn last" if is_last else "kept the "
                            "unparsable", line[:80])
            return not is_last
        return record.get("step", 0) <= step

    metrics_file.keep_only(keep)


def _plain(value):
    value = value.item() if hasattr(value, "item") else value
    return value


class ProgressLine:
    """A one-line progress display on a terminal (redrawn in place); silent when not a terminal."""

    def __init__(self, enabled: bool):
        """Shows progress only if `enabled`."""
        self.enabled = enabled
        self.drawn = False

    def show(self, step: int, total: int, metrics: dict[str, float]) -> None:
        """Redraws the line: bar, step, loss, top-1, images/s, ETA."""
        if not self.enabled:
            return
        width = 24
        filled = int(width * step / max(total, 1))
        eta = int(metrics.get("eta_seconds", 0))
        sys.stderr.write(
            # A window of only skipped (non-finite) steps has no loss or top-1.
            f"\r[{'#' * filled}{'.' * (width - filled)}] {step}/{total} loss {metrics.get('loss', float('nan')):.4f} "
            f"top1 {metrics.get('top1', float('nan')):.3f} {metrics['images_per_second']:.0f} img/s "
            f"ETA {eta // 60}m{eta % 60:02d}s"
        )
        sys.stderr.flush()
        self.drawn = True

    def clear(self) -> None:
        """Ends a drawn progress line so the next output starts on a fresh line."""
        if self.drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.drawn = False
