"""Every command line README.md shows still parses: the lines of its shell code blocks and its inline code spans
that start with `python -m imagenet_jax`, `imagenet-jax`, `make` or `python benchmarks/`.

How each is checked (none of them trains, prepares or downloads anything):
- the front door and the old `python -m imagenet_jax.<module>` forms: the command's own parser reads the line, in
  this process (unknown flags, old spellings, bad values and missing required flags fail); train's line is then
  parsed by absl on a fresh FlagValues, which loads the config file and applies its --config.KEY overrides (not
  where --config is a placeholder, FILE:VARIANT); the listing commands that are cheap (`optimizers`,
  `evaluate --list`) are run. A command named without arguments in prose (`python -m imagenet_jax.evaluate`) is
  run with --help. Exempt: the syntax lines with the COMMAND placeholder (`python -m imagenet_jax COMMAND --help`;
  tests/cli/test_dispatch.py runs every command's --help).
- `make TARGET`: the target exists in the Makefile (exempt from running: they install, train or run the tests).
- `python benchmarks/X.py ...`: the script's argparse parser reads the line, all scripts in one subprocess, which
  stops each at its parse_args (exempt from running: benchmarks take minutes).
Synopsis notation is read as: [optional parts] included, the first of a|b|c alternatives, `...` dropped, and the
placeholders N and I of integer flags as 1; other placeholders (DIR, PATH, M, D) are plain strings.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys

import pytest
from absl import flags

from imagenet_jax.cli import COMMANDS, train_flags
from imagenet_jax.cli.dispatch import build_parser, parse
from tests.cli.conftest import ENTRY_MODULES
from tests.conftest import REPO

README = os.path.join(REPO, "README.md")
SHELL_FENCES = ("bash", "sh", "shell", "console")
PREFIXES = ("python -m imagenet_jax", "imagenet-jax ", "make ", "python benchmarks/")
WRAPPERS = ("srun ", "$ ")
INTEGER_PLACEHOLDERS = ("N", "I")
RUN_IN_TEST = (["optimizers"], ["evaluate", "--list"])  # cheap enough to run, not only to parse


def readme_commands(path: str = README) -> list[tuple[int, str]]:
    """(line number, command) of every command line of README.md: shell code block lines (continuations joined)
    and inline code spans, those starting with PREFIXES after a wrapper such as `srun`."""
    lines = open(path).read().splitlines()
    found, prose, fence, index = [], [], None, 0
    while index < len(lines):
        line = lines[index].strip()
        if line.startswith("```"):
            fence = None if fence is not None else line[3:].strip()
            prose.append("")
        elif fence is not None:
            prose.append("")
            number = index + 1
            while line.endswith("\\") and index + 1 < len(lines):
                index += 1
                line = line[:-1] + " " + lines[index].strip()
                prose.append("")
            if fence in SHELL_FENCES:
                found.append((number, line))
        else:
            prose.append(lines[index])
        index += 1
    text = "\n".join(prose)  # code blocks blanked: inline spans, which may wrap onto the next line
    for match in re.finditer(r"`([^`\n]+(?:\n[^`\n]+)?)`", text):
        found.append((text.count("\n", 0, match.start()) + 1, " ".join(match.group(1).split())))
    commands = []
    for number, command in sorted(found):
        for wrapper in WRAPPERS:
            command = command.removeprefix(wrapper)
        if command.startswith(PREFIXES):
            commands.append((number, command))
    return commands


def words(command: str) -> list[str]:
    """The command's words with the synopsis notation resolved (see the module docstring)."""
    result = []
    for word in shlex.split(command, comments=True):
        word = word.replace("[", "").replace("]", "")
        if word in ("", "..."):
            continue
        if re.fullmatch(r"[\w.-]+(\|[\w.-]+)+", word):
            word = word.split("|")[0]
        name, equals, value = word.partition("=")
        if name.startswith("--") and equals and value in INTEGER_PLACEHOLDERS:
            word = f"{name}=1"
        result.append(word)
    return result


def front_door_argv(argv: list[str]) -> list[str] | None:
    """COMMAND ARGS for a `python -m imagenet_jax ...`, `imagenet-jax ...` or `python -m imagenet_jax.MODULE ...`
    line; None for make and benchmark lines."""
    if argv[0] == "imagenet-jax":
        return argv[1:]
    if argv[:2] == ["python", "-m"] and argv[2] == "imagenet_jax":
        return argv[3:]
    if argv[:2] == ["python", "-m"] and argv[2].startswith("imagenet_jax."):
        assert argv[2] in ENTRY_MODULES, f"{argv[2]} is not an entry point: {sorted(ENTRY_MODULES)}"
        return [ENTRY_MODULES[argv[2]], *argv[3:]]
    return None


COMMAND_LINES = readme_commands()
FRONT_DOOR = [(number, command) for number, command in COMMAND_LINES
              if front_door_argv(words(command)) is not None and "COMMAND" not in words(command)]


def test_the_readme_documents_the_front_door_every_command_and_the_classic_train():
    documented = {front_door_argv(words(command))[0] for _, command in FRONT_DOOR} - {"--help"}
    assert documented == set(COMMANDS)
    assert any(command.startswith("python -m imagenet_jax train --config configs/default.py")
               for _, command in COMMAND_LINES)
    assert any(command.startswith("python -m imagenet_jax.main --config configs/resnet50.py")
               for _, command in COMMAND_LINES)
    assert len(FRONT_DOOR) >= 25


# ml_collections loads config files with importlib's deprecated load_module(); it is not ours to change.
@pytest.mark.filterwarnings("ignore:the load_module\\(\\) method is deprecated:DeprecationWarning")
@pytest.mark.parametrize("number, command", FRONT_DOOR, ids=[f"README.md:{number}" for number, _ in FRONT_DOOR])
def test_readme_command_parses(number, command, cli):
    argv = front_door_argv(words(command))
    if argv in RUN_IN_TEST or argv == ["--help"]:
        code, out, err = cli(*argv)
        assert code == 0 and out.strip(), f"README.md:{number}: {err}"
        return
    name, rest = argv[0], argv[1:]
    assert name in COMMANDS, f"README.md:{number}: no command {name!r}"
    entry, path = COMMANDS.get(name), [name]
    while entry.subcommands and rest and rest[0] in entry.subcommands:
        entry, rest, path = entry.subcommands[rest[0]], rest[1:], [*path, rest[0]]
    if not rest:  # named in prose
        assert cli(*path, "--help")[0] == 0
        return
    assert entry.run is not None, f"README.md:{number}: {name} needs a subcommand: {', '.join(entry.subcommands)}"
    args = parse(entry, build_parser(entry, " ".join(path)), rest)
    if name == "train" and os.path.exists(args.config.partition(".py:")[0].removesuffix(".py") + ".py"):
        values = flags.FlagValues()
        holders = train_flags.define(values, sys_argv=[name, *rest])
        assert values([name, *rest]) == [name], f"README.md:{number}: unexpected arguments"
        assert holders["config"].value is not None


def test_readme_make_targets_exist():
    targets = {words(command)[1] for _, command in COMMAND_LINES if command.startswith("make ")}
    defined = set(re.findall(r"^([\w-]+):", open(os.path.join(REPO, "Makefile")).read(), re.MULTILINE))
    assert targets and targets <= defined, targets - defined


PARSE_ONLY = """
import argparse, json, runpy, sys

class Parsed(Exception):
    pass

parse_args = argparse.ArgumentParser.parse_args

def parse_and_stop(self, args=None, namespace=None):
    parse_args(self, args, namespace)  # a line that does not parse exits 2 here
    raise Parsed

argparse.ArgumentParser.parse_args = parse_and_stop
codes = []
for script, *arguments in json.loads(sys.argv[1]):
    sys.argv = [script, *arguments]
    sys.path.insert(0, "benchmarks")
    try:
        runpy.run_path(script, run_name="__main__")
        codes.append("ran without parsing its command line")
    except Parsed:
        codes.append(0)
    except SystemExit as done:
        codes.append(done.code)
print(json.dumps(codes))
"""


def test_readme_benchmark_commands_parse():
    lines = [(number, words(command)[1:]) for number, command in COMMAND_LINES if command.startswith("python bench")]
    assert lines
    done = subprocess.run([sys.executable, "-c", PARSE_ONLY, json.dumps([argv for _, argv in lines])], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": REPO}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    codes = json.loads(done.stdout.strip().splitlines()[-1])
    failed = [f"README.md:{number}: {' '.join(argv)}" for (number, argv), code in zip(lines, codes) if code != 0]
    assert not failed, f"{failed}\n{done.stderr[-3000:]}"
