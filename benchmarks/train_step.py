"""Images/s of the jit-compiled, sharded train step on synthetic data, for one or every registered model.

    python benchmarks/train_step.py --config configs/default.py --json out.json
    python benchmarks/train_step.py --config configs/resnet50.py --batch_size 256 --image_size 224
    python benchmarks/train_step.py --model all --batch_size 8 --image_size 64 --steps 3
    python benchmarks/train_step.py --config configs/resnet50.py --sweep_batch auto   # largest batch that fits
    python benchmarks/train_step.py --model resnet50 --image_size 224 --batch_size 8 --flops_only  # cost analysis

Every row reports img/s, model TFLOP/s and MFU (FLOPs per image from XLA's cost analysis of the compiled step,
peak from imagenet_jax/training/throughput.py), compile time and the step's peak device memory (memory_analysis).

Uses the same model, optimizer, schedule and step function as training; only the data is synthetic.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from imagenet_jax import models  # noqa: E402
from imagenet_jax.config import load_config_file  # noqa: E402
from imagenet_jax.core.state import create_train_state  # noqa: E402
from imagenet_jax.parallel import mesh as mesh_lib  # noqa: E402
from imagenet_jax.training import optim, throughput  # noqa: E402
from imagenet_jax.training.steps import make_train_step  # noqa: E402


def benchmark(config, model_name: str, batch_size: int, image_size: int, channels: int, num_classes: int,
              steps: int, warmup: int, flops_only: bool = False) -> dict:
    """Compiles the train step for `model_name` and times `steps` steps after `warmup` ones (none if `flops_only`)."""
    mesh = mesh_lib.make_data_mesh()
    replicated, batch_sharding = mesh_lib.replicated(mesh), mesh_lib.batch_sharded(mesh)
    dtype = jnp.bfloat16 if config.half_precision else jnp.float32
    options = dict(config.model_options) if model_name == config.model else {}
    model = models.create(model_name, num_classes=num_classes, dtype=dtype, **options)
    optimizer, schedule = optim.create(config, total_steps=1000, steps_per_epoch=100)
    state = jax.jit(lambda key: create_train_state(model, optimizer, key, (image_size, image_size, channels)),
                    out_shardings=replicated)(jax.random.key(0))
    state_sharding = jax.tree.map(lambda _: replicated, state)
    step = jax.jit(
        make_train_step(model, optimizer, schedule, num_classes=num_classes, mean=config.normalize_mean[:channels],
                        std=config.normalize_std[:channels], label_smoothing=config.label_smoothing),
        in_shardings=(state_sharding, batch_sharding, replicated), out_shardings=(state_sharding, replicated),
        donate_argnums=(0,))
    rng = np.random.default_rng(0)
    batch = mesh_lib.global_batch({
        "image": rng.integers(0, 256, (batch_size, image_size, image_size, channels), dtype=np.uint8),
        "label": rng.integers(0, num_classes, (batch_size,), dtype=np.int32),
    }, mesh)
    key = jax.random.key(0)
    compile_start = time.perf_counter()
    compiled = step.lower(state, batch, key).compile()  # the jit call below reuses this executable
    compile_seconds = time.perf_counter() - compile_start
    flops = throughput.compiled_flops(compiled)  # None: no cost analysis, so no FLOP/s or MFU keys below
    flops_per_image = None if flops is None else flops * jax.device_count() / batch_size
    analysis = {"model": model_name, "batch_size": batch_size, "image_size": image_size,
                "dtype": str(np.dtype(dtype)), "model_gflops_per_image": flops_per_image and flops_per_image / 1e9,
                "peak_memory_gib": throughput.peak_memory_bytes(compiled) / 2**30,
                "compile_seconds": compile_seconds, "devices": jax.device_count(),
                "platform": jax.devices()[0].platform, "device_kind": jax.devices()[0].device_kind}
    if flops_only:
        return analysis
    state, metrics = step(state, batch, key)
    jax.block_until_ready(metrics)
    for _ in range(warmup):
        state, metrics = step(state, batch, key)
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for _ in range(steps):
        state, metrics = step(state, batch, key)
    jax.block_until_ready(metrics)
    seconds = time.perf_counter() - start
    images_per_second = steps * batch_size / seconds
    peak, peak_source = throughput.device_peak_flops(jax.devices()[0], bool(config.half_precision),
                                                     config.peak_flops_per_device)
    result = {**analysis, "images_per_second": images_per_second, "step_ms": 1000 * seconds / steps,
              "peak_source": peak_source}
    if flops_per_image is not None:
        result["tflops_per_second"] = images_per_second * flops_per_image / 1e12
    utilization = throughput.mfu(images_per_second, flops_per_image, peak, jax.device_count())
    if utilization is not None:  # absent, never 0, when the peak or the FLOPs are unknown (peak_source says why)
        result["mfu"], result["peak_tflops_per_device"] = utilization, peak / 1e12
    return result


def batch_sizes(sweep: str, start: int) -> list[int]:
    """The batch sizes of --sweep_batch: a comma-separated list, or "auto" (doubling from `start`, up to 2**14)."""
    if sweep == "auto":
        return [start * 2**k for k in range(15) if start * 2**k <= 2**14]
    return [int(size) for size in sweep.split(",")] if sweep else [start]


def _row(result: dict) -> str:
    if "images_per_second" not in result:  # --flops_only
        return (f"{result['model']:24s} batch {result['batch_size']:5d} {result['image_size']:4d}px "
                f"{result['dtype']:9s} {_maybe(result['model_gflops_per_image'], '8.2f')} GFLOP/img "
                f"peak mem {result['peak_memory_gib']:7.2f} GiB (compile {result['compile_seconds']:.1f} s)")
    return (f"{result['model']:24s} batch {result['batch_size']:5d} {result['image_size']:4d}px {result['dtype']:9s} "
            f"{result['images_per_second']:10.1f} img/s {result['step_ms']:9.1f} ms/step "
            f"{_maybe(result.get('tflops_per_second'), '8.3f')} TFLOP/s MFU {_maybe(result.get('mfu'), '5.1%')} "
            f"{_maybe(result['model_gflops_per_image'], '8.2f')} GFLOP/img "
            f"peak mem {result['peak_memory_gib']:7.2f} GiB "
            f"(compile {result['compile_seconds']:.1f} s)")


def _maybe(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def main() -> None:
    """Parses flags, runs the benchmark(s), prints a table and writes JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/default.py")
    parser.add_argument("--model", default="", help="a registered model, 'all', or '' for the config's")
    parser.add_argument("--batch_size", type=int, default=0, help="global batch; 0 means the config's")
    parser.add_argument("--image_size", type=int, default=0, help="0 means the config's")
    parser.add_argument("--channels", type=int, default=0, help="0 means len(config.normalize_mean)")
    parser.add_argument("--num_classes", type=int, default=0, help="0: 10 for 28-32 px inputs, else 1000")
    parser.add_argument("--half_precision", choices=("config", "true", "false"), default="config")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", default="", help="write the results here")
    parser.add_argument("--sweep_batch", default="", help="'auto' (double until it fails) or 'B1,B2,...': img/s curve")
    parser.add_argument("--flops_only", action="store_true", help="compile and report FLOPs/memory, no timing")
    parser.add_argument("--lowering", choices=("auto", "xla", "patches"), default="auto",
                        help="config.cpu_conv_lowering (CPU only)")
    args = parser.parse_args()

    config = load_config_file(args.config)
    if args.half_precision != "config":
        config.half_precision = args.half_precision == "true"
    batch_size = args.batch_size or config.batch_size
    image_size = args.image_size or config.image_size
    channels = args.channels or len(config.normalize_mean)
    num_classes = args.num_classes or (10 if image_size <= 32 else 1000)
    names = models.names() if args.model == "all" else [args.model or config.model]
    models.set_cpu_conv_lowering(args.lowering)
    results = []
    for name in names:
        size = image_size if (args.image_size or args.model != "all") else models.default_image_size(name)
        classes = num_classes if args.num_classes or args.model != "all" else (10 if size <= 32 else 1000)
        for batch in batch_sizes(args.sweep_batch, batch_size):
            try:
                result = benchmark(config, name, batch, size, channels, classes, args.steps, args.warmup,
                                   flops_only=args.flops_only)
            except Exception as error:  # noqa: BLE001  (a model that cannot run at this size must not stop the sweep)
                results.append({"model": name, "image_size": size, "batch_size": batch,
                                "error": f"{type(error).__name__}: {error}"[:300]})
                print(f"{name:24s} batch {batch:5d} {size:4d}px  failed: {results[-1]['error']}", flush=True)
                break  # a larger batch (--sweep_batch) will not fit either
            results.append(result)
            print(_row(result), flush=True)
        if args.sweep_batch:
            fitting = [r for r in results if r.get("model") == name and "error" not in r]
            best = max(fitting, key=lambda r: r.get("images_per_second", 0), default=None)
            print(f"{name:24s} largest batch that ran: {max((r['batch_size'] for r in fitting), default=0)}"
                  + (f", fastest: batch {best['batch_size']}" if best and "images_per_second" in best else ""),
                  flush=True)
    report = {"date": datetime.date.today().isoformat(), "host": platform.node(), "cpu_count": os.cpu_count(),
              "jax": jax.__version__, "config": args.config, "results": results}
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(report, stream, indent=2)


if __name__ == "__main__":
    main()
