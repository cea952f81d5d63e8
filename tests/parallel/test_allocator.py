"""The entry points restart once with tcmalloc preloaded, keep it out of their children, and honour the off switch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from imagenet_jax.parallel import allocator
from tests.conftest import running_in_ci


def _probe(*args: str, **env: str) -> dict:
    """`python -m imagenet_jax.parallel.allocator`: an entry point that restarts itself and reports on itself."""
    environ = {key: value for key, value in os.environ.items() if key not in ("LD_PRELOAD", allocator.ENV_SWITCH)}
    result = subprocess.run([sys.executable, "-m", "imagenet_jax.parallel.allocator", *args], capture_output=True,
                            text=True, env={**environ, **env}, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def tcmalloc():
    if allocator.find_tcmalloc() is None:
        if running_in_ci():
            pytest.fail(f"tcmalloc is not installed: `make test` installs it ({allocator.INSTALL_HINT})")
        pytest.skip(f"tcmalloc is not installed ({allocator.INSTALL_HINT})")


def test_a_process_restarts_with_tcmalloc_and_its_children_do_not_inherit_the_preload(tcmalloc):
    report = _probe("an-argument")
    assert report["tcmalloc_loaded"] and report["ld_preload"] == "" and not report["child_tcmalloc_loaded"]
    assert report["argv"] == ["an-argument"]  # the command line survives the restart


def test_the_switch_keeps_the_system_allocator_and_an_existing_preload_is_kept(tcmalloc):
    assert not _probe(**{allocator.ENV_SWITCH: "0"})["tcmalloc_loaded"]
    other = "libm.so.6"  # harmless, present on every glibc system
    report = _probe(LD_PRELOAD=other)
    assert report["tcmalloc_loaded"] and report["ld_preload"] == other


def test_only_processes_started_as_entry_points_restart():
    python = sys.executable
    assert allocator.started_as_entry_point([python, "-m", "imagenet_jax", "train"])
    assert allocator.started_as_entry_point([python, "-u", "-m", "imagenet_jax.main", "--config", "c.py"])
    assert allocator.started_as_entry_point([python, "/venv/bin/imagenet-jax", "train"])
    assert not allocator.started_as_entry_point([python, "-m", "pytest", "-k", "imagenet_jax"])
    assert not allocator.started_as_entry_point([python, "-c", "import sys;exec(eval(sys.stdin.readline()))"])
    assert not allocator.started_as_entry_point()  # this test process: a runner calling main() in-process stays


def test_advice_names_the_package_only_without_tcmalloc(monkeypatch):
    monkeypatch.setattr(allocator, "tcmalloc_loaded", lambda: False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert "libtcmalloc-minimal4" in allocator.advice()
    monkeypatch.setenv(allocator.ENV_SWITCH, "0")
    assert allocator.advice() is None
