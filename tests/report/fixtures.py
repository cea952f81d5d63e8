"""A hand-made workdir: config.json, metrics.jsonl and the per-class/calibration files the evaluators write."""

from __future__ import annotations

import json
import os

CLASSES = ["T-shirt/top", "Trouser", "<Bag & co>"]  # markup characters: must come out escaped
# Rows true, columns predicted.
CONFUSION = [[8, 1, 1], [0, 10, 0], [2, 3, 5]]
ROWS = [
    {"step": 2, "split": "train", "epoch": 0.5, "loss": 2.0, "top1": 0.2, "learning_rate": 0.1,
     "images_per_second": 100.0},
    {"step": 2, "split": "test", "epoch": 0.5, "loss": 1.8, "top1": 0.40, "top5": 0.9},
    {"step": 4, "split": "train", "epoch": 1.0, "loss": 1.5, "top1": 0.5, "learning_rate": 0.05,
     "images_per_second": 120.0},
    {"step": 4, "split": "test", "epoch": 1.0, "loss": 1.6, "top1": 0.35, "top5": 0.95},
    {"step": 4, "split": "test_c", "epoch": 1.0, "top1": 0.3, "mce": 0.8, "gaussian_noise_1/top1": 0.31},
]


def per_class_payload() -> dict:
    """per_class.json of CONFUSION, counted by hand."""
    precision = [8 / 10, 10 / 14, 5 / 6]
    recall = [8 / 10, 10 / 10, 5 / 10]
    f1 = [2 * p * r / (p + r) for p, r in zip(precision, recall)]
    return {"classes": CLASSES, "precision": precision, "recall": recall, "f1": f1, "support": [10, 10, 10],
            "confusion_matrix": CONFUSION}


CALIBRATION = {"bins": [{"lower": 0.0, "upper": 0.5, "count": 4, "accuracy": 0.25, "confidence": 0.4},
                        {"lower": 0.5, "upper": 1.0, "count": 6, "accuracy": 0.5, "confidence": 0.8}],
               "ece": 0.4 * 0.15 + 0.6 * 0.3}


def write_workdir(workdir: str, with_analysis: bool = True, rows: list[dict] = ROWS) -> str:
    """Writes the hand-made run into `workdir` (per_class/calibration at steps 2 and 4 unless not with_analysis)."""
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w") as stream:
        json.dump({"model": "resnet_small", "dataset": "fashion_mnist", "note": "<script>alert(1)</script>"}, stream)
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as stream:
        stream.writelines(json.dumps(row) + "\n" for row in rows)
    if with_analysis:
        for step, scale in ((2, 0), (4, 1)):  # step 2's files are stale: the report must use step 4's
            folder = os.path.join(workdir, "eval", "test", str(step))
            os.makedirs(folder)
            payload = per_class_payload()
            if not scale:
                payload["f1"] = [0.0, 0.0, 0.0]
            with open(os.path.join(folder, "per_class.json"), "w") as stream:
                json.dump(payload, stream)
            with open(os.path.join(folder, "calibration.json"), "w") as stream:
                json.dump({**CALIBRATION, "ece": CALIBRATION["ece"] * scale}, stream)
    return workdir
