"""File operations a run needs beyond epath's own, written once for local disks and object stores alike."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable

from etils import epath

from imagenet_jax.storage.paths import is_remote


def write_text_atomically(path: epath.Path, text: str) -> None:
    """Writes `text` so that readers see the old or the new content, never a half-written file."""
    if is_remote(path):
        path.write_text(text)  # an object upload is all-or-nothing
        return
    temporary = path.parent / f".{path.name}.tmp"
    temporary.write_text(text)
    os.replace(temporary, path)


def json_record(line: str) -> dict | None:
    """The JSON object on one line of a .jsonl file, or None when the line does not hold one."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def read_run_config(config_file: epath.Path) -> dict:
    """A workdir's config.json as a dict; a damaged one is a one-line error saying how to write it again."""
    from imagenet_jax.errors import CheckpointError

    try:
        config = json.loads(config_file.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        config = error
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_file} is damaged ({type(config).__name__}: {config}). The training run "
                              "writes it again: rerun its command on this workdir (a finished run resumes, "
                              "rewrites config.json and stops).")
    return config


def read_json_lines(path: epath.Path | str) -> list[dict]:
    """The objects of a .jsonl file ([] if it does not exist). A line that does not parse (a torn last line, after
    a kill mid-write) is left out with a warning naming it; the file is not changed."""
    path = epath.Path(path)
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip() and (record := json_record(line)) is None:
            logging.warning("%s line %d is not a JSON object (a write cut short?); left out", path, number)
        elif line.strip():
            records.append(record)
    return records


def copy_tree(source: epath.Path, target: epath.Path) -> None:
    """Copies the directory `source` to `target` (created), file by file."""
    target.mkdir(parents=True, exist_ok=True)
    for child in source.iterdir():
        if child.is_dir():
            copy_tree(child, target / child.name)
        else:
            child.copy(target / child.name, overwrite=True)


def move_tree(source: epath.Path, target: epath.Path) -> None:
    """Moves the directory `source` to `target`, replacing what was there (object stores: copy, then delete)."""
    if target.exists():
        target.rmtree()
    if is_remote(source):
        copy_tree(source, target)
        source.rmtree()
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(os.fspath(source), os.fspath(target))


class LineFile:
    """A text file written a line at a time (metrics.jsonl): appended locally, rewritten whole on object stores.

    Objects in a bucket cannot be appended to, so a remote file's lines are kept here and each append uploads
    the file again; the upload is atomic, so a killed run leaves every line written before it.
    """

    def __init__(self, path: epath.Path):
        """Opens `path` (which need not exist)."""
        self.path = path
        self._remote = is_remote(path)
        self._lines: list[str] | None = None  # remote files only

    def read_lines(self) -> list[str]:
        """The file's lines, without line ends; [] if it does not exist."""
        if self._remote and self._lines is not None:
            return list(self._lines)
        if not self.path.exists():
            return []
        return [line for line in self.path.read_text().splitlines() if line.strip()]

    def keep_only(self, keep: Callable[[str, bool], bool]) -> None:
        """Rewrites the file with only the lines for which `keep(line, is_last_line)` is true (atomically)."""
        lines = self.read_lines()
        kept = [line for index, line in enumerate(lines) if keep(line, index == len(lines) - 1)]
        if self._remote:
            self._lines = kept
        if len(kept) != len(lines):
            write_text_atomically(self.path, "".join(line + "\n" for line in kept))

    def append(self, line: str) -> None:
        """Adds one line to the end of the file."""
        if not self._remote:
            with self.path.open("a") as stream:
                stream.write(line + "\n")
            return
        if self._lines is None:
            self._lines = self.read_lines()
        self._lines.append(line)
        self.path.write_text("".join(item + "\n" for item in self._lines))
