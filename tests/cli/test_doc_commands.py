"""Every command line of RESULTS.md, BENCHMARKS.md and experiments/README.md still parses, as README.md's do
(tests/cli/test_readme.py, whose reading of a document and of synopsis notation this reuses): the front door and
the old `python -m imagenet_jax.<module>` forms with the command's own parser (train's line also with absl, which
loads the config file and applies its overrides), `python benchmarks/X.py` and `python experiments/X.py` with the
script's argparse parser, stopped there. Shell variables a document assigns in its code blocks (`SMALL="..."`) are
expanded first. Nothing is trained, prepared or timed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from absl import flags

from imagenet_jax.cli import COMMANDS, train_flags
from imagenet_jax.cli.dispatch import build_parser, parse
from tests.cli.test_readme import INTEGER_PLACEHOLDERS, PARSE_ONLY, front_door_argv, readme_commands
from tests.cli.test_readme import words as readme_words
from tests.conftest import REPO

DOCS = ("RESULTS.md", "BENCHMARKS.md", os.path.join("experiments", "README.md"))
SCRIPT_PREFIXES = ("python benchmarks/", "python experiments/")


def shell_variables(path: str) -> dict[str, str]:
    """NAME -> value of every NAME="..." line of the document (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", open(path).read())
    return {name: " ".join(value.split()) for name, value in re.findall(r'^([A-Z_]+)="([^"]*)"\s*$', text, re.M)}


def words(command: str) -> list[str]:
    """README's reading, plus the integer placeholder as a flag's separate value (`--max_side N`)."""
    argv = readme_words(command)
    return [("1" if word in INTEGER_PLACEHOLDERS and index and argv[index - 1].startswith("--") else word)
            for index, word in enumerate(argv)]


def doc_commands(name: str) -> list[tuple[str, str]]:
    """("DOC:line", command) of every command line of the document, its shell variables expanded."""
    path = os.path.join(REPO, name)
    variables = shell_variables(path)
    found = []
    for number, command in readme_commands(path):
        for variable, value in variables.items():
            command = command.replace(f"${variable}", value)
        found.append((f"{name}:{number}", command))
    for number, line in enumerate(open(path).read().splitlines(), 1):  # readme_commands knows benchmarks/ only
        if line.strip().startswith("python experiments/"):
            found.append((f"{name}:{number}", line.strip().rstrip("\\").strip()))
    return found


COMMANDS_BY_DOC = [entry for name in DOCS for entry in doc_commands(name)]
FRONT_DOOR = [(where, command) for where, command in COMMANDS_BY_DOC if front_door_argv(words(command)) is not None]
SCRIPTS = [(where, command) for where, command in COMMANDS_BY_DOC if command.startswith(SCRIPT_PREFIXES)]


def test_each_document_has_commands_and_no_unexpanded_variable():
    for name in DOCS:
        assert any(where.startswith(f"{name}:") for where, _ in COMMANDS_BY_DOC), name
    assert not [(where, command) for where, command in COMMANDS_BY_DOC if "$" in command]


# ml_collections loads config files with importlib's deprecated load_module(); it is not ours to change.
@pytest.mark.filterwarnings("ignore:the load_module\\(\\) method is deprecated:DeprecationWarning")
@pytest.mark.parametrize("where, command", FRONT_DOOR, ids=[where for where, _ in FRONT_DOOR])
def test_doc_command_parses(where, command):
    argv = front_door_argv(words(command))
    name, rest = argv[0], argv[1:]
    assert name in COMMANDS, f"{where}: no command {name!r}"
    entry, path = COMMANDS.get(name), [name]
    while entry.subcommands and rest and rest[0] in entry.subcommands:
        entry, rest, path = entry.subcommands[rest[0]], rest[1:], [*path, rest[0]]
    if not rest:  # named in prose, e.g. "each is a config of the one training loop (`python -m imagenet_jax.main`)"
        return
    assert entry.run is not None, f"{where}: {name} needs a subcommand: {', '.join(entry.subcommands)}"
    args = parse(entry, build_parser(entry, " ".join(path)), rest)
    if name == "train":
        config_file = args.config.partition(".py:")[0].removesuffix(".py") + ".py"
        assert os.path.exists(os.path.join(REPO, config_file)), f"{where}: no config file {config_file}"
        values = flags.FlagValues()
        holders = train_flags.define(values, sys_argv=[name, *rest])
        cwd = os.getcwd()
        try:
            os.chdir(REPO)  # config paths are relative to the repository root
            assert values([name, *rest]) == [name], f"{where}: unexpected arguments"
            assert holders["config"].value is not None
        finally:
            os.chdir(cwd)


def test_doc_script_commands_parse():
    assert SCRIPTS
    done = subprocess.run([sys.executable, "-c", PARSE_ONLY, json.dumps([words(c)[1:] for _, c in SCRIPTS])],
                          cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    codes = json.loads(done.stdout.strip().splitlines()[-1])
    failed = [f"{where}: {command}" for (where, command), code in zip(SCRIPTS, codes, strict=True) if code != 0]
    assert not failed, f"{failed}\n{done.stderr[-3000:]}"
