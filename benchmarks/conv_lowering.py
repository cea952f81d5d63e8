"""Fwd+bwd time of one convolution on CPU: XLA's convolution against patches + matmul, over map sizes and channels.

    python benchmarks/conv_lowering.py --batch 32 --json benchmark_results/conv_lowering.json

Chooses `AUTO_MAX_OUTPUT_PIXELS` / `AUTO_MIN_IN_CHANNELS` in imagenet_jax/models/conv_lowering.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from imagenet_jax.models import conv_lowering  # noqa: E402

NUMBERS = ("NHWC", "HWIO", "NHWC")


def time_conv(mode: str, batch: int, size: int, channels: int, kernel: int, repeats: int) -> float:
    """Median seconds of value-and-grad of sum(conv(x, w)**2) under lowering `mode`."""
    conv_lowering.set_cpu_conv_lowering(mode)
    x = jax.random.normal(jax.random.key(0), (batch, size, size, channels))
    w = jax.random.normal(jax.random.key(1), (kernel, kernel, channels, channels)) * 0.05
    pad = ((kernel // 2, kernel // 2),) * 2

    def loss(x, w):
        y = conv_lowering.conv_general_dilated(x, w, (1, 1), pad, dimension_numbers=NUMBERS)
        return jnp.sum(y * y)

    step = jax.jit(jax.grad(loss, argnums=(0, 1)))
    jax.block_until_ready(step(x, w))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(step(x, w))
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    """Prints one row per shape with both lowerings and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--sizes", default="2,4,7,8,14,16,28")
    parser.add_argument("--channels", default="32,64,128,256,512")
    parser.add_argument("--kernels", default="3,1")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    rows = []
    print(f"{'k':>2} {'size':>4} {'ch':>4} {'xla ms':>9} {'patches ms':>11} {'xla/patches':>11}", flush=True)
    for kernel in map(int, args.kernels.split(",")):
        for size in map(int, args.sizes.split(",")):
            for channels in map(int, args.channels.split(",")):
                xla = time_conv("xla", args.batch, size, channels, kernel, args.repeats)
                patches = time_conv("patches", args.batch, size, channels, kernel, args.repeats)
                rows.append({"kernel": kernel, "size": size, "channels": channels, "xla_ms": 1e3 * xla,
                             "patches_ms": 1e3 * patches, "speedup": xla / patches})
                print(f"{kernel:2d} {size:4d} {channels:4d} {1e3 * xla:9.2f} {1e3 * patches:11.2f} "
                      f"{xla / patches:11.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as stream:
            json.dump({"batch": args.batch, "uptime": os.getloadavg(), "rows": rows}, stream, indent=2)


if __name__ == "__main__":
    main()
