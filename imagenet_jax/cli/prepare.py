"""prepare: check and prepare a dataset once, before training (ImageNet archives, TFDS datasets, image folders).

    python -m imagenet_jax prepare --dataset imagenet2012 --manual_dir M --data_dir D
    python -m imagenet_jax prepare --dataset folder:/data/pets
    python -m imagenet_jax prepare --dataset NAME --data_dir D --convert | --overwrite
    python -m imagenet_jax prepare --dataset imagenet2012 --data_dir D --reencode_to D400 --max_side 400

ImageNet: the two ILSVRC2012 archives in --manual_dir are checked (names, sizes, structure, free disk) before
TFDS's own builder runs; TFDS's errors come back as one line saying what to do. "folder:PATH" datasets are
scanned for images that cannot be decoded. Details: imagenet_jax/prepare.py.
"""

from __future__ import annotations

import argparse
import os
import sys

from imagenet_jax.cli import shared
from imagenet_jax.cli.command import Command, register


def add_flags(parser: argparse.ArgumentParser) -> None:
    """prepare's flags."""
    parser.add_argument("--dataset", default="imagenet2012", help="registered/TFDS name or folder:PATH")
    parser.add_argument("--manual_dir", default="", metavar="DIR",
                        help="where manually downloaded source files are; '': DATA_DIR/downloads/manual")
    shared.DATA_DIR.add(parser, help="the TFDS data dir to prepare into; '': $TFDS_DATA_DIR or ~/tensorflow_datasets")
    parser.add_argument("--convert", action="store_true",
                        help="rewrite a dataset prepared in TFDS's tfrecord format as array_record, in place")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete the prepared dataset first and prepare it again (a damaged record file)")
    parser.add_argument("--reencode_to", default="", metavar="DIR",
                        help="write a copy of the prepared dataset with cheaper-to-decode JPEGs into this data dir "
                             "(FFCV-style: --max_side, --jpeg_quality, --reencode_splits)")
    parser.add_argument("--max_side", type=int, default=500, metavar="PIXELS",
                        help="with --reencode_to: longer image side at most this (0: keep sizes)")
    parser.add_argument("--jpeg_quality", type=int, default=90, metavar="Q",
                        help="with --reencode_to: JPEG quality 1..100")
    parser.add_argument("--reencode_splits", default="train", metavar="SPLIT,...",
                        help="with --reencode_to: the splits to re-encode; the others are copied unchanged")
    parser.add_argument("--export_folder", default="", metavar="DIR",
                        help="then write --classes of the prepared dataset as an image folder here")
    parser.add_argument("--classes", default="", help="with --export_folder: e.g. 0-7 or 8,9; '': all")
    parser.add_argument("--per_class", type=int, default=0, metavar="N",
                        help="with --export_folder: first N images per class (0: all)")
    parser.add_argument("--splits", default="train,test", metavar="SPLIT,...",
                        help="with --export_folder: the splits to write")


def run(args: argparse.Namespace) -> int:
    """Prepares (or converts, re-encodes, scans) the dataset and prints its split sizes."""
    from imagenet_jax import prepare
    from imagenet_jax.data import datasets, folders

    data_dir = datasets.resolve_data_dir(args.data_dir)
    if folders.is_folder_name(args.dataset):
        counts = prepare.scan_folder(args.dataset)
    elif args.convert:
        counts = prepare.convert_tfds(args.dataset, data_dir)
    elif args.reencode_to:
        from imagenet_jax.data import reencode

        settings = reencode.Settings(args.max_side, args.jpeg_quality,
                                     tuple(filter(None, args.reencode_splits.split(","))))
        counts = prepare.reencode_tfds(args.dataset, data_dir, args.reencode_to, settings)
    else:
        if args.dataset == "imagenet2012":
            manual_dir = args.manual_dir or os.path.join(data_dir, "downloads", "manual")
            for note in prepare.check_imagenet(manual_dir, data_dir):
                print(note, file=sys.stderr)
            args.manual_dir = manual_dir
        if args.overwrite:  # after the source checks: never delete data that cannot be made again here
            prepare.remove_prepared(args.dataset, data_dir)
        counts = prepare.prepare_tfds(args.dataset, args.manual_dir, data_dir)
    if args.export_folder:
        from imagenet_jax.data import pipeline, subset_folders

        info = pipeline.load_dataset(args.dataset, data_dir, args.manual_dir)
        classes = subset_folders.parse_classes(args.classes or f"0-{info.num_classes - 1}", info.num_classes)
        written = subset_folders.write_class_subset(info, args.splits.split(","), classes, args.export_folder,
                                                    args.per_class)
        print(f"wrote folder:{args.export_folder}: " + ", ".join(f"{s} {n}" for s, n in written.items()))
    print(f"{args.dataset}: " + ", ".join(f"{split} {count}" for split, count in sorted(counts.items())))
    return 0


COMMAND = register("prepare", Command(
    help="check and prepare a dataset (ImageNet archives, TFDS, image folders, re-encoded copies)",
    add_flags=add_flags, run=run, description=__doc__))
