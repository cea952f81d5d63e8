"""Command line: python -m imagenet_jax.main --config configs/NAME.py [--workdir DIR] [--config.key=value ...]
[--eval NAME=TYPE[,key=value...] ...].

DIR defaults to runs/NAME (runs/NAME/VARIANT for configs/NAME.py:VARIANT) under the current directory; it may
be a bucket, gs://bucket/run (imagenet_jax.storage).
"""

from __future__ import annotations

import logging as python_logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: keep its C++ banner out of the log

from absl import app, flags, logging
from ml_collections import config_flags

from imagenet_jax import storage
from imagenet_jax.config.files import split_config_argument
from imagenet_jax.errors import UserFacingError
from imagenet_jax.parallel import xla_flags

EXIT_CONFIG_OR_DATA_ERROR = 2
EXIT_PREEMPTED = 75  # EX_TEMPFAIL: a checkpoint was saved; rerun the same command to resume.

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to an ml_collections config file.", lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Directory (or gs://bucket/dir) for checkpoints, metrics.jsonl and TensorBoard logs; "
    "default runs/<config name> under the current directory.")
_EVALS = flags.DEFINE_multi_string(
    "eval", [], "An eval set added to config.evals, NAME=TYPE[,key=value...] (repeatable), e.g. "
    "minival=classification,holdout=10000 or test_per_class=per_class; `python -m imagenet_jax.evaluate --help`.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process runs).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (multi-process runs).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (multi-process runs).")
_DISTRIBUTED = flags.DEFINE_enum(
    "distributed", "auto", ["auto", "on", "off"],
    "Initialize jax.distributed: 'auto' when the flags above are given or a multi-process SLURM job or TPU pod "
    "is detected (JAX then finds coordinator and ranks itself).")


def main(argv: list[str]) -> None:
    """Sets up JAX's runtime, then hands the config to the training loop."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    _quiet_library_logs()
    storage.configure_backend()  # before any path is touched: which client serves gs:// (see imagenet_jax.storage)
    xla_flags.apply_gpu_defaults()  # GPU runs only; must precede the first JAX backend use
    workdir = _WORKDIR.value or default_workdir(flags.FLAGS["config"].config_filename)
    import jax

    if _should_initialize_distributed():
        # Must come before anything touches a JAX backend.
        jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    logging.info("JAX process %d of %d, %d local / %d global devices (%s)", jax.process_index(), jax.process_count(),
                 jax.local_device_count(), jax.device_count(), jax.devices()[0].platform)

    logging.info("workdir %s%s", workdir, "" if _WORKDIR.value else " (the default for this config; set --workdir)")
    from imagenet_jax.evaluators import with_eval_flags
    from imagenet_jax.experiment.loop import Preempted, train_and_evaluate

    try:
        train_and_evaluate(with_eval_flags(_CONFIG.value, _EVALS.value), workdir)
    except UserFacingError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_CONFIG_OR_DATA_ERROR)
    except Preempted as preempted:
        print(str(preempted), file=sys.stderr)
        sys.exit(EXIT_PREEMPTED)


def default_workdir(config_argument: str) -> str:
    """runs/<config file stem>, or runs/<stem>/<variant> for "path/stem.py:variant", relative to the cwd."""
    path, variant = split_config_argument(config_argument)
    stem = os.path.splitext(os.path.basename(path))[0]
    return os.path.join("runs", stem, variant) if variant else os.path.join("runs", stem)


def _should_initialize_distributed() -> bool:
    if _DISTRIBUTED.value != "auto":
        return _DISTRIBUTED.value == "on"
    if _COORDINATOR.value or _NUM_PROCESSES.value:
        return True
    slurm_tasks = int(os.environ.get("SLURM_NTASKS", "1") or 1)
    tpu_pod = "," in os.environ.get("TPU_WORKER_HOSTNAMES", "")
    return slurm_tasks > 1 or tpu_pod


def _quiet_library_logs() -> None:
    # Orbax and JAX log every save and backend probe at INFO; keep our own INFO lines and their warnings.
    def keep(record: python_logging.LogRecord) -> bool:
        noisy = any(part in record.pathname for part in ("/orbax/", "/jax/_src/", "/tensorflow_datasets/"))
        return record.levelno >= python_logging.WARNING or not noisy

    logging.get_absl_handler().addFilter(keep)


def run() -> None:
    """Entry point for `python -m imagenet_jax.main`."""
    flags.mark_flags_as_required(["config"])
    app.run(main)


if __name__ == "__main__":
    run()
