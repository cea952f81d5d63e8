"""The flags several commands take, each defined once here: one spelling (underscores, as absl's --config.key) and one
default. Commands add them with `WORKDIR.add(parser)`; a flag's old spelling is refused with the new one named."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

CHECKPOINT_CHOICES = "best, latest or a step number"


def checkpoint_value(text: str) -> str | int:
    """--checkpoint's value: "best", "latest" or a step number (an int)."""
    if text in ("best", "latest"):
        return text
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r} is not {CHECKPOINT_CHOICES}")


@dataclasses.dataclass(frozen=True)
class SharedFlag:
    """A flag with the same spelling, default and meaning in every command that takes it."""

    name: str  # without the dashes
    help: str
    default: Any = None
    type: Any = None
    metavar: str | None = None
    boolean: bool = False  # a switch (store_true); its default is False

    @property
    def option(self) -> str:
        """The flag as typed: --name."""
        return f"--{self.name}"

    def add(self, parser: argparse.ArgumentParser, *, required: bool = False, help: str | None = None
            ) -> argparse.Action:
        """Adds the flag to `parser`; `help` replaces the shared text where a command means something narrower."""
        text = help or self.help
        if self.boolean:
            action = parser.add_argument(self.option, action="store_true", help=text)
        else:
            action = parser.add_argument(self.option, required=required, default=self.default, type=self.type,
                                         metavar=self.metavar, help=text)
        action.shared_flag = self  # the tests check that every command's copy is this one
        return action


WORKDIR = SharedFlag("workdir", "the run's directory, local or gs://bucket/dir: checkpoints, metrics.jsonl, "
                     "config.json", metavar="DIR")
CHECKPOINT = SharedFlag("checkpoint", "which checkpoint: best (the best eval, config.best_metric), latest, or a step",
                        default="best", type=checkpoint_value, metavar="best|latest|STEP")
EMA = SharedFlag("ema", "use the EMA weights (runs trained with config.ema_decay > 0; logged as <set>_ema)",
                 boolean=True, default=False)
BATCH_SIZE = SharedFlag("batch_size", "images per batch, global; 0: the run's eval batch size "
                        "(config.eval_batch_size, else config.batch_size)", default=0, type=int, metavar="N")
DATA_DIR = SharedFlag("data_dir", "the TFDS data dir; '': the run's config.data_dir, else $TFDS_DATA_DIR or "
                      "~/tensorflow_datasets", default="", metavar="DIR")

SHARED = {flag.name: flag for flag in (WORKDIR, CHECKPOINT, EMA, BATCH_SIZE, DATA_DIR)}

# Spellings that changed with the front door, besides dashes (--batch-size is --batch_size: every flag has
# underscores, and a dashed spelling of a flag the command has is named as such).
RENAMED = {
    "--use_ema": "--ema",  # evaluate
}


def run_batch_size(requested: int, config: Any) -> int:
    """--batch_size, or for 0 the run's eval batch size (config.eval_batch_size, else config.batch_size)."""
    return requested or config.get("eval_batch_size") or config.batch_size
