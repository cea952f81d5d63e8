"""export: write a trained run's model as StableHLO, a TensorFlow SavedModel or ONNX.

    python -m imagenet_jax export --workdir DIR --format stablehlo|savedmodel|onnx --output PATH
        [--checkpoint best|latest|STEP] [--ema]

Every format takes uint8 NHWC images at the run's eval resolution and returns float32 logits, for any batch size;
the class names and the input contract are written beside it (imagenet_jax/export/).
"""

from __future__ import annotations

import argparse

from imagenet_jax.cli import shared
from imagenet_jax.cli.command import Command, register

FORMATS = ("stablehlo", "savedmodel", "onnx")  # imagenet_jax.export.FORMATS, without importing JAX for --help


def add_flags(parser: argparse.ArgumentParser) -> None:
    """export's flags."""
    shared.WORKDIR.add(parser, required=True)
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--output", required=True, metavar="PATH",
                        help="file (stablehlo, onnx) or directory (savedmodel)")
    shared.CHECKPOINT.add(parser)
    shared.EMA.add(parser)


def run(args: argparse.Namespace) -> int:
    """Exports the run and prints the paths written."""
    from imagenet_jax.export.common import export_run
    from imagenet_jax.runs import load_run

    for path in export_run(load_run(args.workdir), args.format, args.output, args.checkpoint, args.ema):
        print(f"wrote {path}")
    return 0


COMMAND = register("export", Command(
    help="export a trained run's model: StableHLO, SavedModel or ONNX", add_flags=add_flags, run=run,
    description=__doc__))
