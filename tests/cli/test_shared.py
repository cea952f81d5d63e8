"""Flags several commands take are defined once (imagenet_jax/cli/shared.py): one spelling, one default, listed with
that default by every command's --help; --checkpoint takes best, latest or a step."""

from __future__ import annotations

import argparse

import pytest

from imagenet_jax.cli import shared
from imagenet_jax.cli.dispatch import HelpFormatter, build_parser
from tests.cli.conftest import command_paths


def _shared_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [action for action in parser._actions if any(option.lstrip("-") in shared.SHARED or
                                                         option in shared.RENAMED for option in action.option_strings)]


def test_every_command_takes_the_shared_flags_from_their_one_definition():
    users = {name: [] for name in shared.SHARED}
    for path, command in command_paths():
        if command.add_flags is None:
            continue
        for action in _shared_actions(build_parser(command, " ".join(path))):
            flag = getattr(action, "shared_flag", None)
            assert flag is not None, f"{' '.join(path)} defines {action.option_strings} itself, not from shared.py"
            assert action.option_strings == [flag.option] and action.default == flag.default
            users[flag.name].append(" ".join(path))
    users = {name: sorted(paths) for name, paths in users.items()}
    assert users == {name: sorted(paths) for name, paths in {
        "workdir": ["train", "evaluate", "predict", "export", "report", "sweep", "compress report",
                    "compress quantize", "explain", "soup", "tune", "tune report"],
        "checkpoint": ["evaluate", "predict", "export", "compress report", "compress quantize", "explain"],
        "ema": ["evaluate", "export", "explain"],
        "batch_size": ["evaluate", "predict", "compress quantize", "explain", "soup"],
        "data_dir": ["evaluate", "prepare", "explain", "soup"],
    }.items()}


def test_every_commands_help_lists_its_shared_flags_with_their_defaults(cli):
    for path, command in command_paths():
        if command.add_flags is None:
            continue
        code, out, _ = cli(*path, "--help")
        assert code == 0
        help_text = " ".join(out.split())  # argparse wraps lines
        for action in _shared_actions(build_parser(command, "x")):
            flag = action.shared_flag
            assert flag.option in help_text, (path, flag.name)
            if flag.default is not None:
                shown = HelpFormatter.default_text(action)
                assert f"(default: {shown})" in help_text, (path, flag.name, shown)


def test_checkpoint_takes_best_latest_or_a_step():
    assert [shared.checkpoint_value(text) for text in ("best", "latest", "120")] == ["best", "latest", 120]
    with pytest.raises(argparse.ArgumentTypeError, match="'last' is not best, latest or a step number"):
        shared.checkpoint_value("last")


def test_batch_size_zero_is_the_runs_eval_batch_size():
    class Config(dict):
        batch_size = 256

    assert shared.run_batch_size(0, Config(eval_batch_size=0)) == 256
    assert shared.run_batch_size(0, Config(eval_batch_size=100)) == 100
    assert shared.run_batch_size(32, Config(eval_batch_size=100)) == 32
