"""The train command: its --help mirrors the absl flags imagenet_jax.main reads, absl parses the line (so
--config FILE[:VARIANT] and --config.KEY=VALUE work as ml_collections defines them), and a mistake in the line is a
usage error naming it; `python -m imagenet_jax train` and the classic `python -m imagenet_jax.main` are one command."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from absl import flags

from imagenet_jax.cli import train, train_flags
from imagenet_jax.cli.command import EXIT_USAGE, EXIT_USER_ERROR
from imagenet_jax.cli.dispatch import build_parser
from imagenet_jax.config.files import load_config_file
from tests.conftest import REPO


def test_help_lists_every_absl_flag_of_the_train_command(cli):
    code, out, _ = cli("train", "--help")
    assert code == 0
    for name in train_flags.TRAIN_FLAGS:
        assert f"--{name}" in out
    assert "--config.KEY=VALUE" in out and "(default: auto)" in out
    parser = build_parser(train.COMMAND, "train")
    mirrored = {action.dest: action for action in parser._actions if action.dest != "help"}
    assert set(mirrored) == set(train_flags.TRAIN_FLAGS)
    for name, holder in train_flags.TRAIN_FLAGS.items():
        assert mirrored[name].default == flags.FLAGS[holder.name].default or name == "config"


# ml_collections loads config files with importlib's deprecated load_module(); it is not ours to change.
@pytest.mark.filterwarnings("ignore:the load_module\\(\\) method is deprecated:DeprecationWarning")
def test_absl_parses_config_variant_and_overrides_on_its_own_flag_values():
    argv = ["train", "--config=configs/papers/resnet_cifar.py:resnet56", "--workdir=w", "--config.num_epochs=2",
            "--config.schedule.warmup_epochs=0", "--eval=minival=classification,holdout=100"]
    values = flags.FlagValues()
    holders = train_flags.define(values, sys_argv=argv)
    assert values(argv) == ["train"]
    config = holders["config"].value
    assert config.num_epochs == 2 and config.schedule.warmup_epochs == 0
    expected = load_config_file("configs/papers/resnet_cifar.py:resnet56").model_options.to_dict()
    assert config.model_options.to_dict() == expected
    assert holders["workdir"].value == "w" and holders["eval"].value == ["minival=classification,holdout=100"]


def test_a_missing_config_file_or_an_unknown_key_is_a_usage_error(cli, tmp_path):
    code, _, err = cli("train", "--config", "configs/nonexistent.py")
    assert code == EXIT_USAGE and "error: --config configs/nonexistent.py: no such file configs/nonexistent.py" in err
    message = train.unknown_override(["train", "--config", "configs/default.py", "--config.batch_size=8",
                                      "--config.schedule.no_such_key=1"])
    assert message.startswith("--config.schedule.no_such_key=1: config.schedule.no_such_key is not a key of "
                              "configs/default.py")
    assert train.unknown_override(["train", "--config", "configs/default.py", "--config.batch_size=8"]) is None
    code, _, err = cli("train")
    assert code == EXIT_USAGE and "the following arguments are required: --config" in err


def test_front_door_train_reports_a_config_error_in_one_line_with_exit_2(tmp_path):
    command = [sys.executable, "-m", "imagenet_jax", "train", "--config", "configs/default.py",
               f"--workdir={tmp_path / 'w'}", "--config.batch_size=0"]
    done = subprocess.run(command, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == EXIT_USER_ERROR, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1] == "error: config.batch_size=0 must be > 0."
    assert "Traceback" not in done.stderr


def test_an_override_of_a_moved_or_misspelled_key_says_where_it_went():
    def message(override: str) -> str:
        return train.unknown_override(["train", "--config", "configs/default.py", override])

    assert message("--config.color_jitter=0.4") == (
        '--config.color_jitter=0.4: config.color_jitter was removed: append "|color_jitter(0.4)" to '
        "config.train_preprocess.")
    assert "It moved to config.model_options.aux_loss_weight" in message("--config.aux_loss_weight=0.3")
    assert "Did you mean config.batch_size?" in message("--config.batch_sze=8")
