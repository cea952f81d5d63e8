"""Every way in is the same command: the old `python -m imagenet_jax.<module>` entry points are shims over the
front door's commands (same flags, same help), and the console script `imagenet-jax` is the front door."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import tomllib

import pytest

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
    # The script pip installed beside this interpreter (make install), run as a user would.
    script = os.path.join(os.path.dirname(sys.executable), "imagenet-jax")
    if not os.path.exists(script):
        pytest.skip(f"no installed console script at {script} (pip install -e . installs it)")
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": REPO})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: imagenet-jax COMMAND")
    assert all(f"  {name} " in result.stdout for name in COMMANDS)
