"""Prepares a dataset once, before training: python -m imagenet_jax prepare --dataset NAME [--manual_dir M] --data_dir D
(or python -m imagenet_jax.prepare ..., the same command; its flags are in imagenet_jax/cli/prepare.py).

ImageNet: checks ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar in --manual_dir (names, sizes against the
official ones, archive structure, validation file numbering, free disk in --data_dir) before running TFDS's own
imagenet2012 builder, so a truncated download or a full disk is reported in seconds, not after hours, and
TFDS's errors come back as one line saying what to do. Other TFDS datasets are built by their TFDS builder;
"folder:PATH" datasets are scanned for images that cannot be decoded. TFDS datasets are written in TFDS's
`array_record` format (random access, see imagenet_jax/data/records.py); --convert rewrites a dataset prepared
in the older `tfrecord` format, --overwrite prepares a damaged one again from its sources. --reencode_to D2
writes a copy of a prepared dataset whose JPEGs decode faster (imagenet_jax/data/reencode.py).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import sys
import tarfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from imagenet_jax.errors import UserFacingError  # noqa: E402

TRAIN_TAR = "ILSVRC2012_img_train.tar"
VAL_TAR = "ILSVRC2012_img_val.tar"
_VAL_NAME = re.compile(r"^ILSVRC2012_val_(\d{8})\.JPEG$")
_SYNSET_TAR = re.compile(r"^(n\d{8})\.tar$")
# TFDS writes the records and, while shuffling, temporary buckets of about the same size.
SPACE_FACTOR = 2.1


class PrepareError(UserFacingError):
    """Preparation cannot go on; the message says what to do."""


def official_sizes() -> dict[str, int]:
    """{archive name: size in bytes} from TFDS's imagenet2012 checksums file."""
    import importlib.resources

    text = importlib.resources.files("tensorflow_datasets").joinpath(
        "datasets/imagenet2012/checksums.tsv").read_text()
    sizes = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            sizes[parts[0].rsplit("/", 1)[-1]] = int(parts[1])
    return sizes


def imagenet_synsets() -> set[str]:
    """The 1000 ImageNet-1k WordNet ids (TFDS's labels.txt)."""
    import importlib.resources

    return set(importlib.resources.files("tensorflow_datasets").joinpath(
        "datasets/imagenet2012/labels.txt").read_text().split())


def _gb(size: float) -> str:
    return f"{size / 1e9:.1f} GB"


def _near_misses(manual_dir: str, name: str) -> list[str]:
    stem = name.lower().removesuffix(".tar")
    return sorted(entry for entry in os.listdir(manual_dir) if entry != name and stem in entry.lower())


def _members(path: str) -> list[tarfile.TarInfo]:
    """The archive's members, or PrepareError if it is not a tar or ends before its last member's data does."""
    size = os.path.getsize(path)
    try:
        with tarfile.open(path, "r:") as archive:
            members = archive.getmembers()
    except (tarfile.TarError, EOFError, OSError) as error:
        if "unexpected end" in str(error) or isinstance(error, EOFError):
            raise PrepareError(f"{path} is truncated ({size} bytes end inside an archive member). Resume or repeat "
                               "the download (e.g. wget -c).") from None
        raise PrepareError(f"{path} is not a readable tar archive ({error}); download it again.") from None
    if not members:
        raise PrepareError(f"{path} is an empty archive; download it again.")
    last = max(members, key=lambda member: member.offset_data + member.size)
    if last.offset_data + last.size > size:
        raise PrepareError(f"{path} is truncated: {last.name} needs {last.offset_data + last.size} bytes, the file "
                           f"has {size}. Resume or repeat the download (e.g. wget -c).")
    return members


def _check_train(path: str, official: int | None) -> str:
    members = _members(path)
    known = imagenet_synsets()
    synsets = []
    with open(path, "rb") as stream:
        for member in members:
            match = _SYNSET_TAR.match(os.path.basename(member.name))
            if not member.isfile() or not match:
                raise PrepareError(f"{path} holds {member.name!r}, but ILSVRC2012_img_train.tar holds only one "
                                   "nXXXXXXXX.tar per class: is this the right archive (not the 'task 3' or "
                                   "extracted-and-repacked one)?")
            if match[1] not in known:
                raise PrepareError(f"{path} holds {member.name}, which is not one of ImageNet-1k's 1000 classes.")
            stream.seek(member.offset_data)
            try:
                tarfile.TarInfo.frombuf(stream.read(tarfile.BLOCKSIZE), tarfile.ENCODING, "surrogateescape")
            except tarfile.TarError:
                raise PrepareError(f"{member.name} inside {path} is not a tar archive: the download is damaged; "
                                   "download it again.") from None
            synsets.append(match[1])
    if len(set(synsets)) != len(synsets):
        raise PrepareError(f"{path} holds some class archives twice; download it again.")
    note = f"{len(synsets)} classes"
    if official and os.path.getsize(path) != official:
        note += f" (not the official archive of {official} bytes and 1000 classes: preparing what it holds)"
    return note


def _check_val(path: str, official: int | None) -> str:
    members = _members(path)
    numbers = []
    for member in members:
        match = _VAL_NAME.match(member.name)
        if not member.isfile() or not match:
            raise PrepareError(f"{path} holds {member.name!r}; ILSVRC2012_img_val.tar holds only files named "
                               "ILSVRC2012_val_00000001.JPEG ... ILSVRC2012_val_00050000.JPEG.")
        numbers.append(int(match[1]))
    # TFDS labels validation images by their sorted position in validation_labels.txt.
    if sorted(numbers) != list(range(1, len(numbers) + 1)) or len(numbers) > 50_000:
        raise PrepareError(f"{path}: validation images must be numbered 1..N without gaps (found {len(numbers)} "
                           f"files from {min(numbers)} to {max(numbers)}): TFDS labels them by position, so any other "
                           "set would get wrong labels.")
    note = f"{len(numbers)} validation images"
    if official and os.path.getsize(path) != official:
        note += f" (not the official archive of {official} bytes and 50000 images: preparing what it holds)"
    return note


def free_bytes(path: str) -> int:
    """Free bytes on the file system that holds `path` (or its nearest existing parent)."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return shutil.disk_usage(path).free


def check_imagenet(manual_dir: str, data_dir: str) -> list[str]:
    """Checks the two archives and free disk; returns notes for the log, raises PrepareError with the fix."""
    if not os.path.isdir(manual_dir):
        raise PrepareError(f"--manual_dir {manual_dir} does not exist: create it and put {TRAIN_TAR} and {VAL_TAR} "
                           "(from https://image-net.org/download-images, login required) in it.")
    sizes = official_sizes()
    notes, total = [], 0
    for name, check in ((TRAIN_TAR, _check_train), (VAL_TAR, _check_val)):
        path = os.path.join(manual_dir, name)
        if not os.path.isfile(path):
            near = _near_misses(manual_dir, name)
            hint = (f" Found {', '.join(near)}: rename it to {name} if it is the finished download (a .tar.gz or "
                    f".part file is not)." if near else "")
            raise PrepareError(f"{name} is missing from --manual_dir {manual_dir}.{hint} Download it from "
                               "https://image-net.org/download-images (login required).")
        total += os.path.getsize(path)
        notes.append(f"{name}: {check(path, sizes.get(name))}")
    needed = int(total * SPACE_FACTOR)
    free = free_bytes(data_dir)
    if free < needed:
        raise PrepareError(f"--data_dir {data_dir} has {_gb(free)} free; preparing these archives needs about "
                           f"{_gb(needed)} (records plus TFDS's temporary shuffle files). Free space or choose "
                           "another --data_dir.")
    return notes


def explain(error: BaseException, dataset: str, manual_dir: str, data_dir: str) -> str:
    """A TFDS failure as one line saying what to do."""
    text = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300]
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return f"the disk of --data_dir {data_dir} filled up while preparing {dataset}: free space and rerun."
    if isinstance(error, PermissionError):
        return f"no permission to write {getattr(error, 'filename', data_dir)}: choose a --data_dir you can write."
    if isinstance(error, (tarfile.TarError, EOFError)):
        return (f"an archive in --manual_dir {manual_dir} is damaged ({text}); download it again and rerun "
                "(TFDS cleans its partial output).")
    if "manual" in str(error).lower() or "AssertionError" in text:
        return f"TFDS found no source files for {dataset} in --manual_dir {manual_dir} ({text})."
    if "ConnectionError" in text or "Network" in text or "URLError" in text or "Timeout" in text:
        return (f"{dataset} must be downloaded and this machine has no network ({text}): prepare it where there is "
                f"one and copy the data_dir, or put its source files in --manual_dir.")
    return f"TFDS could not prepare {dataset}: {text}. Rerun after fixing; TFDS restarts from scratch."


def _builder(dataset: str, data_dir: str):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    tf.config.set_visible_devices([], "GPU")  # preparation never holds an accelerator
    from imagenet_jax.data import datasets

    # No file_format here: TFDS refuses one that differs from an already prepared dataset's.
    return tfds.builder(datasets.get(dataset).tfds_name, data_dir=data_dir)


def convert_tfds(dataset: str, data_dir: str) -> dict[str, int]:
    """Rewrites `dataset`, prepared in TFDS's tfrecord format, as array_record in place; returns {split: examples}."""
    from imagenet_jax.data import records

    return records.convert_dataset(_prepared_builder(dataset, data_dir, "convert"))


def _prepared_builder(dataset: str, data_dir: str, action: str):
    """The TFDS builder of `dataset` in `data_dir`, or PrepareError saying how to prepare it before `action`."""
    from imagenet_jax.data import records

    builder = _builder(dataset, data_dir)
    if not builder.is_prepared():
        raise PrepareError(f"{dataset} is not prepared in --data_dir {data_dir}: nothing to {action}; prepare it "
                           f"with {records.prepare_command(dataset, data_dir)}.")
    return builder


def remove_prepared(dataset: str, data_dir: str) -> None:
    """Deletes the prepared files of `dataset` (this version) from `data_dir`, so that it is prepared anew."""
    from etils import epath

    from imagenet_jax.data import datasets, pipeline

    if damaged := pipeline.damaged_dataset_info(datasets.get(dataset).tfds_name, data_dir):
        path = epath.Path(damaged[0]).parent  # the builder cannot be made from a damaged dataset_info.json
    else:
        path = epath.Path(_builder(dataset, data_dir).data_dir)
    if path.exists():
        print(f"removing {path}", file=sys.stderr)
        path.rmtree()


def prepare_tfds(dataset: str, manual_dir: str, data_dir: str) -> dict[str, int]:
    """Runs the dataset's TFDS builder, writing array_record files; returns {split: examples}."""
    import tensorflow_datasets as tfds

    from imagenet_jax.data import datasets, records

    spec = datasets.get(dataset)
    if spec.prepare_offline is not None and os.path.isdir(manual_dir or spec.default_manual_dir):
        if spec.prepare_offline(data_dir, manual_dir or spec.default_manual_dir):
            builder = _builder(dataset, data_dir)
            return {name: split.num_examples for name, split in builder.info.splits.items()}
    builder = _builder(dataset, data_dir)
    if builder.is_prepared():
        records.check_format(builder, dataset, data_dir)  # prepared in the old format: say how to convert
    config = tfds.download.DownloadConfig(manual_dir=manual_dir or None, try_download_gcs=False)
    try:
        builder.download_and_prepare(download_config=config, file_format=records.ARRAY_RECORD)
    except Exception as error:  # noqa: BLE001  (every TFDS failure becomes an instruction)
        raise PrepareError(explain(error, dataset, manual_dir, data_dir)) from error
    return {name: split.num_examples for name, split in builder.info.splits.items()}


def reencode_tfds(dataset: str, data_dir: str, target_data_dir: str, settings) -> dict[str, int]:
    """Writes the re-encoded copy of prepared `dataset` (data/reencode.py) into `target_data_dir`; returns
    {split: examples}."""
    from imagenet_jax.data import reencode

    builder = _prepared_builder(dataset, data_dir, "re-encode")
    marker = reencode.reencode_dataset(builder, target_data_dir, settings)
    counts = ", ".join(f"{number} {outcome}" for outcome, number in marker["counts"].items())
    print(f"re-encoded {', '.join(settings.splits)} into --data_dir {target_data_dir}: {counts}; "
          f"{marker['bytes_before'] / 1e6:.1f} MB -> {marker['bytes_after'] / 1e6:.1f} MB. Train on it with "
          f"--config.data_dir={target_data_dir}", file=sys.stderr)
    return {name: split.num_examples for name, split in builder.info.splits.items()}


def scan_folder(name: str) -> dict[str, int]:
    """Decodes every image of a folder dataset; returns {split: images} and lists unreadable files on stderr."""
    import tensorflow as tf

    from imagenet_jax.data import folders, robust, sources

    tf.config.set_visible_devices([], "GPU")
    info = folders.load_folder(name)
    counts = {}
    for split in folders.list_splits(info.root):
        examples = sources.examples(info.source(split))
        checked = robust.map_or_placeholder(
            examples, lambda e: {"ok": tf.size(tf.io.decode_image(e["image"], expand_animations=False)) > 0,
                                 "key": e["key"]},
            lambda e: {"ok": tf.constant(False), "key": e["key"]})
        bad = [key.decode() for ok, key in ((x["ok"], x["key"]) for x in checked.as_numpy_iterator()) if not ok]
        counts[split] = info.num_examples(split)
        for path in bad:
            print(f"unreadable: {path}", file=sys.stderr)
        if bad:
            print(f"{split}: {len(bad)} of {counts[split]} images cannot be decoded; training skips them "
                  "(and counts them in the log); delete or replace them to silence the warnings.", file=sys.stderr)
    return counts


def main(argv: list[str] | None = None) -> int:
    """`python -m imagenet_jax.prepare`: the prepare command (imagenet_jax/cli/prepare.py); 0 ok, 2 a problem the
    message explains."""
    from imagenet_jax.entry_points import forward

    return forward("prepare", argv, prog="python -m imagenet_jax.prepare")


if __name__ == "__main__":
    sys.exit(main())
