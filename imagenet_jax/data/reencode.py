"""A copy of a prepared TFDS dataset whose JPEGs are cheaper to decode: longer side at most `max_side`, re-encoded
at `quality` with optimized Huffman tables, written as a new data dir that trains like the original.

Why: at 224 px the input pipeline's cost is JPEG decoding, ~75% of it Huffman (entropy) decoding, which scales
with the bits stored, not with the pixels kept (BENCHMARKS.md, "Input pipeline"). FFCV stores ImageNet this way
for its ResNet results (longer side <= 500, JPEG quality 90). An image that needs no resizing keeps its original
bytes when re-encoding would not make it smaller; one that cannot be decoded is copied unchanged (training skips
it as before). Splits not re-encoded (by default: all but train, so accuracy is measured on the original
validation images) are copied byte for byte.

Resumable: each record file is written under a temporary name and renamed when complete; dataset_info.json, which
makes TFDS see a prepared dataset, is written last. A rerun skips the files already written.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from imagenet_jax.errors import UserFacingError

if TYPE_CHECKING:
    import tensorflow as tf

MARKER = "reencode.json"  # next to dataset_info.json: what was done, read back by describe()
PROGRESS = "reencode.progress.json"  # outcome counts of the files written so far, for a resumed run
MIN_SIDE_LIMIT = 32
# Outcome of one image, counted in MARKER.
KEPT, REENCODED, RESIZED, UNDECODABLE = "kept", "reencoded", "resized", "undecodable"
_OUTCOMES = (KEPT, REENCODED, RESIZED, UNDECODABLE)


class ReencodeError(UserFacingError):
    """Re-encoding cannot go on; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the copy's JPEGs are: longer side <= max_side (0: sizes kept), JPEG `quality`, in `splits`."""

    max_side: int = 500
    quality: int = 90
    splits: tuple[str, ...] = ("train",)

    def validate(self, available: list[str]) -> None:
        """Raises ReencodeError naming the flag that is out of range."""
        if self.max_side and self.max_side < MIN_SIDE_LIMIT:
            raise ReencodeError(f"--max_side {self.max_side}: use 0 (keep sizes) or at least {MIN_SIDE_LIMIT} pixels.")
        if not 1 <= self.quality <= 100:
            raise ReencodeError(f"--jpeg_quality {self.quality}: must be 1..100 (90 is FFCV's ImageNet setting).")
        unknown = sorted(set(self.splits) - set(available))
        if unknown or not self.splits:
            raise ReencodeError(f"--reencode_splits {','.join(self.splits)}: the dataset's splits are "
                                f"{', '.join(available)}{f' (not {unknown})' if unknown else ''}.")


def reencode_image(image: tf.Tensor, max_side: int, quality: int, channels: int) -> tuple[tf.Tensor, tf.Tensor]:
    """(new encoded bytes, outcome) of encoded `image`, as TensorFlow ops; raises on an undecodable image."""
    import tensorflow as tf

    decoded = tf.io.decode_image(image, channels=channels, expand_animations=False)
    shape = tf.shape(decoded)
    longer = tf.maximum(shape[0], shape[1])
    resize = tf.logical_and(max_side > 0, longer > max_side)

    def smaller():
        scale = max_side / tf.cast(longer, tf.float64)
        size = tf.maximum(tf.cast(tf.round(tf.cast(shape[:2], tf.float64) * scale), tf.int32), 1)
        # Box filter, like FFCV's cv2.INTER_AREA: every source pixel counts once, no aliasing.
        resized = tf.image.resize(decoded, size, method="area")
        return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)

    pixels = tf.cond(resize, smaller, lambda: decoded)
    encoded = tf.io.encode_jpeg(pixels, quality=quality, optimize_size=True, chroma_downsampling=True)
    # Unresized images keep their bytes unless re-encoding makes them smaller (no loss for nothing).
    keep = tf.logical_and(tf.logical_not(resize), tf.strings.length(encoded) >= tf.strings.length(image))
    outcome = tf.where(keep, KEPT, tf.where(resize, RESIZED, REENCODED))
    return tf.where(keep, image, encoded), outcome


def _copy_atomically(source: str, target: str) -> None:
    partial = target + ".partial"
    shutil.copyfile(source, partial)
    os.replace(partial, target)


def _records_in(path: str) -> int | None:
    """Records in an ArrayRecord file, None when it cannot be read."""
    from array_record.python import array_record_module

    try:
        reader = array_record_module.ArrayRecordReader(path, "readahead_buffer_size:0")
        count = reader.num_records() if reader.ok() else None
        reader.close()
        return count
    except RuntimeError:
        return None


def _reencode_file(source: str, target: str, image_key: str, settings: Settings, channels: int,
                   counts: dict[str, int]) -> int:
    """Writes the records of `source` to `target` with their images re-encoded, adding each image's outcome to
    `counts`; returns the record count."""
    import tensorflow as tf
    from array_record.python import array_record_module

    from imagenet_jax.data import records

    reader = array_record_module.ArrayRecordReader(source, "readahead_buffer_size:0")
    serialized = reader.read(list(range(reader.num_records())))
    reader.close()
    examples = [tf.train.Example.FromString(record) for record in serialized]
    images = [example.features.feature[image_key].bytes_list.value[0] for example in examples]
    # Undecodable images drop out (ignore_errors) and are told apart by their missing index.
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.range(len(images), dtype=tf.int64), tf.constant(images, tf.string) if images else tf.zeros([0], tf.string)))
    dataset = dataset.map(lambda index, image: (index, *reencode_image(image, settings.max_side, settings.quality,
                                                                        channels)),
                          num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()
    results = {int(index): (image, outcome.decode()) for index, image, outcome in dataset.as_numpy_iterator()}
    partial = target + ".partial"
    writer = array_record_module.ArrayRecordWriter(partial, records.WRITER_OPTIONS)
    try:
        for index, example in enumerate(examples):
            image, outcome = results.get(index, (images[index], UNDECODABLE))
            example.features.feature[image_key].bytes_list.value[0] = image
            writer.write(example.SerializeToString())
            counts[outcome] += 1
    finally:
        writer.close()
    os.replace(partial, target)
    return len(examples)


def _load_marker(version_dir: str) -> dict | None:
    path = os.path.join(version_dir, MARKER)
    if not os.path.exists(path):
        return None
    with open(path) as stream:
        return json.load(stream)


def describe(version_dir: str) -> str:
    """One line saying how the dataset in `version_dir` was re-encoded, or "" if it was not."""
    marker = _load_marker(version_dir)
    if not marker:
        return ""
    size = f"longer side <= {marker['max_side']} px, " if marker["max_side"] else ""
    share = marker["bytes_after"] / max(marker["bytes_before"], 1)
    return (f"re-encoded copy of {marker['source']} ({size}JPEG quality {marker['quality']}, splits "
            f"{', '.join(marker['splits'])}: {share:.0%} of the bytes)")


def reencode_dataset(builder, target_data_dir: str, settings: Settings,
                     progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> dict:
    """Writes the re-encoded copy of prepared TFDS `builder`'s dataset under `target_data_dir`; returns the
    marker written next to its dataset_info.json (settings, outcome counts, bytes before and after)."""
    from imagenet_jax.data import records

    source_dir = os.fspath(builder.data_dir)
    name, version = builder.info.name, str(builder.info.version)
    target_dir = os.path.join(os.path.abspath(target_data_dir), name, version)
    if os.path.realpath(target_dir) == os.path.realpath(source_dir):
        raise ReencodeError(f"--reencode_to {target_data_dir} is the dataset's own data dir: choose another one.")
    image = builder.info.features["image"]
    if getattr(image, "encoding_format", None) not in (None, "jpeg"):
        raise ReencodeError(f"{name} stores its images as {image.encoding_format}: re-encoding makes JPEGs "
                            "cheaper to decode and applies to JPEG datasets only.")
    if getattr(builder.info.file_format, "value", "") != records.ARRAY_RECORD:
        raise ReencodeError(f"{name} in {builder.data_dir} is stored as {builder.info.file_format}: convert it "
                            "first (python -m imagenet_jax.prepare ... --convert).")
    settings.validate(list(builder.info.splits))
    wanted = {"source": source_dir, "max_side": settings.max_side, "quality": settings.quality,
              "splits": list(settings.splits)}
    done = _load_marker(target_dir)
    if done and os.path.exists(os.path.join(target_dir, "dataset_info.json")):
        if {key: done[key] for key in wanted} != wanted:
            raise ReencodeError(f"{target_dir} already holds a re-encoded copy made with other settings "
                                f"({ {key: done[key] for key in wanted} }): delete it or choose another --reencode_to.")
        progress(f"{target_dir} is complete already")
        return done
    source_bytes = sum(os.path.getsize(os.fspath(path)) for split in builder.info.splits.values()
                       for path in split.filepaths)
    os.makedirs(target_dir, exist_ok=True)
    free = shutil.disk_usage(target_dir).free
    if free < source_bytes:
        raise ReencodeError(f"--reencode_to {target_data_dir} has {free / 1e9:.1f} GB free; the copy needs up to "
                            f"{source_bytes / 1e9:.1f} GB (the size of the original). Free space or choose another "
                            "directory.")
    channels = image.shape[-1] or 3
    progress_path = os.path.join(target_dir, PROGRESS)
    per_file: dict[str, dict[str, int]] = {}
    if os.path.exists(progress_path):
        with open(progress_path) as stream:
            earlier = json.load(stream)
        if earlier["settings"] != wanted:
            raise ReencodeError(f"{target_dir} holds an interrupted re-encoding with other settings "
                                f"({earlier['settings']}): rerun with those, or delete it and start again.")
        per_file = earlier["files"]
    before = after = 0
    split_bytes = {}
    for split_name, split in builder.info.splits.items():
        split_bytes[split_name] = 0
        for path, expected in zip(split.filepaths, split.shard_lengths):
            path = os.fspath(path)
            file_name = os.path.basename(path)
            target = os.path.join(target_dir, file_name)
            reencoding = split_name in settings.splits
            if _records_in(target) == expected and (file_name in per_file or not reencoding):
                progress(f"{split_name}: {file_name} already written")  # by an interrupted earlier run
            elif reencoding:
                counts = dict.fromkeys(_OUTCOMES, 0)
                written = _reencode_file(path, target, "image", settings, channels, counts)
                if written != expected:
                    raise ReencodeError(f"{path} holds {written} records, its metadata says {expected}: prepare "
                                        "the dataset again (--overwrite) before re-encoding it.")
                per_file[file_name] = counts
                _write_json(progress_path, {"settings": wanted, "files": per_file})
                progress(f"{split_name}: {file_name} re-encoded ({', '.join(f'{n} {k}' for k, n in counts.items())})")
            else:
                _copy_atomically(path, target)
                progress(f"{split_name}: {file_name} copied")
            size = os.path.getsize(target)
            split_bytes[split_name] += size
            if reencoding:
                before, after = before + os.path.getsize(path), after + size
    for entry in os.listdir(source_dir):  # features.json, label files, ...: everything but the records
        source = os.path.join(source_dir, entry)
        if os.path.isfile(source) and f".{records.ARRAY_RECORD}-" not in entry and entry != "dataset_info.json":
            _copy_atomically(source, os.path.join(target_dir, entry))
    counts = {outcome: sum(done.get(outcome, 0) for done in per_file.values()) for outcome in _OUTCOMES}
    marker = {**wanted, "counts": counts, "bytes_before": before, "bytes_after": after}
    _write_json(os.path.join(target_dir, MARKER), marker)
    with open(os.path.join(source_dir, "dataset_info.json")) as stream:
        info = json.load(stream)
    for split in info.get("splits", []):
        split["numBytes"] = str(split_bytes.get(split["name"], split.get("numBytes", 0)))
    _write_json(os.path.join(target_dir, "dataset_info.json"), info)  # last: TFDS now sees a prepared dataset
    os.remove(progress_path)
    return marker


def _write_json(path: str, value) -> None:
    from etils import epath

    from imagenet_jax.storage import write_text_atomically

    write_text_atomically(epath.Path(path), json.dumps(value, indent=2))
