"""The entry points restart once with tcmalloc preloaded, keep it out of their children, and honour the off switch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from imagenet_jax.parallel import allocator
from tests.conftest import running_in_ci

# A process that restarts itself like the entry points, then reports on itself and on a child it starts.
PROBE = """
import json, os, subprocess, sys
from imagenet_jax.parallel import allocator
allocator.restart_with_tcmalloc()
child = subprocess.run([sys.executable, "-c", "from imagenet_jax.parallel import allocator; "
                        "print(allocator.tcmalloc_loaded())"], capture_output=True, text=True, check=True)
print(json.dumps({"loaded": allocator.tcmalloc_loaded(), "preload": os.environ.get("LD_PRELOAD", ""),
                  "child_loaded": child.stdout.strip() == "True", "pid_argv": sys.argv}))
"""


def _probe(**env: str) -> dict:
    environ = {key: value for key, value in os.environ.items() if key not in ("LD_PRELOAD", allocator.ENV_SWITCH)}
    result = subprocess.run([sys.executable, "-c", PROBE, "an-argument"], capture_output=True, text=True,
                            env={**environ, **env}, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def tcmalloc():
    if allocator.find_tcmalloc() is None:
        if running_in_ci():
            pytest.fail(f"tcmalloc is not installed: `make test` installs it ({allocator.INSTALL_HINT})")
        pytest.skip(f"tcmalloc is not installed ({allocator.INSTALL_HINT})")


def test_a_process_restarts_with_tcmalloc_and_its_children_do_not_inherit_the_preload(tcmalloc):
    report = _probe()
    assert report["loaded"] and report["preload"] == "" and not report["child_loaded"]
    assert report["pid_argv"] == ["-c", "an-argument"]  # the command line survives the restart


def test_the_switch_keeps_the_system_allocator_and_an_existing_preload_is_kept(tcmalloc):
    assert not _probe(**{allocator.ENV_SWITCH: "0"})["loaded"]
    other = "libm.so.6"  # harmless, present on every glibc system
    report = _probe(LD_PRELOAD=other)
    assert report["loaded"] and report["preload"] == other


def test_advice_names_the_package_only_without_tcmalloc(monkeypatch):
    monkeypatch.setattr(allocator, "tcmalloc_loaded", lambda: False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert "libtcmalloc-minimal4" in allocator.advice()
    monkeypatch.setenv(allocator.ENV_SWITCH, "0")
    assert allocator.advice() is None
