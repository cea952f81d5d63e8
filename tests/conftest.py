"""Shared fixtures: Fashion-MNIST prepared once per session through the project's own offline path, and a
Google Cloud Storage emulator for runs whose workdir is a bucket."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from http import HTTPStatus

import pytest

# torchvision (torch's CUDA build, through triton) segfaults when imported after TensorFlow: import it first, in
# every test process, when it is installed (CI installs it for the parity tests; `make test` here may not).
if importlib.util.find_spec("torchvision") is not None:
    import torchvision  # noqa: F401

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION_MNIST_IDX_DIR = "/usr/share/datasets/fashion-mnist"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def _process_state_restored():
    """Each test starts with the logging setup and module-level settings the process began with, whatever the
    tests before it in the same worker did (TensorFlow's SavedModel save, for one, leaves absl at WARNING)."""
    import logging

    from imagenet_jax.models import conv_lowering

    absl_logger, root = logging.getLogger("absl"), logging.getLogger()
    saved = (absl_logger.level, absl_logger.propagate, root.level, list(root.handlers), logging.root.manager.disable,
             conv_lowering.cpu_conv_lowering())
    yield
    absl_logger.setLevel(saved[0])
    absl_logger.propagate = saved[1]
    root.setLevel(saved[2])
    root.handlers[:] = saved[3]
    logging.disable(saved[4])
    conv_lowering.set_cpu_conv_lowering(saved[5])


@pytest.fixture(scope="session")
def fashion_mnist_dir(tmp_path_factory) -> str:
    """A TFDS data dir holding fashion_mnist, prepared from the local IDX files."""
    if not os.path.isdir(FASHION_MNIST_IDX_DIR):
        pytest.fail(f"{FASHION_MNIST_IDX_DIR} is missing: run `make test` (it installs dataset-fashion-mnist)")
    from imagenet_jax.data import pipeline

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    pipeline.load_dataset("fashion_mnist", data_dir)
    return data_dir


def run_main(workdir: str | None, *overrides: str, env: dict | None = None, timeout: int = 600,
             config: str = "configs/default.py", cwd: str = REPO) -> subprocess.CompletedProcess:
    """Runs `python -m imagenet_jax.main` (in `cwd`; no --workdir if `workdir` is None) and returns the process."""
    workdir_flag = [f"--workdir={workdir}"] if workdir is not None else []
    command = [sys.executable, "-m", "imagenet_jax.main", f"--config={config}", *workdir_flag, *overrides]
    full_env = {**os.environ, "PYTHONPATH": REPO, **(env or {})}
    return subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def read_metrics(workdir: str) -> list[dict]:
    """The lines of DIR/metrics.jsonl as dicts."""
    with open(os.path.join(workdir, "metrics.jsonl")) as stream:
        return [json.loads(line) for line in stream if line.strip()]


def tiny_run_overrides(data_dir: str, steps: int = 12, batch_size: int = 64) -> list[str]:
    """Overrides making the default config a seconds-long run on a slice of Fashion-MNIST."""
    return [
        f"--config.data_dir={data_dir}",
        f"--config.num_train_steps={steps}",
        f"--config.batch_size={batch_size}",
        "--config.eval_split=test[:1000]",
        "--config.log_every_steps=2",
        "--config.schedule.warmup_epochs=0",
        "--config.write_report=False",  # the report's own tests turn it back on
    ]


class GcsEmulator:
    """A real Google Cloud Storage JSON-API server (gcp-storage-emulator, in memory) with one bucket."""

    bucket = "bucket"

    def __init__(self, url: str):
        """Describes the server listening at `url`."""
        self.url = url
        self.denied_prefixes: set[str] = set()  # object names under these answer 403 (fault injection)

    @property
    def env(self) -> dict[str, str]:
        """The environment that points a subprocess (and every GCS client in it) at this server."""
        return {"STORAGE_EMULATOR_HOST": self.url}

    def filesystem(self):
        """A gcsfs filesystem on this server, for listing and reading what a run wrote."""
        import fsspec

        return fsspec.filesystem("gcs")


def _patch_emulator_for_tensorstore() -> None:
    # The emulator omits the x-goog-generation header on media downloads, which real GCS sends and TensorStore
    # (Orbax's array writer) needs to read an OCDBT manifest back; it also has no way to inject a fault.
    from gcp_storage_emulator import server
    from gcp_storage_emulator.handlers import objects

    original = objects.download
    if getattr(original, "patched_for_tests", False):
        return

    def download(request, response, storage, *args, **kwargs):
        emulator = _EMULATORS.get(request._request_handler.server.server_address[1])
        name = request.params.get("object_id", "")
        if emulator and any(name.startswith(prefix) for prefix in emulator.denied_prefixes):
            response.status = HTTPStatus.FORBIDDEN
            response.json({"error": {"code": 403, "message": f"access to {name} denied (test fault)"}})
            return
        original(request, response, storage, *args, **kwargs)
        try:
            obj = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])
        except Exception:  # noqa: BLE001  (not found: the original handler already answered 404)
            return
        response["x-goog-generation"] = obj["generation"]
        response["x-goog-metageneration"] = obj["metageneration"]

    download.patched_for_tests = True
    objects.download = download  # objects.get calls it by its global name
    for _, handlers in server.HANDLERS:
        for method, handler in list(handlers.items()):
            if handler is original:
                handlers[method] = download


_EMULATORS: dict[int, GcsEmulator] = {}


def _ignore_hung_up_clients(request, client_address) -> None:
    import traceback

    error = sys.exc_info()[1]
    if not isinstance(error, (BrokenPipeError, ConnectionResetError)):
        traceback.print_exc()


@pytest.fixture(scope="session")
def gcs_emulator():
    """A GCS server on a free localhost port for this session; this process's GCS clients are pointed at it."""
    import logging
    import socket

    from gcp_storage_emulator.server import create_server

    _patch_emulator_for_tensorstore()
    logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=GcsEmulator.bucket)
    server.start()
    server._api._httpd.handle_error = _ignore_hung_up_clients  # TensorStore closes connections it no longer needs
    emulator = GcsEmulator(f"http://127.0.0.1:{port}")
    _EMULATORS[port] = emulator
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = emulator.url
    from imagenet_jax import storage

    storage.configure_backend()
    yield emulator
    server.stop()
    if previous is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = previous
