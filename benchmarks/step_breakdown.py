"""Where a run's time goes: input, train step (forward, backward, update), evaluation, per step and per epoch, and
the train step's XLA ops from a jax.profiler trace, attributed to the model's layers.

    python benchmarks/step_breakdown.py --config configs/default.py --json out.json
    python benchmarks/step_breakdown.py --config configs/default.py --cpu_devices 2 --top 30

Uses the task's own data, model, optimizer and compiled train step (the real input stream, not synthetic data),
as experiment/loop.py builds them; `--cpu_devices N` sets the host device count as the command line does
(config.cpu_devices; 0: one per core). Times are medians over --steps steps after a compiled warm-up.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import glob
import gzip
import json
import os
import platform
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _op_metadata(hlo_text: str) -> tuple[dict[str, str], dict[str, str]]:
    """({instruction: its op_name metadata}, {instruction: its result type}) of a compiled module's text; a fusion
    without an op_name takes the first one inside the computation it calls, if any (XLA's weight-gradient
    convolutions carry none: their result type, the kernel's shape, tells them apart)."""
    names, calls, inside, computation, types = {}, {}, {}, None, {}
    for line in hlo_text.splitlines():
        header = re.match(r"^(?:ENTRY )?%([\w.\-]+) ", line)
        if header and line.rstrip().endswith("{"):
            computation = header.group(1)
        match = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = (\S+)", line)
        if not match:
            continue
        types[match.group(1)] = match.group(2).split("{")[0]
        op_name = re.search(r'op_name="([^"]+)"', line)
        if op_name:
            names[match.group(1)] = op_name.group(1)
            inside.setdefault(computation, op_name.group(1))
        called = re.search(r"calls=%([\w.\-]+)", line)
        if called:
            calls[match.group(1)] = called.group(1)
    for name, called in calls.items():
        if name not in names and called in inside:
            names[name] = inside[called]
    return names, types


def _layer(op_name: str) -> str:
    """'jit(train_step)/transpose(jvp(ResNet))/stage1_block1/Conv_0/conv_general_dilated' -> 'stage1_block1/Conv_0
    backward'; forward ops end in ' forward'."""
    direction = "backward" if "transpose(" in op_name else "forward"
    parts = [part for part in op_name.split("/")[1:] if not re.match(r"^(jvp|transpose|jit)\(", part)]
    return ("/".join(parts[:-1]) or parts[-1] if parts else "?") + " " + direction


def trace_ops(run_step, steps: int, hlo_text: str) -> list[dict]:
    """Per-op milliseconds per step from a perfetto trace of `steps` calls of run_step(i)."""
    import jax

    directory = tempfile.mkdtemp(prefix="step_breakdown_")
    with jax.profiler.trace(directory, create_perfetto_trace=True):
        for i in range(steps):
            run_step(i)
    path = glob.glob(os.path.join(directory, "**", "*.trace.json.gz"), recursive=True)[0]
    with gzip.open(path) as stream:
        events = json.load(stream)["traceEvents"]
    metadata, types = _op_metadata(hlo_text)
    totals: dict[str, float] = collections.defaultdict(float)
    for event in events:
        name = event.get("name", "")
        # HLO instruction names ("ynn_fusion.17", "wrapped_iota"); Python and runtime events have other shapes.
        if event.get("ph") == "X" and (name in metadata or re.fullmatch(r"[\w\-]+(\.\d+)?", name)):
            totals[name] += event["dur"] / 1000 / steps
    return [{"op": name, "ms_per_step": ms, "type": types.get(name, ""),
             "layer": _layer(metadata[name]) if name in metadata else "(no op_name)"}
            for name, ms in sorted(totals.items(), key=lambda item: -item[1])]


def main() -> None:
    """Builds the run as the loop does, times its pieces, traces its step, prints tables and writes JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/default.py")
    parser.add_argument("--cpu_devices", type=int, default=1, help="host devices (0: one per core)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--trace_steps", type=int, default=5)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--json", default="")
    args = parser.parse_args()

    from imagenet_jax.config import load_config_file
    from imagenet_jax.parallel import cpu_devices

    config = load_config_file(args.config)
    config.cpu_devices = args.cpu_devices
    cpu_devices.apply(config)

    import jax
    import jax.numpy as jnp

    from imagenet_jax import models, tasks
    from imagenet_jax.core.metrics import normalize_images
    from imagenet_jax.core.state import create_train_state
    from imagenet_jax.experiment.validate import resolve_batch_size, validate_config
    from imagenet_jax.parallel import mesh as mesh_lib

    config = resolve_batch_size(config, jax.device_count())
    validate_config(config, jax.device_count())
    task = tasks.get(config.task)
    data = task.load_data(config, 0, 1)
    steps_per_epoch = data.steps_per_epoch(config.batch_size)
    total_steps = int(config.num_epochs * steps_per_epoch)
    model = task.model(config, data)
    optimizer, schedule = task.optimizer(config, data, total_steps=total_steps, steps_per_epoch=steps_per_epoch)
    mesh = mesh_lib.make_mesh(config.fsdp_devices)
    input_shape = task.input_shape(config, data)

    def initial_state(key):
        return create_train_state(model, optimizer, key, input_shape, with_ema=False)

    shardings = mesh_lib.state_shardings(jax.eval_shape(initial_state, jax.random.key(0)), mesh,
                                         config.fsdp_min_size, config.fsdp_rules)
    state = task.initialize(config, data, jax.jit(initial_state, out_shardings=shardings)(jax.random.key(0)),
                            optimizer, shardings)
    step_fn = task.train_step(config, data, model, optimizer, schedule, mesh)
    train_step = jax.jit(step_fn.step, in_shardings=(shardings, mesh_lib.batch_sharded(mesh),
                                                     mesh_lib.replicated(mesh)),
                         out_shardings=(shardings, mesh_lib.replicated(mesh)), donate_argnums=(0,))
    stream = task.train_batches(config, data, start_step=0, steps_per_epoch=steps_per_epoch, process_index=0,
                                process_count=1)
    host_batches = [next(stream) for _ in range(3)]  # the stream's start-up is not a per-batch cost
    input_seconds = _median_seconds(lambda i: host_batches.append(next(stream)), max(args.steps, 30))
    batches = [mesh_lib.global_batch(batch, mesh) for batch in host_batches[:10]]
    key = jax.random.key(0)
    start = time.perf_counter()
    state, metrics = train_step(state, batches[0], key)
    jax.block_until_ready(metrics)
    compile_seconds = time.perf_counter() - start

    def run_step(i):
        nonlocal state
        state, step_metrics = train_step(state, batches[i % len(batches)], key)
        jax.block_until_ready(step_metrics)

    step_seconds = _median_seconds(run_step, args.steps)
    mean, std = config.normalize_mean, config.normalize_std

    def forward(params, batch_stats, images, train):
        variables = {"params": params, "batch_stats": batch_stats}
        if train:
            return model.apply(variables, normalize_images(images, mean, std), train=True, mutable=["batch_stats"])[0]
        return model.apply(variables, normalize_images(images, mean, std), train=False)

    def loss(params, batch_stats, images, labels):
        logits, _ = models.split_outputs(forward(params, batch_stats, images, True))
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1))

    images, labels = batches[0]["image"], batches[0]["label"]
    pieces = {"forward (train mode)": jax.jit(lambda p, s, x, y: forward(p, s, x, True)),
              "forward + backward": jax.jit(jax.grad(loss)),
              "forward (eval mode)": jax.jit(lambda p, s, x, y: forward(p, s, x, False))}
    piece_seconds = {}
    for name, fn in pieces.items():
        jax.block_until_ready(fn(state.params, state.batch_stats, images, labels))
        piece_seconds[name] = _median_seconds(
            lambda i, fn=fn: jax.block_until_ready(fn(state.params, state.batch_stats, images, labels)), args.steps)
    runner = task.evaluation(config, data, model, mesh=mesh, state_sharding=shardings,
                             workdir=tempfile.mkdtemp(prefix="step_breakdown_eval_"), process_index=0,
                             process_count=1)
    start = time.perf_counter()
    runner.evaluate(state, 1)
    first_eval_seconds = time.perf_counter() - start
    start = time.perf_counter()
    runner.evaluate(state, 2)
    eval_seconds = time.perf_counter() - start
    ops = trace_ops(run_step, args.trace_steps, train_step.lower(state, batches[0], key).compile().as_text())

    rows = [("input: next host batch", input_seconds, input_seconds * steps_per_epoch),
            ("train step (compiled, whole)", step_seconds, step_seconds * steps_per_epoch),
            *[(f"  {name}", seconds, seconds * steps_per_epoch) for name, seconds in piece_seconds.items()],
            ("evaluation of the main split (again)", eval_seconds, eval_seconds),
            ("evaluation, first (with compilation)", first_eval_seconds, first_eval_seconds),
            ("train step compilation", compile_seconds, compile_seconds)]
    print(f"{config.model}, global batch {config.batch_size}, {jax.device_count()} {jax.default_backend()} devices, "
          f"{steps_per_epoch} steps per epoch")
    print("| piece | ms per call | s per epoch |\n|---|---:|---:|")
    for name, seconds, per_epoch in rows:
        print(f"| {name} | {seconds * 1000:.1f} | {per_epoch:.1f} |")
    layers: dict[str, float] = collections.defaultdict(float)
    for op in ops:
        layers[op["layer"]] += op["ms_per_step"]
    print(f"\nXLA ops of the train step, summed over threads ({sum(op['ms_per_step'] for op in ops):.0f} ms per step "
          f"against {step_seconds * 1000:.0f} ms wall), by layer:")
    print("| layer | ms per step |\n|---|---:|")
    for layer, ms in sorted(layers.items(), key=lambda item: -item[1])[:args.top]:
        print(f"| {layer} | {ms:.1f} |")
    print("\n| op | result | layer | ms per step |\n|---|---|---|---:|")
    for op in ops[:args.top]:
        print(f"| {op['op']} | {op['type']} | {op['layer']} | {op['ms_per_step']:.1f} |")
    if args.json:
        report = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="minutes"),
                  "host": platform.node(), "cpu_count": os.cpu_count(), "load_before": os.getloadavg()[0],
                  "jax": jax.__version__, "config": args.config, "devices": jax.device_count(),
                  "batch_size": config.batch_size, "steps_per_epoch": steps_per_epoch,
                  "pieces_seconds": {name: seconds for name, seconds, _ in rows},
                  "layers_ms_per_step": dict(layers), "ops": ops}
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as stream:
            json.dump(report, stream, indent=2)


if __name__ == "__main__":
    main()
