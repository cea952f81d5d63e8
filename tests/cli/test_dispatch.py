"""The front door and its one error path: --help lists every command, errors are one line with their exit codes,
old flag spellings name the new one, and `python -m imagenet_jax` is cheap (no JAX or TensorFlow for --help)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from imagenet_jax.cli import COMMANDS, Command, UsageError, register
from imagenet_jax.cli.command import EXIT_PREEMPTED, EXIT_USAGE, EXIT_USER_ERROR
from imagenet_jax.errors import CheckpointError
from tests.cli.conftest import command_paths
from tests.conftest import REPO

HEAVY_MODULES = ("jax", "tensorflow", "flax", "optax", "orbax", "tensorflow_datasets")


def test_front_door_help_lists_every_command_with_its_one_line_description(cli):
    code, out, _ = cli("--help")
    assert code == 0
    for name, command in COMMANDS.items():
        assert "\n" not in command.help
        assert f"  {name} " in out and command.help in out


def test_every_command_and_subcommand_help_exits_0(cli):
    for path, command in command_paths():
        code, out, err = cli(*path, "--help")
        assert code == 0, (path, err)
        assert out.startswith(f"usage: imagenet-jax {' '.join(path)}")
        for name in command.subcommands:
            assert f"  {name} " in out


def test_unknown_or_missing_command_is_a_usage_error_naming_the_commands(cli):
    code, _, err = cli("trian", "--config", "x.py")
    assert code == EXIT_USAGE and "unknown command 'trian' (did you mean train?)" in err
    assert "commands: compress, evaluate, explain, export" in err
    assert cli()[0] == EXIT_USAGE
    code, _, err = cli("--workdir", "x")
    assert code == EXIT_USAGE and "the command comes first" in err


@pytest.mark.parametrize("argv, old, new", [
    (("evaluate", "--workdir", "w", "--use_ema"), "--use_ema", "--ema"),
    (("compress", "quantize", "--workdir", "w", "--batch-size", "64"), "--batch-size", "--batch_size"),
    (("compress", "quantize", "--workdir", "w", "--calibration-steps=2"), "--calibration-steps", "--calibration_steps"),
    (("report", "--workdir", "w", "--no-samples"), "--no-samples", "--no_samples"),
    (("train", "--config", "configs/default.py", "--num-processes=2"), "--num-processes", "--num_processes"),
    (("evaluate", "--workdir", "w", "--data-dir", "d"), "--data-dir", "--data_dir"),
])
def test_an_old_spelling_is_one_line_naming_the_new_one(cli, argv, old, new):
    code, out, err = cli(*argv)
    assert code == EXIT_USAGE and out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: {old} is now spelled {new} ")


def test_a_usage_error_prints_the_commands_usage_and_exits_2(cli):
    code, _, err = cli("export", "--workdir", "w", "--format", "stablehlo", "--output", "o", "--checkpoint", "bset")
    assert code == EXIT_USAGE
    assert err.startswith("usage: imagenet-jax export ") and "error: argument --checkpoint: 'bset' is not" in err
    code, _, err = cli("evaluate")
    assert code == EXIT_USAGE and "error: --workdir is required" in err
    code, _, err = cli("compress", "reprot")
    assert code == EXIT_USAGE and "unknown subcommand 'reprot'; choose one of: report, quantize" in err


def test_a_user_facing_error_is_one_line_and_exit_2(cli, tmp_path, monkeypatch):
    code, out, err = cli("predict", "--workdir", str(tmp_path), str(tmp_path / "missing.jpg"))
    assert (code, out) == (EXIT_USER_ERROR, "")
    assert err == f"error: {tmp_path / 'missing.jpg'}: no such file or directory\n"

    def fail(args):
        raise CheckpointError(f"{args.workdir} has no checkpoint yet.")

    temporary_command(monkeypatch, "fails", Command(help="raises", add_flags=lambda p: p.add_argument("--workdir"),
                                                   run=fail))
    code, _, err = cli("fails", "--workdir", "w")
    assert code == EXIT_USER_ERROR and err == "error: w has no checkpoint yet.\n"


def test_preempted_training_prints_its_message_and_exits_75(cli, monkeypatch):
    from imagenet_jax.experiment.loop import Preempted

    def preempt(args):
        raise Preempted(12)

    temporary_command(monkeypatch, "preempted", Command(help="raises Preempted", run=preempt))
    code, _, err = cli("preempted")
    assert code == EXIT_PREEMPTED == 75
    assert err == "preempted: saved a checkpoint at step 12; rerun the same command to resume\n"


def test_a_usage_error_raised_by_a_command_gets_its_usage(cli, monkeypatch):
    def refuse(args):
        raise UsageError("--a and --b exclude each other")

    temporary_command(monkeypatch, "refuses", Command(help="refuses", run=refuse))
    code, _, err = cli("refuses")
    assert code == EXIT_USAGE and err == "usage: imagenet-jax refuses [-h]\nerror: --a and --b exclude each other\n"


def temporary_command(monkeypatch, name: str, command: Command) -> None:
    """Registers `command` for this test only (the autouse fixture below removes it)."""
    del monkeypatch
    register(name, command)
    _added.append(name)


_added: list[str] = []


@pytest.fixture(autouse=True)
def _remove_temporary_commands():
    yield
    while _added:
        COMMANDS.unregister(_added.pop())


def test_the_table_refuses_a_name_registered_twice():
    with pytest.raises(ValueError, match="command 'train' is registered twice"):
        register("train", Command(help="again"))


def test_python_m_imagenet_jax_help_and_every_commands_help_load_neither_jax_nor_tensorflow():
    # One interpreter for all of it: --help of the front door and of every command, then what was imported.
    probe = (
        "import contextlib, io, json, sys\n"
        "from imagenet_jax.cli import main\n"
        "from tests.cli.conftest import command_paths\n"
        "codes = {}\n"
        "for path, _ in command_paths():\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        codes[' '.join(path)] = main([*path, '--help'])\n"
        f"print(json.dumps({{'codes': codes, 'heavy': [m for m in {HEAVY_MODULES!r} if m in sys.modules]}}))\n")
    env = {**os.environ, "PYTHONPATH": REPO}
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["heavy"] == []
    assert set(result["codes"].values()) == {0} and len(result["codes"]) == len(list(command_paths()))
    front = subprocess.run([sys.executable, "-m", "imagenet_jax", "--help"], cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=120)
    assert front.returncode == 0 and front.stdout.startswith("usage: python -m imagenet_jax COMMAND")
    assert all(f"  {name} " in front.stdout for name in COMMANDS)
