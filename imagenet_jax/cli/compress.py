"""compress: measure a run's compression (pruning's sparsity; int8 post-training quantization).

    python -m imagenet_jax compress report --workdir DIR [--checkpoint best|latest|STEP] [--evaluate] [--json PATH]
    python -m imagenet_jax compress quantize --workdir DIR [--checkpoint ...] [--calibration_steps N]
        [--batch_size B] [--eval_batches N] [--json PATH] [--export stablehlo|savedmodel|onnx --output PATH]

`report`: sparsity per layer, parameter count (total, nonzero), model size and the checkpoint's accuracy (from
metrics.jsonl, or evaluated with --evaluate). `quantize`: int8 post-training quantization through qwix, calibrated
on N training batches; accuracy of the float and the quantized model, their size and CPU latency per batch; with
--export, the quantized model is written in that format (as `export` writes float ones). --checkpoint defaults to
best, as in every command (it was latest here before the one front door).
"""

from __future__ import annotations

import argparse
import json

from imagenet_jax.cli import shared
from imagenet_jax.cli.command import Command, register


def _add_common_flags(parser: argparse.ArgumentParser) -> None:
    shared.WORKDIR.add(parser, required=True)
    shared.CHECKPOINT.add(parser)
    parser.add_argument("--json", default="", metavar="PATH",
                        help="also write the result as JSON to this file ('-': only the JSON, on stdout)")


def add_report_flags(parser: argparse.ArgumentParser) -> None:
    """compress report's flags."""
    _add_common_flags(parser)
    parser.add_argument("--evaluate", action="store_true",
                        help="evaluate the checkpoint instead of reading metrics.jsonl")


def add_quantize_flags(parser: argparse.ArgumentParser) -> None:
    """compress quantize's flags."""
    _add_common_flags(parser)
    parser.add_argument("--calibration_steps", type=int, default=0, metavar="N",
                        help="training batches to calibrate on (0: config.quantization.calibration_steps)")
    shared.BATCH_SIZE.add(parser)
    parser.add_argument("--eval_batches", type=int, default=0, metavar="N",
                        help="eval batches scored (0: the whole split)")
    parser.add_argument("--export", default="", metavar="FORMAT",
                        help="also export the quantized model: stablehlo|savedmodel|onnx")
    parser.add_argument("--output", default="", metavar="PATH", help="with --export: the exported model's path")


def _print(result: dict, text: str, json_path: str) -> int:
    if json_path == "-":
        print(json.dumps(result, indent=2))
        return 0
    print(text)
    if json_path:
        with open(json_path, "w") as stream:
            json.dump(result, stream, indent=2)
    return 0


def run_report(args: argparse.Namespace) -> int:
    """Prints (and writes) the sparsity report."""
    from imagenet_jax.compress import report

    result = report.report(args.workdir, args.checkpoint, args.evaluate)
    return _print(result, report.format_report(result), args.json)


def run_quantize(args: argparse.Namespace) -> int:
    """Quantizes, measures, optionally exports; prints (and writes) the comparison."""
    from imagenet_jax.compress import report
    from imagenet_jax.runs import load_run

    batch_size = shared.run_batch_size(args.batch_size, load_run(args.workdir).config)
    result = report.quantize(args.workdir, args.checkpoint, args.calibration_steps or None, batch_size,
                             args.eval_batches or None, export_format=args.export, export_output=args.output)
    return _print(result, report.format_quantize(result), args.json)


COMMAND = register("compress", Command(

    help="measure compression: sparsity report of a pruned run, int8 quantization (report, quantize)",
    description=__doc__,
    subcommands={
        "report": Command(help="sparsity per layer, parameter counts, size and accuracy of a checkpoint",
                          add_flags=add_report_flags, run=run_report, description=__doc__),
        "quantize": Command(help="int8 post-training quantization: accuracy delta, size, latency; --export",
                            add_flags=add_quantize_flags, run=run_quantize, description=__doc__),
    }))
