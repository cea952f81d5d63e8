"""fake-imagenet: write a small ImageNet in the official manual-download layout, made from real photographs (for
smoke tests and benchmarks; prepare it with `python -m imagenet_jax prepare --manual_dir M`).

    python -m imagenet_jax fake-imagenet --manual_dir M [--train_per_class 12 --val_images 20]
"""

from __future__ import annotations

import argparse

from imagenet_jax.cli.command import Command, register


def add_flags(parser: argparse.ArgumentParser) -> None:
    """fake-imagenet's flags."""
    parser.add_argument("--manual_dir", required=True, metavar="DIR", help="where the two archives are written")
    parser.add_argument("--train_per_class", type=int, default=12, metavar="N", help="training images per class")
    parser.add_argument("--val_images", type=int, default=20, metavar="N",
                        help="validation images (their labels decide the classes)")
    parser.add_argument("--extra_classes", type=int, default=0, metavar="N",
                        help="classes with training images only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quality", type=int, default=0, help="JPEG quality; 0: random in [75, 95]")
    parser.add_argument("--grain", type=float, default=0.0, help="noise std (10 with --quality 95: ImageNet-like)")


def run(args: argparse.Namespace) -> int:
    """Writes the archives and prints their counts."""
    from imagenet_jax.data.fake_imagenet import make_fake_imagenet

    counts = make_fake_imagenet(args.manual_dir, args.train_per_class, args.val_images, args.seed,
                                args.extra_classes, quality=args.quality, grain=args.grain)
    print(f"wrote {counts} to {args.manual_dir}")
    return 0


COMMAND = register("fake-imagenet", Command(
    help="write a small fake ImageNet (the official archive layout, real photographs) for tests",
    add_flags=add_flags, run=run, description=__doc__))
