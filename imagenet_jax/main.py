"""Command line: python -m imagenet_jax.main --config configs/NAME.py [--workdir DIR] [--config.key=value ...]
[--eval NAME=TYPE[,key=value...] ...], the classic form of `python -m imagenet_jax train` (imagenet_jax/cli/train.py;
its flags are defined in imagenet_jax/cli/train_flags.py).

DIR defaults to runs/NAME (runs/NAME/VARIANT for configs/NAME.py:VARIANT) under the current directory; it may
be a bucket, gs://bucket/run (imagenet_jax.storage).
"""

from __future__ import annotations

import logging as python_logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: keep its C++ banner out of the log

from absl import app, flags, logging

from imagenet_jax import storage
from imagenet_jax.cli.command import EXIT_PREEMPTED, EXIT_USER_ERROR  # noqa: F401  (EXIT_PREEMPTED: re-exported)
from imagenet_jax.cli.train_flags import CONFIG as _CONFIG
from imagenet_jax.cli.train_flags import COORDINATOR as _COORDINATOR
from imagenet_jax.cli.train_flags import DISTRIBUTED as _DISTRIBUTED
from imagenet_jax.cli.train_flags import EVALS as _EVALS
from imagenet_jax.cli.train_flags import NUM_PROCESSES as _NUM_PROCESSES
from imagenet_jax.cli.train_flags import PROCESS_ID as _PROCESS_ID
from imagenet_jax.cli.train_flags import WORKDIR as _WORKDIR
from imagenet_jax.config.files import split_config_argument
from imagenet_jax.parallel import allocator, cpu_devices, xla_flags

# Exit codes (imagenet_jax/cli/command.py), returned for every command by imagenet_jax/cli/dispatch.py; 75 is
# EX_TEMPFAIL: a checkpoint was saved, rerun the same command to resume.
EXIT_CONFIG_OR_DATA_ERROR = EXIT_USER_ERROR


def main(argv: list[str]) -> None:
    """Sets up JAX's runtime, then hands the config to the training loop."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    _quiet_library_logs()
    storage.configure_backend()  # before any path is touched: which client serves gs:// (see imagenet_jax.storage)
    xla_flags.apply_gpu_defaults()  # GPU runs only; must precede the first JAX backend use
    cpu_devices.apply(_CONFIG.value, multi_process=_should_initialize_distributed())  # likewise
    workdir = _WORKDIR.value or default_workdir(flags.FLAGS["config"].config_filename)
    import jax

    if _should_initialize_distributed():
        # Must come before anything touches a JAX backend.
        jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    logging.info("JAX process %d of %d, %d local / %d global devices (%s)", jax.process_index(), jax.process_count(),
                 jax.local_device_count(), jax.device_count(), jax.devices()[0].platform)
    if jax.default_backend() == "cpu" and (hint := allocator.advice()):
        logging.warning(hint)

    logging.info("workdir %s%s", workdir, "" if _WORKDIR.value else " (the default for this config; set --workdir)")
    from imagenet_jax.evaluators import with_eval_flags
    from imagenet_jax.experiment.loop import train_and_evaluate

    # UserFacingError (exit 2) and Preempted (exit 75) are reported by imagenet_jax/cli/dispatch.py.
    train_and_evaluate(with_eval_flags(_CONFIG.value, _EVALS.value), workdir)


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
    """Entry point for `python -m imagenet_jax.main`: the train command, `python -m imagenet_jax train`."""
    from imagenet_jax.entry_points import forward

    sys.exit(forward("train", prog="python -m imagenet_jax.main"))


if __name__ == "__main__":
    run()
