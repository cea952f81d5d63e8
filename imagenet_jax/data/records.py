"""Random access to the serialized examples of a prepared TFDS split, stored in TFDS's `array_record` format.

ArrayRecord files index every record (TFDS writes them with one record per chunk), so reading example i costs
one seek and one read, wherever i is: the training order can be any permutation and a resume starts reading
at its own batch. A file that cannot be read (truncated, checksum mismatch, missing) raises CorruptShardError
naming the file and the command that prepares the dataset again; an undecodable image inside a readable record
is not a file error (robust.py skips it).

Data prepared by older versions of this project is in TFDS's default `tfrecord` format, which can only be read
in order: `python -m imagenet_jax.prepare --dataset NAME --data_dir D --convert` rewrites it (convert_dataset).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence

import numpy as np

from imagenet_jax.errors import DatasetNotPreparedError, UserFacingError

ARRAY_RECORD = "array_record"
# Random access: no read-ahead (it would read records we never use) and no reader-side thread pool (tf.data
# already reads many batches at once).
_READER_OPTIONS = "readahead_buffer_size:0,max_parallelism:0"
WRITER_OPTIONS = "group_size:1"  # what TFDS writes: every record its own chunk, so one record per read


class CorruptShardError(UserFacingError):
    """A record file of a prepared dataset cannot be read; the message names the file and the fix."""


def prepare_command(dataset: str, data_dir: str, extra: str = "") -> str:
    """The command that prepares `dataset` in `data_dir` again from scratch."""
    manual = " --manual_dir M" if dataset.startswith("imagenet2012") and "--convert" not in extra else ""
    return f"python -m imagenet_jax.prepare --dataset {dataset} --data_dir {data_dir}{manual}{extra}"


def check_format(builder, dataset: str, data_dir: str) -> None:
    """Raises DatasetNotPreparedError naming the conversion command unless `builder` is stored as ArrayRecord."""
    file_format = getattr(builder.info.file_format, "value", str(builder.info.file_format))
    if file_format != ARRAY_RECORD:
        raise DatasetNotPreparedError(
            f"{dataset} in {builder.data_dir} was prepared in TFDS's {file_format!r} format, which can only be "
            f"read in order; training needs random access (a full shuffle every epoch, resuming without re-reading "
            f"the epoch). Convert it once (rewrites the files in place, about as fast as copying them): "
            f"{prepare_command(dataset, data_dir, ' --convert')}")


class RecordReader:
    """The serialized records of one split (a TFDS split expression), read by index 0..len-1."""

    def __init__(self, file_instructions: Sequence, dataset: str, data_dir: str):
        """`file_instructions`: TFDS FileInstructions (filename, skip, take) in split order."""
        self._paths = [os.fspath(instruction.filename) for instruction in file_instructions]
        self._skips = np.array([instruction.skip for instruction in file_instructions], np.int64)
        takes = np.array([instruction.take for instruction in file_instructions], np.int64)
        self._starts = np.concatenate([[0], np.cumsum(takes)]).astype(np.int64)
        self._repair = prepare_command(dataset, data_dir, " --overwrite")
        self._readers: dict[int, object] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Number of records in the split."""
        return int(self._starts[-1])

    def __getstate__(self):
        """Readers are C++ objects: a copy reopens its files on first use."""
        return {**self.__dict__, "_readers": {}, "_lock": None}

    def __setstate__(self, state):
        """See __getstate__."""
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _corrupt(self, path: str, error: str) -> CorruptShardError:
        return CorruptShardError(f"the record file {path} cannot be read ({error.strip().splitlines()[0][:200]}): "
                                 f"the prepared dataset is damaged. Prepare it again: {self._repair}")

    def _reader(self, file_index: int):
        reader = self._readers.get(file_index)
        if reader is None:
            from array_record.python import array_record_module

            with self._lock:
                reader = self._readers.get(file_index)
                if reader is None:
                    path = self._paths[file_index]
                    reader = array_record_module.ArrayRecordReader(path, _READER_OPTIONS)
                    if not reader.ok():
                        try:  # the reader keeps its failure for the first read: get it for the message
                            reader.read([0])
                            message = "cannot be opened"
                        except RuntimeError as error:
                            message = str(error)
                        raise self._corrupt(path, message)
                    self._readers[file_index] = reader
        return reader

    def read(self, indices: np.ndarray) -> list[bytes]:
        """The records at `indices` (any order, repeats allowed); CorruptShardError if a file fails."""
        indices = np.asarray(indices, np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"record index out of range 0..{len(self) - 1}")
        files = np.searchsorted(self._starts, indices, side="right") - 1
        out: list[bytes] = [b""] * len(indices)
        for file_index in np.unique(files):
            chosen = np.flatnonzero(files == file_index)
            positions = indices[chosen] - self._starts[file_index] + self._skips[file_index]
            try:
                records = self._reader(int(file_index)).read([int(p) for p in positions])
            except RuntimeError as error:
                raise self._corrupt(self._paths[file_index], str(error)) from None
            for slot, record in zip(chosen, records):
                out[slot] = record
        return out


def convert_dataset(builder) -> dict[str, int]:
    """Rewrites a TFDS dataset prepared as TFRecord into ArrayRecord in place; returns {split: records}.

    Each new file is written under a temporary name, its record count checked against the dataset's metadata,
    then renamed; the metadata is switched to ArrayRecord and the TFRecord files are removed last, so an
    interrupted conversion can simply be run again.
    """
    import tensorflow as tf
    from array_record.python import array_record_module
    from etils import epath

    if getattr(builder.info.file_format, "value", "") == ARRAY_RECORD:
        return {name: split.num_examples for name, split in builder.info.splits.items()}
    old_files, counts = [], {}
    for name, split in builder.info.splits.items():
        for path, expected in zip(split.filepaths, split.shard_lengths):
            path = os.fspath(path)
            target = path.replace(".tfrecord-", f".{ARRAY_RECORD}-")
            partial = target + ".converting"
            writer = array_record_module.ArrayRecordWriter(partial, WRITER_OPTIONS)
            written = 0
            try:
                for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
                    writer.write(record)
                    written += 1
            except tf.errors.OpError as error:
                writer.close()
                epath.Path(partial).unlink(missing_ok=True)
                raise CorruptShardError(f"the record file {path} cannot be read ({error.message[:200]}): prepare the "
                                        "dataset again instead of converting it (add --overwrite to the prepare "
                                        "command).") from None
            writer.close()
            if written != expected:
                epath.Path(partial).unlink(missing_ok=True)
                raise CorruptShardError(f"the record file {path} holds {written} records, its metadata says "
                                        f"{expected}: prepare the dataset again (add --overwrite).")
            epath.Path(partial).replace(target)  # replaces the output of an interrupted conversion
            old_files.append(path)
        counts[name] = split.num_examples
    # TFDS will not change a loaded DatasetInfo's format; the field lives in dataset_info.json.
    info_path = epath.Path(builder.data_dir) / "dataset_info.json"
    info = json.loads(info_path.read_text())
    info["fileFormat"] = ARRAY_RECORD
    info_path.with_suffix(".json.converting").write_text(json.dumps(info, indent=2))
    info_path.with_suffix(".json.converting").replace(info_path)
    for path in old_files:
        epath.Path(path).unlink(missing_ok=True)
    return counts
