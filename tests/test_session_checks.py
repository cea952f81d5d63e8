"""The test session's own checks: tests leave tracked files alone, and CI runs every oracle-backed test."""

from __future__ import annotations

import os
import subprocess
import tomllib
from importlib import metadata

import pytest

from tests import conftest
from tests.conftest import REPO


def _git(root, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
                   check=True, capture_output=True)


def test_tracked_file_changes_see_edits_of_tracked_files_only(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "tracked.txt").write_text("one")
    (tmp_path / "gone.txt").write_text("here")
    _git(tmp_path, "add", "tracked.txt", "gone.txt")
    _git(tmp_path, "commit", "-q", "-m", "start")
    assert conftest.tracked_file_changes(str(tmp_path)) == {}
    (tmp_path / "untracked.txt").write_text("new")  # not tracked: not the check's business (tmp files, caches)
    (tmp_path / "tracked.txt").write_text("two")
    (tmp_path / "gone.txt").unlink()
    first = conftest.tracked_file_changes(str(tmp_path))
    assert set(first) == {"tracked.txt", "gone.txt"} and first["gone.txt"] == "deleted"
    (tmp_path / "tracked.txt").write_text("three")  # already modified, modified again: still seen
    assert conftest.tracked_file_changes(str(tmp_path))["tracked.txt"] != first["tracked.txt"]


def test_changes_since_a_snapshot_ignore_commits_and_see_edits(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("one")
    (tmp_path / "b.txt").write_text("one")
    _git(tmp_path, "add", "a.txt", "b.txt")
    _git(tmp_path, "commit", "-q", "-m", "start")
    (tmp_path / "a.txt").write_text("edited before the session")
    snapshot = conftest.tracked_files_snapshot(str(tmp_path))
    assert conftest.tracked_files_changed_since(snapshot) == []
    _git(tmp_path, "commit", "-q", "-am", "a developer commits while the tests run")  # content unchanged: fine
    assert conftest.tracked_files_changed_since(snapshot) == []
    (tmp_path / "b.txt").write_text("a test wrote this")
    (tmp_path / "a.txt").write_text("and this")
    assert conftest.tracked_files_changed_since(snapshot) == ["a.txt", "b.txt"]


def test_tracked_file_changes_is_none_outside_a_git_checkout(tmp_path):
    assert conftest.tracked_file_changes(str(tmp_path)) is None


def test_missing_required_module_fails_under_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setattr(conftest, "CI_REQUIRED_MODULES", conftest.CI_REQUIRED_MODULES | {"no_such_oracle_module"})
    monkeypatch.setenv("CI", "true")
    with pytest.raises(ModuleNotFoundError, match="no_such_oracle_module"):
        pytest.importorskip("no_such_oracle_module")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        pytest.importorskip("no_such_oracle_module")


def test_ci_has_the_parity_extra_at_its_pinned_versions():
    if not conftest.running_in_ci():
        pytest.skip("outside CI, torch and torchvision are optional (make test-parity installs them)")
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as stream:
        pins = tomllib.load(stream)["project"]["optional-dependencies"]["parity"]
    for pin in pins:
        name, version = pin.split("==")
        assert metadata.version(name).split("+")[0] == version, pin
