"""python -m imagenet_jax.report --workdir DIR [--compare DIR2 ...] [--out PATH] [--no-samples]"""

from __future__ import annotations

import argparse

from imagenet_jax.report import write_report


def main(argv: list[str] | None = None) -> str:
    """Parses the flags, writes the report, prints and returns index.html's path."""
    parser = argparse.ArgumentParser(prog="python -m imagenet_jax.report", description=__doc__)
    parser.add_argument("--workdir", required=True, help="the run to report on")
    parser.add_argument("--compare", nargs="*", default=[], help="other runs whose curves are overlaid")
    parser.add_argument("--out", default=None, help="output folder (default DIR/report)")
    parser.add_argument("--no-samples", action="store_true", help="skip the sample images (no checkpoint restore)")
    args = parser.parse_args(argv)
    path = write_report(args.workdir, tuple(args.compare), args.out, samples=not args.no_samples)
    print(path)
    return path


if __name__ == "__main__":
    main()
