"""`python -m imagenet_jax COMMAND [FLAGS ...]`: the front door (imagenet_jax/cli); `--help` lists the commands."""

import sys

from imagenet_jax.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m imagenet_jax"))
