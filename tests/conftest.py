"""Shared fixtures: Fashion-MNIST prepared once per session through the project's own offline path, and a
Google Cloud Storage emulator for runs whose workdir is a bucket. Session checks: no test may change a tracked
file (the session fails if one did), and under CI a missing test oracle (torch, keras, ...) fails, not skips."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import re
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

_TRACKED_BEFORE = pytest.StashKey[dict]()

# Test oracles and extras that CI installs (`make test` with CI=true adds the parity extra: torch, torchvision;
# keras comes with tensorflow; wandb and qwix with the dev extra): there, a test needing one never skips.
CI_REQUIRED_MODULES = frozenset({"torch", "torchvision", "timm", "imagecorruptions", "keras", "wandb", "qwix"})
_pytest_importorskip = pytest.importorskip


def running_in_ci() -> bool:
    """True under CI=true (or 1), as .ci/run runs `make test`."""
    return os.environ.get("CI", "").lower() in ("true", "1")


def importorskip_failing_in_ci(modname: str, minversion: str | None = None, reason: str | None = None,
                               **kwargs):
    """pytest.importorskip, except that under CI a module of CI_REQUIRED_MODULES that does not import fails the
    test (its ImportError) instead of skipping it; conftest installs it as pytest.importorskip for every test."""
    if running_in_ci() and modname.split(".")[0] in CI_REQUIRED_MODULES:
        importlib.import_module(modname)
    return _pytest_importorskip(modname, minversion, reason, **kwargs)


pytest.importorskip = importorskip_failing_in_ci


def _git(toplevel: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", toplevel, *args], capture_output=True, timeout=120)


def _sha256(content: bytes | None) -> str:
    return "deleted" if content is None else hashlib.sha256(content).hexdigest()


def _file_content(toplevel: str, path: str) -> bytes | None:
    try:
        with open(os.path.join(toplevel, path), "rb") as stream:
            return stream.read()
    except OSError:
        return None


def tracked_file_changes(root: str) -> dict[str, str] | None:
    """{path: sha256 of its content, or "deleted"} of the tracked files that differ from HEAD in the git checkout
    holding `root`; None when `root` is not in one (or git is missing)."""
    try:
        top = _git(root, "rev-parse", "--show-toplevel")
        if top.returncode != 0:
            return None
        toplevel = top.stdout.decode().strip()
        status = _git(toplevel, "status", "--porcelain=v1", "-z", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    if status.returncode != 0:
        return None
    entries, changes, index = status.stdout.decode(errors="surrogateescape").split("\0"), {}, 0
    while index < len(entries):
        entry, index = entries[index], index + 1
        if len(entry) < 4:
            continue
        if "R" in entry[:2] or "C" in entry[:2]:
            index += 1  # a rename or copy is followed by its source path
        changes[entry[3:]] = _sha256(_file_content(toplevel, entry[3:]))
    return changes


def tracked_files_snapshot(root: str) -> dict | None:
    """The checkout's HEAD, top level and changed tracked files (tracked_file_changes); None outside a checkout."""
    changes = tracked_file_changes(root)
    if changes is None:
        return None
    toplevel = _git(root, "rev-parse", "--show-toplevel").stdout.decode().strip()
    head = _git(toplevel, "rev-parse", "HEAD").stdout.decode().strip()
    return {"toplevel": toplevel, "head": head, "changes": changes}


def tracked_files_changed_since(snapshot: dict) -> list[str]:
    """Tracked paths whose content differs from what it was at `snapshot`; commits in between do not count."""
    toplevel, start = snapshot["toplevel"], snapshot["head"]
    head = _git(toplevel, "rev-parse", "HEAD").stdout.decode().strip()
    committed = _git(toplevel, "diff", "--name-only", "--diff-filter=MDT", "-z", start, head).stdout.decode()
    now = tracked_file_changes(toplevel) or {}
    candidates = set(snapshot["changes"]) | set(now) | {path for path in committed.split("\0") if path}
    changed = []
    for path in sorted(candidates):
        if path in snapshot["changes"]:
            expected = snapshot["changes"][path]
        else:
            blob = _git(toplevel, "show", f"{start}:{path}")
            expected = _sha256(blob.stdout if blob.returncode == 0 else None)
        if _sha256(_file_content(toplevel, path)) != expected:
            changed.append(path)
    return changed


def pytest_sessionstart(session: pytest.Session) -> None:
    """Notes which tracked files already differ from HEAD, and how (only in the controller, not xdist workers).

    Under CI only (or IMAGENET_JAX_CHECK_TRACKED_FILES=1): on a developer's machine the files being edited while
    the tests run would fail the session."""
    if hasattr(session.config, "workerinput") or not (
            running_in_ci() or os.environ.get("IMAGENET_JAX_CHECK_TRACKED_FILES") == "1"):
        return
    snapshot = tracked_files_snapshot(REPO)
    if snapshot is not None:
        session.config.stash[_TRACKED_BEFORE] = snapshot


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fails the session when the tests changed or deleted a tracked file (tests write to tmp_path)."""
    if hasattr(session.config, "workerinput") or _TRACKED_BEFORE not in session.config.stash:
        return
    changed = tracked_files_changed_since(session.config.stash[_TRACKED_BEFORE])
    if changed:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = (f"the tests changed {len(changed)} tracked file(s): {', '.join(changed)} (tests must write to "
                   "tmp_path; or was a file edited while they ran?)")
        if reporter is not None:
            reporter.write("\n")  # after pytest's progress line, which it has not ended yet
            reporter.write_line(f"FAILED session check: {message}", red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
    return without_extension_list(
        subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout))


def without_extension_list(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """Drops the list of extension modules Python prints after a fatal error (SIGABRT, SIGSEGV).

    That list runs to ~10 kB and would push the fatal error and the threads' stacks out of the `stderr[-3000:]`
    that tests show on failure.
    """
    if result.returncode < 0 and isinstance(result.stderr, str):
        result.stderr = re.sub(r"\nExtension modules: [^\n]*(\n[^\n]*\(total: \d+\))?", "", result.stderr)
    return result


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


@pytest.fixture(scope="session")
def tiny_run(fashion_mnist_dir, tmp_path_factory) -> str:
    """Workdir of a 12-step default-config run with evaluations (and checkpoints) at steps 6 and 12."""
    import imagenet_jax

    workdir = str(tmp_path_factory.mktemp("api_run"))
    imagenet_jax.train("configs/default.py", workdir,
                       tiny_run_overrides(fashion_mnist_dir) + ["--config.eval_every_steps=6"])
    return workdir
