"""predict: the top-k classes of image files, with a trained run's model and its eval preprocessing.

    python -m imagenet_jax predict --workdir DIR [--checkpoint best|latest|STEP] [--top_k 5] [--json] img.jpg dir/

Directories are searched recursively for images. Images are preprocessed one by one on the host (the run's
`eval_preprocess` chain, e.g. resize + center crop) and classified in batches of --batch_size. A file that cannot
be decoded is reported on stderr (and under "skipped" with --json) and the others go on.
Exit codes: 0 every image classified, 1 some were skipped, 2 nothing to do (no run, checkpoint or image).
"""

from __future__ import annotations

import argparse
import json
import sys

from imagenet_jax.cli import shared
from imagenet_jax.cli.command import Command, register
from imagenet_jax.errors import UserFacingError


def add_flags(parser: argparse.ArgumentParser) -> None:
    """predict's flags."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files and directories of images")
    shared.WORKDIR.add(parser, required=True)
    shared.CHECKPOINT.add(parser)
    parser.add_argument("--top_k", type=int, default=5, metavar="K", help="classes printed per image")
    shared.BATCH_SIZE.add(parser, help=f"{shared.BATCH_SIZE.help}, at most the number of images")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout, for machines")


def run(args: argparse.Namespace) -> int:
    """Classifies the images and prints them; 1 when some file could not be decoded."""
    from imagenet_jax import predict

    files = predict.image_files(args.paths)
    if not files:
        raise UserFacingError(f"no image files ({', '.join(predict.IMAGE_SUFFIXES)}) in {' '.join(args.paths)}")
    from imagenet_jax.runs import load_run

    loaded = load_run(args.workdir)
    batch_size = min(shared.run_batch_size(args.batch_size, loaded.config), len(files))
    results, skipped = predict.predict_files(loaded, files, args.checkpoint, args.top_k, batch_size)
    for item in skipped:
        print(f"skipped {item['path']}: cannot decode ({item['error']})", file=sys.stderr)
    if args.json:
        print(json.dumps({"predictions": results, "skipped": skipped}, indent=1))
    else:
        for result in results:
            print(result["path"])
            for prediction in result["predictions"]:
                print(f"  {prediction['probability']:7.2%}  {prediction['class']} ({prediction['index']})")
    return predict.EXIT_SOME_SKIPPED if skipped else predict.EXIT_OK


COMMAND = register("predict", Command(
    help="print the top-k classes of image files with a trained run", add_flags=add_flags, run=run,
    description=__doc__))
