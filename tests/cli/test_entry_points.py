"""Every way in is the same command: the old `python -m imagenet_jax.<module>` entry points are shims over the
front door's commands (same flags, same help), and the console script `imagenet-jax` is the front door."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import os
import sys
import tomllib

import pytest

from imagenet_jax import cli
from imagenet_jax.cli import COMMANDS
from imagenet_jax.cli.export import FORMATS
from tests.cli.conftest import ENTRY_MODULES
from tests.conftest import REPO


def _shim(module: str):
    """The module whose main() `python -m module` runs (the package's __main__ for a package)."""
    spec = importlib.util.find_spec(module)
    return importlib.import_module(f"{module}.__main__" if spec.submodule_search_locations else module)


@pytest.mark.parametrize("module", sorted(ENTRY_MODULES))
def test_each_old_entry_point_is_the_same_command_with_the_same_flags(module, cli, capsys, monkeypatch):
    name = ENTRY_MODULES[module]
    if module == "imagenet_jax.main":  # main(argv) is absl's; `python -m imagenet_jax.main` calls run()
        monkeypatch.setattr(sys, "argv", ["main.py", "--help"])
        with pytest.raises(SystemExit) as done:
            importlib.import_module(module).run()
        code = done.value.code
    else:
        code = _shim(module).main(["--help"])
    old = capsys.readouterr().out
    assert code == 0 and old.startswith(f"usage: python -m {module} ")
    _, new, _ = cli(name, "--help")

    def same(text: str) -> str:  # without either program name; usage lines wrap by its length
        return " ".join(text.replace(f"python -m {module}", "PROG").replace(f"imagenet-jax {name}", "PROG").split())

    assert same(old) == same(new)


def test_every_command_has_an_old_entry_point_and_the_table_has_them_all():
    assert sorted(ENTRY_MODULES.values()) == sorted(COMMANDS)


def test_export_formats_for_help_are_the_exporters():
    from imagenet_jax.export import FORMATS as EXPORTERS

    assert sorted(FORMATS) == EXPORTERS.names()


def test_the_console_script_is_the_front_door():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as stream:
        scripts = tomllib.load(stream)["project"]["scripts"]
    assert scripts == {"imagenet-jax": "imagenet_jax.cli:main"}
    try:
        distribution = importlib.metadata.distribution("imagenet_jax")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("imagenet_jax is not installed")
    source = json.loads(distribution.read_text("direct_url.json") or "{}").get("url", "")
    if source.rstrip("/") != f"file://{REPO}":
        pytest.skip(f"the installed imagenet_jax is {source or 'not an editable install'}, not this checkout")
    entry = next(point for point in distribution.entry_points
                 if point.group == "console_scripts" and point.name == "imagenet-jax")
    assert entry.load() is cli.main
