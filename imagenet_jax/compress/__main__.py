"""Command line: measure a run's compression.

    python -m imagenet_jax.compress report --workdir DIR [--checkpoint latest|best|STEP] [--evaluate] [--json PATH]
    python -m imagenet_jax.compress quantize --workdir DIR [--checkpoint ...] [--calibration-steps N]
        [--batch-size B] [--eval-batches N] [--json PATH] [--export stablehlo|savedmodel|onnx --output PATH]

`report`: sparsity per layer, parameter count (total, nonzero), model size and the checkpoint's accuracy (from
metrics.jsonl, or evaluated with --evaluate). `quantize`: int8 post-training quantization through qwix, calibrated
on N training batches; accuracy of the float and the quantized model, their size and CPU latency per batch; with
--export, the quantized model is written in that format (as `python -m imagenet_jax.export` writes float ones).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from imagenet_jax.errors import UserFacingError  # noqa: E402


def main(argv: Sequence[str]) -> int:
    """Runs the subcommand; returns the exit code (2: no run, no checkpoint or a missing extra)."""
    parser = argparse.ArgumentParser(prog="python -m imagenet_jax.compress", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("report", "quantize"):
        command = commands.add_parser(name)
        command.add_argument("--workdir", required=True, help="the run's --workdir (local or gs://)")
        command.add_argument("--checkpoint", default="latest", help="latest, best (highest eval top-1) or a step")
        command.add_argument("--json", default="", help="also write the result as JSON to this file ('-': stdout)")
    commands.choices["report"].add_argument("--evaluate", action="store_true",
                                            help="evaluate the checkpoint instead of reading metrics.jsonl")
    quantize = commands.choices["quantize"]
    quantize.add_argument("--calibration-steps", type=int, default=0,
                          help="training batches to calibrate on (0: config.quantization.calibration_steps)")
    quantize.add_argument("--batch-size", type=int, default=256)
    quantize.add_argument("--eval-batches", type=int, default=0, help="eval batches scored (0: the whole split)")
    quantize.add_argument("--export", default="", help="also export the quantized model: stablehlo|savedmodel|onnx")
    quantize.add_argument("--output", default="", help="with --export: the exported model's path")
    args = parser.parse_args(argv)
    from imagenet_jax.compress import report

    try:
        if args.command == "report":
            result = report.report(args.workdir, args.checkpoint, args.evaluate)
            text = report.format_report(result)
        else:
            result = report.quantize(args.workdir, args.checkpoint, args.calibration_steps or None, args.batch_size,
                                     args.eval_batches or None, export_format=args.export, export_output=args.output)
            text = report.format_quantize(result)
    except UserFacingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json == "-":
        print(json.dumps(result, indent=2))
        return 0
    print(text)
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(result, stream, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
