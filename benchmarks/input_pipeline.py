"""Train-preprocessing images/s: this project's pipeline against a straightforward flax-style tf.data pipeline, on
the same JPEGs, on 1 CPU core and on all cores.

    python benchmarks/input_pipeline.py --dataset imagenet2012 --data_dir DIR --split train --json out.json

Both pipelines read the same encoded images, held in memory so that disk speed does not enter, and produce
batches of image_size x image_size crops with the Inception crop distribution (area 0.08-1, aspect 3/4-4/3,
center-crop fallback) and a random flip:
  - "ours": imagenet_jax.data.pipeline.train_batches with the config defaults (a full random permutation per
    epoch read by index, per-example stateless seeds, the skip-unreadable machinery, uint8 output;
    normalization happens on the accelerator);
  - "flax_baseline": what google/flax examples/imagenet does (decode_and_crop_jpeg, bicubic resize, random flip,
    mean/std normalization to float32 on the host), with the crop window drawn from exactly our distribution
    (preprocessing.inception_crop_window), so that both decode the same amount of JPEG on average;
  - "flax_like": flax_baseline made like-for-like with ours: same windows, bilinear resize (ours' default) and
    uint8 output, no host normalization; the ratio against it isolates the pipeline from the resize and dtype;
  - "ours_full_decode": ours with the JPEG crop always decoded at full scale
    (random_resized_crop(max_upscale=0), the behaviour before reduced-resolution decoding);
  - "flax_original": flax's code unchanged, windows from tf.image.sample_distorted_bounding_box (whose crops are
    a little smaller on average: less to decode), for reference;
  - "ours_antialias": ours with --config.antialias=True (torchvision-style resizing), for reference;
  - "ours_lowres_cache": ours with --config.lowres_cache_max_size=image_size: images decoded once at reduced
    scale (short side >= 1.15 x image_size) and read from memory, what the small phases of a progressive-resizing
    run get (not run by default; building the cache is not timed);
  - "ours_reencoded": ours reading the same examples from --reencoded_data_dir, a copy of the dataset made by
    `python -m imagenet_jax.prepare --reencode_to` (smaller, cheaper-to-decode JPEGs; not run by default);
  - "ours_machinery": ours with the preprocessing replaced by a constant image: the ceiling the pipeline's own
    machinery (order, reads, per-example seeds, skip handling, batching) allows (not run by default);
  - "ours_aug_repeats3": ours with --config.aug_repeats=3 (repeated augmentation, ResNet strikes back A1/A2):
    3 augmented copies per decode, so images/s counts augmented examples, a third of them distinct images (not
    run by default).
Each measurement runs in a fresh process (pinned to one core for the 1-core numbers); pipelines alternate and
the median of --repeats runs is reported, with CPU seconds per image (robust to other load on the machine).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from imagenet_jax.parallel.cpu_devices import cpu_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIPELINES = ("flax_baseline", "flax_like", "ours", "ours_full_decode", "flax_original", "ours_antialias")
BASELINES = ("flax_baseline", "flax_like")
MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STD_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)


def _encoded_images(dataset: str, data_dir: str, split: str, max_images: int):
    """(bytes list, label list, info) of the first `max_images` examples of the split."""
    from imagenet_jax.data import pipeline

    info = pipeline.load_dataset(dataset, data_dir)
    images, labels = [], []
    for image, label in info.read(split).take(max_images).as_numpy_iterator():
        images.append(image)
        labels.append(label)
    return images, labels, info


class _InMemory:
    """A dataset info whose training split is the given encoded images (so "ours" runs its real train path)."""

    def __init__(self, images, labels, channels: int):
        self.images, self.labels, self.channels = images, labels, channels
        self.train_split = "train"

    def num_examples(self, split: str) -> int:
        return len(self.images)

    def source(self, split: str):
        return _InMemorySource(self.images, self.labels)


class _InMemorySource:
    """Random access to encoded images held in memory (the interface of imagenet_jax.data.sources)."""

    def __init__(self, images, labels):
        import tensorflow as tf

        self.images, self.labels = tf.constant(images), tf.constant(labels, tf.int64)
        self.num_examples = len(images)

    def fetch(self, indices):
        import tensorflow as tf

        return {"image": tf.gather(self.images, indices), "label": tf.gather(self.labels, indices)}

    def example(self, row):
        return {"image": row["image"], "label": row["label"], "key": ""}

    def raise_failure(self) -> None:
        pass


def flax_baseline_preprocess(image_bytes, image_size: int, seed=None, like_ours: bool = False):  # -> tf.Tensor
    """google/flax examples/imagenet's training preprocessing, re-stated: distorted-box crop, bicubic, flip.

    With a `seed`, the crop window comes from this project's Inception-crop distribution instead; `like_ours`
    resizes bilinearly and returns uint8 without normalizing (ours' resize method and output dtype).
    """
    import tensorflow as tf

    from imagenet_jax.data.preprocessing import inception_crop_window

    shape = tf.image.extract_jpeg_shape(image_bytes)
    if seed is None:
        begin, size, _ = tf.image.sample_distorted_bounding_box(
            shape, tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, [1, 1, 4]), min_object_covered=0.1,
            aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0), max_attempts=10,
            use_image_if_no_bounding_boxes=True)
        offset_y, offset_x, _ = tf.unstack(begin)
        height, width, _ = tf.unstack(size)
        window = tf.stack([offset_y, offset_x, height, width])
    else:
        window = inception_crop_window(shape, seed)
    cropped = tf.image.decode_and_crop_jpeg(image_bytes, window, channels=3)
    failed = tf.reduce_sum(tf.cast(tf.equal(tf.image.extract_jpeg_shape(image_bytes), tf.shape(cropped)),
                                   tf.int32)) >= 3

    method = "bilinear" if like_ours else "bicubic"

    def center_crop():
        full = tf.image.extract_jpeg_shape(image_bytes)
        side = tf.cast(image_size / (image_size + 32) * tf.cast(tf.minimum(full[0], full[1]), tf.float32), tf.int32)
        window = tf.stack([(full[0] - side + 1) // 2, (full[1] - side + 1) // 2, side, side])
        center = tf.image.decode_and_crop_jpeg(image_bytes, window, channels=3)
        return tf.image.resize([center], [image_size, image_size], method=method)[0]

    image = tf.cond(failed, center_crop,
                    lambda: tf.image.resize([cropped], [image_size, image_size], method=method)[0])
    image = tf.image.random_flip_left_right(tf.reshape(image, [image_size, image_size, 3]))
    if like_ours:
        return tf.cast(image + 0.5, tf.uint8)  # bilinear stays within [0, 255]: round as ours does
    image = (image - tf.constant(MEAN_RGB, shape=[1, 1, 3])) / tf.constant(STD_RGB, shape=[1, 1, 3])
    return tf.image.convert_image_dtype(image, tf.float32)


def _batches(name: str, images, labels, info, args):
    import tensorflow as tf

    if name in ("flax_baseline", "flax_like", "flax_original"):
        dataset = tf.data.Dataset.from_tensor_slices((images, labels)).repeat().shuffle(16 * args.batch_size, seed=0)

        def preprocess(index, example):
            seed = None if name == "flax_original" else tf.stack([tf.constant(0, tf.int64), index])
            image = flax_baseline_preprocess(example[0], args.image_size, seed, like_ours=name == "flax_like")
            return {"image": image, "label": example[1]}

        dataset = dataset.enumerate().map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.batch(args.batch_size, drop_remainder=True).prefetch(10).as_numpy_iterator()
    from imagenet_jax.config import get_base_config
    from imagenet_jax.data import inputs, pipeline, preprocessing

    config = get_base_config()
    config.image_size = args.image_size
    config.antialias = name == "ours_antialias"
    if name == "ours_full_decode":
        config.train_preprocess = config.train_preprocess.replace("random_resized_crop",
                                                                  "random_resized_crop(max_upscale=0)")
    config.lowres_cache_max_size = args.image_size if name == "ours_lowres_cache" else 0
    config.aug_repeats = 3 if name == "ours_aug_repeats3" else 1
    context = inputs.context(config, args.image_size, 3)
    preprocess = preprocessing.build(inputs.train_chain(config), context)
    if name == "ours_machinery":
        constant = tf.zeros((args.image_size, args.image_size, 3), tf.uint8)

        def preprocess(image, seed):  # depends on the input, so that nothing is hoisted out of the map
            return constant + tf.cast(tf.strings.length(image) % 2, tf.uint8)

    return pipeline.train_batches(_InMemory(images, labels, info.channels), global_batch_size=args.batch_size, seed=0,
                                  start_step=0, preprocess=preprocess,
                                  cache=False, cache_min_side=inputs.lowres_cache_min_side(config, args.image_size),
                                  aug_repeats=config.aug_repeats)


def worker(args) -> dict:
    """One measurement in this process: images/s of pipeline args.pipeline after warmup."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.cores == 1:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    sys.path.insert(0, REPO)
    data_dir = args.reencoded_data_dir if args.pipeline == "ours_reencoded" else args.data_dir
    images, labels, info = _encoded_images(args.dataset, data_dir, args.split, args.max_images)
    batches = _batches(args.pipeline, images, labels, info, args)
    for _ in range(args.warmup_batches):
        batch = next(batches)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.batches):
        batch = next(batches)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    count = args.batches * args.batch_size
    return {"pipeline": args.pipeline, "cores": len(os.sched_getaffinity(0)), "images": count,
            "images_per_second": count / wall, "cpu_seconds_per_image": cpu / count,
            "output": f"{batch['image'].dtype}{list(batch['image'].shape)}",
            "mean_jpeg_bytes": sum(map(len, images)) / len(images)}


def main() -> None:
    """Runs every pipeline x core-count measurement in fresh processes and reports medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="imagenet2012")
    parser.add_argument("--data_dir", default="")
    parser.add_argument("--split", default="train")
    parser.add_argument("--reencoded_data_dir", default="", help="the data dir of pipeline ours_reencoded")
    parser.add_argument("--json", default="")
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--warmup_batches", type=int, default=5)
    parser.add_argument("--max_images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pipelines", default=",".join(PIPELINES))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pipeline", default="ours", help=argparse.SUPPRESS)
    parser.add_argument("--cores", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    all_cores = len(os.sched_getaffinity(0))
    core_counts = [1] if all_cores == 1 else [1, all_cores]
    pipelines = args.pipelines.split(",")
    if "ours_reencoded" in pipelines and not args.reencoded_data_dir:
        parser.error("pipeline ours_reencoded reads --reencoded_data_dir (made by python -m imagenet_jax.prepare "
                     "--reencode_to DIR)")
    runs: dict[str, list[dict]] = {}
    for repeat in range(args.repeats):
        for cores in core_counts:
            for name in pipelines:  # alternate pipelines so drifting machine load hits both alike
                command = [sys.executable, os.path.abspath(__file__), "--worker", f"--pipeline={name}",
                           f"--cores={cores}"] + [f"--{key}={getattr(args, key)}" for key in (
                               "dataset", "data_dir", "reencoded_data_dir", "split", "image_size", "batch_size",
                               "batches", "warmup_batches", "max_images")]
                done = subprocess.run(command, capture_output=True, text=True, check=False,
                                      env={**os.environ, "PYTHONPATH": REPO})
                if done.returncode:
                    sys.exit(f"{name} on {cores} core(s) failed:\n{done.stderr[-3000:]}")
                result = json.loads(done.stdout.strip().splitlines()[-1])
                runs.setdefault(f"{name}@{cores}", []).append(result)
                print(f"[{repeat + 1}/{args.repeats}] {name:15s} {cores} core(s): "
                      f"{result['images_per_second']:7.0f} images/s, "
                      f"{1 / result['cpu_seconds_per_image']:7.0f} images per CPU-second", flush=True)

    summary = {}
    for key, results in runs.items():
        name, cores = key.split("@")
        summary[key] = {
            "pipeline": name, "cores": int(cores), "output": results[0]["output"],
            "images_per_second": statistics.median(r["images_per_second"] for r in results),
            "images_per_cpu_second": statistics.median(1 / r["cpu_seconds_per_image"] for r in results),
            "runs": [round(r["images_per_second"], 1) for r in results]}
    for entry in summary.values():
        one_core = summary.get(f"{entry['pipeline']}@1")
        entry["images_per_second_per_core"] = entry["images_per_second"] / entry["cores"]
        if one_core and entry["cores"] > 1:  # 1.0 = linear scaling from one core
            entry["scaling"] = entry["images_per_second"] / (entry["cores"] * one_core["images_per_second"])
            # The same from CPU time: below 1 when running in parallel costs CPU; unlike "scaling", it does not
            # fall when other jobs take the machine's cores.
            entry["cpu_scaling"] = entry["images_per_cpu_second"] / one_core["images_per_cpu_second"]
    ratios = {}
    for cores in core_counts:
        for baseline in BASELINES:
            base = summary.get(f"{baseline}@{cores}")
            for name in pipelines:
                if base and name not in BASELINES and f"{name}@{cores}" in summary:
                    ours = summary[f"{name}@{cores}"]
                    ratios[f"{name}/{baseline}@{cores}"] = {
                        "images_per_second": ours["images_per_second"] / base["images_per_second"],
                        "images_per_cpu_second": ours["images_per_cpu_second"] / base["images_per_cpu_second"]}
    report = {
        "benchmark": "input_pipeline", "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:]),
        "machine": {"cpu": cpu_model(), "cores": all_cores, "platform": platform.platform(),
                    "python": platform.python_version()},
        "settings": {key: getattr(args, key) for key in (
            "dataset", "data_dir", "reencoded_data_dir", "split", "image_size", "batch_size", "batches",
            "warmup_batches", "max_images", "repeats")},
        "mean_jpeg_bytes": {name: runs[f"{name}@1"][0]["mean_jpeg_bytes"] for name in pipelines},
        "results": summary, "ratios": ratios}
    for key, entry in summary.items():
        scaling = (f", scaling {entry['scaling']:.2f}x linear ({entry['cpu_scaling']:.2f}x per CPU-s)"
                   if "scaling" in entry else "")
        print(f"{key}: {entry['images_per_second']:.0f} images/s ({entry['images_per_second_per_core']:.0f} per core"
              f"{scaling}), {entry['images_per_cpu_second']:.0f} per CPU-s, {entry['output']}")
    for key, ratio in ratios.items():
        print(f"{key}: {ratio['images_per_second']:.2f}x images/s, {ratio['images_per_cpu_second']:.2f}x per CPU-s")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(report, stream, indent=2)


if __name__ == "__main__":
    main()
