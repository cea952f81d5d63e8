"""Train-step time of imagenet_jax against PyTorch on the CPU, side by side in one process, same threads/batch/size.

    pip install -e '.[parity]'   # torch + torchvision (from local disk on the dev VM)
    python benchmarks/vs_pytorch.py --json benchmark_results/vs_pytorch.json
    python benchmarks/vs_pytorch.py --rows resnet18@64 --steps 5

Ours runs twice per row, with `cpu_conv_lowering="xla"` (XLA's own convolutions: before) and "auto" (small maps
as patches + matmul: after); PyTorch runs torchvision's model (channels-last, SGD with Nesterov momentum and
weight decay as our default config, uint8 input normalized in the step). Each row reports median step times.
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
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from train_step import benchmark  # noqa: E402

from imagenet_jax import models  # noqa: E402
from imagenet_jax.config import load_config_file  # noqa: E402

# name@resolution -> (our model, torchvision builder or "default", channels, classes, batch)
ROWS = {
    "resnet18@64": ("resnet18", "resnet18", 3, 1000, 32),
    "resnet18@128": ("resnet18", "resnet18", 3, 1000, 32),
    "resnet50@64": ("resnet50", "resnet50", 3, 1000, 16),
    "resnet50@128": ("resnet50", "resnet50", 3, 1000, 16),
    "vgg11@64": ("vgg11", "vgg11", 3, 1000, 16),
    "default@28": ("resnet_small", "default", 1, 10, 256),
}


class _BasicBlock(torch.nn.Module):
    """torchvision's BasicBlock with a projection shortcut when the shape changes (as our ResNetBlock)."""

    def __init__(self, in_features: int, features: int, stride: int):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(in_features, features, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(features)
        self.conv2 = torch.nn.Conv2d(features, features, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(features)
        self.shortcut = torch.nn.Identity()
        if stride != 1 or in_features != features:
            self.shortcut = torch.nn.Sequential(torch.nn.Conv2d(in_features, features, 1, stride, bias=False),
                                                torch.nn.BatchNorm2d(features))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


def torch_default_model(num_classes: int = 10) -> torch.nn.Module:
    """configs/default.py's resnet_small in PyTorch: 3x3 stem (32) + 2x2 max-pool, one block each of 32/64/128."""
    layers = [torch.nn.Conv2d(1, 32, 3, 1, 1, bias=False), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
              torch.nn.MaxPool2d(2)]
    in_features = 32
    for stage, features in enumerate((32, 64, 128)):
        layers.append(_BasicBlock(in_features, features, 1 if stage == 0 else 2))
        in_features = features
    layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(128, num_classes)]
    return torch.nn.Sequential(*layers)


def torch_step_seconds(builder: str, batch: int, size: int, channels: int, classes: int, steps: int,
                       warmup: int) -> float:
    """Median seconds of a PyTorch train step (channels-last, uint8 in, normalize, forward, backward, SGD)."""
    model = torch_default_model(classes) if builder == "default" else getattr(torchvision.models, builder)(
        num_classes=classes)
    model = model.to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    images = torch.randint(0, 256, (batch, channels, size, size), dtype=torch.uint8)
    labels = torch.randint(0, classes, (batch,))

    def step():
        x = ((images.float() / 255.0 - 0.45) / 0.225).contiguous(memory_format=torch.channels_last)
        loss = torch.nn.functional.cross_entropy(model(x), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def ours_step_seconds(config, model: str, batch: int, size: int, channels: int, classes: int, steps: int,
                      warmup: int, lowering: str) -> dict:
    """Our train step (benchmarks/train_step.py) under `lowering`: step seconds and compile seconds."""
    models.set_cpu_conv_lowering(lowering)
    result = benchmark(config, model, batch, size, channels, classes, steps, warmup)
    return {"step_seconds": result["step_ms"] / 1000, "compile_seconds": result["compile_seconds"]}


def main() -> None:
    """Runs every row (ours before/after, PyTorch), prints a table and writes JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of: {', '.join(ROWS)}")
    parser.add_argument("--config", default="configs/default.py")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--lowerings", default="xla,auto", help="our cpu_conv_lowering modes to time")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config_file(args.config)
    report = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="minutes"), "host": platform.node(),
              "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
              "threads": args.threads, "jax": jax.__version__, "torch": torch.__version__, "rows": []}
    lowerings = args.lowerings.split(",")
    print(f"{'row':14s} {'batch':>5s} " + " ".join(f"{'ours ' + m + ' s':>13s}" for m in lowerings)
          + f" {'torch s':>9s} " + " ".join(f"{m + '/torch':>11s}" for m in lowerings) + "  load", flush=True)
    for name in args.rows.split(","):
        model, builder, channels, classes, batch = ROWS[name]
        size = int(name.split("@")[1])
        row = {"row": name, "model": model, "batch": batch, "image_size": size, "load_before": os.getloadavg()[0]}
        for lowering in lowerings:
            row[f"ours_{lowering}"] = ours_step_seconds(config, model, batch, size, channels, classes, args.steps,
                                                        args.warmup, lowering)
        row["torch_step_seconds"] = torch_step_seconds(builder, batch, size, channels, classes, args.steps,
                                                       args.warmup)
        for lowering in lowerings:
            row[f"ratio_{lowering}"] = row[f"ours_{lowering}"]["step_seconds"] / row["torch_step_seconds"]
        row["load_after"] = os.getloadavg()[0]
        report["rows"].append(row)
        print(f"{name:14s} {batch:5d} " + " ".join(f"{row[f'ours_{m}']['step_seconds']:13.3f}" for m in lowerings)
              + f" {row['torch_step_seconds']:9.3f} " + " ".join(f"{row[f'ratio_{m}']:11.2f}" for m in lowerings)
              + f"  {row['load_before']:.1f}-{row['load_after']:.1f}", flush=True)
        if args.json:  # after every row, so a long run that is cut short keeps what it measured
            with open(args.json, "w") as stream:
                json.dump(report, stream, indent=2)
    models.set_cpu_conv_lowering("auto")


if __name__ == "__main__":
    main()
