"""Helpers of the command-line tests: every command of the table (subcommands included) and an in-process run."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from imagenet_jax.cli import COMMANDS, Command, main
from tests.conftest import REPO


@pytest.fixture(autouse=True)
def _in_the_repository(monkeypatch):
    """Relative paths (configs/..., benchmarks/...) are the repository's, as in README.md's commands."""
    monkeypatch.chdir(REPO)

# `python -m MODULE` entry points from before the front door, each the same command with the same flags.
ENTRY_MODULES = {
    "imagenet_jax.main": "train",
    "imagenet_jax.evaluate": "evaluate",
    "imagenet_jax.predict": "predict",
    "imagenet_jax.export": "export",
    "imagenet_jax.report": "report",
    "imagenet_jax.explain": "explain",
    "imagenet_jax.ensembles.soup_job": "soup",
    "imagenet_jax.tune": "tune",
    "imagenet_jax.prepare": "prepare",
    "imagenet_jax.sweep": "sweep",
    "imagenet_jax.compress": "compress",
    "imagenet_jax.models": "models",
    "imagenet_jax.training.optim": "optimizers",
    "imagenet_jax.data.fake_imagenet": "fake-imagenet",
}


def command_paths(table: Mapping[str, Command] = COMMANDS, prefix: tuple[str, ...] = ()
                  ) -> Iterator[tuple[tuple[str, ...], Command]]:
    """((name, subname...), Command) for every command and subcommand."""
    for name, command in table.items():
        yield (*prefix, name), command
        yield from command_paths(command.subcommands, (*prefix, name))


@pytest.fixture
def cli(capsys):
    """fn(*argv) -> (exit code, stdout, stderr) of the front door run in this process."""

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv), prog="imagenet-jax")
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
