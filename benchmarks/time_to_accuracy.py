"""Time to a Fashion-MNIST test top-1 target: the default job (configs/default.py) against PyTorch, same recipe.

    pip install -e '.[parity]'   # torch (from local disk on the dev VM)
    python benchmarks/time_to_accuracy.py --json benchmark_results/time_to_accuracy.json

Ours is the real job, `python -m imagenet_jax.main --config configs/default.py` in a fresh workdir (the TFDS data
prepared beforehand, the XLA compilation cache off), timed from process start until metrics.jsonl first holds
a test evaluation at or above --target. PyTorch trains in this process, channels-last, with configs/default.py's
recipe: batch 256, SGD Nesterov momentum 0.9 at LR 0.1, weight decay 5e-4 except BN and biases, linear warmup
over 0.5 epochs then cosine to 0 at epoch 4, random horizontal flips, the same normalization, whole-test-set
evaluation after every epoch; its clock starts before the model is built and counts everything but reading the
IDX files. PyTorch models: "resnet20" (He et al.'s CIFAR ResNet-20: 3x3 stem of 16, three stages of three basic
blocks of 16/32/64, projection shortcuts) and "default" (our default architecture, benchmarks/vs_pytorch.py).
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from vs_pytorch import _BasicBlock, torch_default_model  # noqa: E402

from imagenet_jax.parallel.cpu_devices import cpu_model  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IDX_DIR = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 72.94, 90.02  # configs/default.py
EPOCHS, WARMUP_EPOCHS, BATCH, LR, WEIGHT_DECAY = 4, 0.5, 256, 0.1, 5e-4


def read_idx(name: str) -> np.ndarray:
    """An IDX file of Debian's dataset-fashion-mnist as a numpy array."""
    with gzip.open(os.path.join(IDX_DIR, name)) as stream:
        data = stream.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def torch_resnet20(num_classes: int = 10) -> torch.nn.Module:
    """The CIFAR ResNet-20 of He et al. 2016 (Sec. 4.2) for 1-channel input, projection shortcuts."""
    layers = [torch.nn.Conv2d(1, 16, 3, 1, 1, bias=False), torch.nn.BatchNorm2d(16), torch.nn.ReLU()]
    in_features = 16
    for stage, features in enumerate((16, 32, 64)):
        for block in range(3):
            layers.append(_BasicBlock(in_features, features, 2 if stage > 0 and block == 0 else 1))
            in_features = features
    layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(64, num_classes)]
    return torch.nn.Sequential(*layers)


def learning_rate(step: int, steps_per_epoch: int) -> float:
    """Linear warmup then cosine, as configs/default.py's schedule (per step)."""
    warmup, total = round(WARMUP_EPOCHS * steps_per_epoch), EPOCHS * steps_per_epoch
    if step < warmup:
        return LR * step / warmup
    return LR * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))


def train_torch(name: str, target: float, seed: int = 0) -> dict:
    """Trains PyTorch model `name` with the default recipe; the seconds until test top-1 first reaches target."""
    train_x, train_y = read_idx("train-images-idx3-ubyte.gz"), read_idx("train-labels-idx1-ubyte.gz")
    test_x, test_y = read_idx("t10k-images-idx3-ubyte.gz"), read_idx("t10k-labels-idx1-ubyte.gz")
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = (torch_resnet20() if name == "resnet20" else torch_default_model()).to(memory_format=torch.channels_last)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]  # BN scales and biases
    optimizer = torch.optim.SGD([{"params": decay, "weight_decay": WEIGHT_DECAY},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=LR, momentum=0.9, nesterov=True)
    images = torch.from_numpy(train_x.copy()).unsqueeze(1)
    labels = torch.from_numpy(train_y.astype(np.int64))
    test_images = ((torch.from_numpy(test_x.copy()).unsqueeze(1).float() - MEAN) / STD).contiguous(
        memory_format=torch.channels_last)
    test_labels = torch.from_numpy(test_y.astype(np.int64))
    steps_per_epoch = len(images) // BATCH
    generator = torch.Generator().manual_seed(seed)
    evaluations, reached = [], None
    step = 0
    for epoch in range(1, EPOCHS + 1):
        model.train()
        order = torch.randperm(len(images), generator=generator)
        for index in range(steps_per_epoch):
            batch = order[index * BATCH:(index + 1) * BATCH]
            x = images[batch].float()
            flip = torch.rand(len(batch), generator=generator) < 0.5
            x[flip] = x[flip].flip(-1)
            x = ((x - MEAN) / STD).contiguous(memory_format=torch.channels_last)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, steps_per_epoch)
            loss = torch.nn.functional.cross_entropy(model(x), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(test_images[i:i + 1000]).argmax(1) == test_labels[i:i + 1000]).sum())
                          for i in range(0, len(test_images), 1000))
        top1, seconds = correct / len(test_images), time.perf_counter() - start
        evaluations.append({"epoch": epoch, "top1": top1, "seconds": seconds})
        print(f"  torch {name} epoch {epoch}: test top-1 {top1:.4f} at {seconds:.0f} s", flush=True)
        if reached is None and top1 >= target:
            reached = seconds
    return {"model": f"torch_{name}", "seconds_to_target": reached, "evaluations": evaluations,
            "final_top1": evaluations[-1]["top1"], "total_seconds": evaluations[-1]["seconds"]}


def train_ours(target: float, data_dir: str) -> dict:
    """Runs the default job in a fresh workdir; the seconds from process start to the first eval >= target."""
    workdir = tempfile.mkdtemp(prefix="tta_ours_")
    command = [sys.executable, "-m", "imagenet_jax.main", "--config=configs/default.py", f"--workdir={workdir}",
               f"--config.data_dir={data_dir}", "--config.compilation_cache_dir=", "--config.write_report=False"]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": REPO})
    metrics, seen, evaluations, reached = os.path.join(workdir, "metrics.jsonl"), 0, [], None
    while True:
        finished = process.poll() is not None
        lines = open(metrics).read().splitlines() if os.path.exists(metrics) else []
        for line in lines[seen:]:
            row = json.loads(line)
            if row["split"] != "train":
                evaluations.append({"epoch": row.get("epoch"), "top1": row["top1"],
                                    "seconds": time.perf_counter() - start})
                print(f"  ours epoch {row.get('epoch')}: test top-1 {row['top1']:.4f} at "
                      f"{evaluations[-1]['seconds']:.0f} s", flush=True)
                if reached is None and row["top1"] >= target:
                    reached = evaluations[-1]["seconds"]
        seen = len(lines)
        if finished:
            break
        time.sleep(0.25)
    if process.returncode:
        raise SystemExit(f"the default job failed: {process.stderr.read()[-2000:]}")
    return {"model": "ours_default", "seconds_to_target": reached, "evaluations": evaluations,
            "final_top1": evaluations[-1]["top1"], "total_seconds": time.perf_counter() - start}


def main() -> None:
    """Trains each contender, prints the table and writes JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", type=float, default=0.91)
    parser.add_argument("--torch_models", default="resnet20,default")
    parser.add_argument("--skip_ours", action="store_true")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--data_dir", default=os.path.expanduser("~/tensorflow_datasets"),
                        help="TFDS data dir for our job (fashion_mnist is prepared there first)")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="minutes"), "host": platform.node(),
              "cpu": cpu_model(),
              "cpu_count": os.cpu_count(), "threads": args.threads, "torch": torch.__version__,
              "target": args.target, "load_before": os.getloadavg()[0], "runs": []}
    if not args.skip_ours:
        from imagenet_jax.data import pipeline

        pipeline.load_dataset("fashion_mnist", args.data_dir)  # preparation is not part of the race
        report["runs"].append(train_ours(args.target, args.data_dir))
    for name in filter(None, args.torch_models.split(",")):
        report["runs"].append(train_torch(name, args.target))
    report["load_after"] = os.getloadavg()[0]
    ours = next((run for run in report["runs"] if run["model"] == "ours_default"), None)
    print(f"\n{'run':18s} {'s to ' + format(args.target, '.0%'):>10s} {'final top-1':>12s} {'total s':>8s} "
          f"{'ours/this':>10s}")
    for run in report["runs"]:
        ratio = ""
        if ours and ours["seconds_to_target"] and run["seconds_to_target"]:
            run["ours_over_this"] = ours["seconds_to_target"] / run["seconds_to_target"]
            ratio = f"{run['ours_over_this']:.2f}"
        reached = f"{run['seconds_to_target']:.0f}" if run["seconds_to_target"] else "never"
        print(f"{run['model']:18s} {reached:>10s} {run['final_top1']:12.4f} {run['total_seconds']:8.0f} {ratio:>10s}")
    print(f"load average {report['load_before']:.1f} before, {report['load_after']:.1f} after")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as stream:
            json.dump(report, stream, indent=2)


if __name__ == "__main__":
    main()
