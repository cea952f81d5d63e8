"""From a config to input streams: the training chain (crop, flip and augmentation ops), the resolution
schedule (progressive resizing, FixRes), the held-out training examples (minival) and the evaluation sets.

The loop asks this module for batches and never sees ops, splits or label maps.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator

import ml_collections
import numpy as np

from imagenet_jax.data import datasets, folders, pipeline, preprocessing
from imagenet_jax.data.holdout import holdout_examples
from imagenet_jax.errors import ConfigError

# Where data lives and how evaluation images are cut: not what a training step computes.
RESUME_SAFE_KEYS = frozenset({"data_dir", "manual_dir", "crop_pct", "eval_image_size", "eval_preprocess"})

LOWRES_CACHE_MARGIN = 1.15  # cached short side >= this x lowres_cache_max_size


def train_chain(config: ml_collections.ConfigDict) -> str:
    """The training op chain: config.train_preprocess, augmentations included ("" when it is blank)."""
    # The flat augmentation keys that train_chain once appended are ops of the chain now
    # (imagenet_jax/config/moved_keys.py folds an old run's keys in exactly as this function did).
    return config.train_preprocess if config.train_preprocess.strip() else ""


def parse_size_schedule(text: str, key: str = "image_size_schedule") -> list[tuple[float, int]]:
    """"0:128,30:192" -> [(0.0, 128), (30.0, 192)] (epoch, training image size), checked."""
    if not text.strip():
        return []
    schedule = []
    for part in text.split(","):
        epoch, _, size = part.partition(":")
        try:
            schedule.append((float(epoch), int(size)))
        except ValueError:
            raise ConfigError(f"config.{key}={text!r}: {part!r} is not EPOCH:SIZE (e.g. \"0:128,30:192,60:224\").") \
                from None
    epochs = [epoch for epoch, _ in schedule]
    if epochs[0] != 0 or epochs != sorted(set(epochs)) or min(size for _, size in schedule) <= 0:
        raise ConfigError(f"config.{key}={text!r} must start at epoch 0, with increasing epochs and sizes > 0.")
    return schedule


def size_segments(config: ml_collections.ConfigDict, steps_per_epoch: int) -> list[tuple[int, int]]:
    """[(first step, training image size)] of the run; one segment without a schedule."""
    schedule = parse_size_schedule(config.image_size_schedule)
    if not schedule:
        return [(0, config.image_size)]
    segments = [(round(epoch * steps_per_epoch), size) for epoch, size in schedule]
    return [segment for index, segment in enumerate(segments)
            if index + 1 == len(segments) or segments[index + 1][0] > segment[0]]


def lowres_cache_min_side(config: ml_collections.ConfigDict, image_size: int) -> int:
    """Short side the low-resolution cache keeps for a training phase at `image_size`; 0: that phase reads files."""
    if not 0 < image_size <= config.lowres_cache_max_size:
        return 0
    # One cache for every small phase, sized for the largest; the margin covers a whole-image crop's aspect change
    # and eval-style short-side resizes (1 / crop_pct = 1.14) without upscaling.
    return round(LOWRES_CACHE_MARGIN * config.lowres_cache_max_size)


def context(config: ml_collections.ConfigDict, image_size: int, channels: int) -> preprocessing.PreprocessContext:
    """The preprocessing context of this config at `image_size`."""
    return preprocessing.PreprocessContext(image_size=image_size, crop_pct=config.crop_pct, channels=channels,
                                           interpolation=config.interpolation, antialias=config.antialias)


def eval_image_size(config: ml_collections.ConfigDict) -> int:
    """Evaluation resolution: config.eval_image_size, else the last training resolution."""
    if config.eval_image_size:
        return config.eval_image_size
    schedule = parse_size_schedule(config.image_size_schedule)
    return schedule[-1][1] if schedule else config.image_size


AnyDatasetInfo = pipeline.DatasetInfo | folders.FolderDatasetInfo


def apply_holdout(config: ml_collections.ConfigDict, info: AnyDatasetInfo) -> AnyDatasetInfo:
    """The dataset with the training examples held out by a config.evals set's `holdout` removed (or unchanged)."""
    count = holdout_examples(config)
    if not count:
        return info
    train, _ = info.holdout(info.train_split, count)
    return dataclasses.replace(info, train_split=train)


def train_stream(config: ml_collections.ConfigDict, info, *, start_step: int, steps_per_epoch: int,
                 process_index: int = 0, process_count: int = 1) -> Iterator[dict[str, np.ndarray]]:
    """This process's training batches from `start_step` on, changing resolution where the schedule says."""
    chain = train_chain(config)
    preprocessing.parse_chain(chain, "train_preprocess")

    def batches_from(step: int, image_size: int):
        return pipeline.train_batches(
            info, global_batch_size=config.batch_size, seed=config.seed, start_step=step,
            preprocess=preprocessing.build(chain, context(config, image_size, info.channels), "train_preprocess"),
            cache=config.cache_dataset, cache_min_side=lowres_cache_min_side(config, image_size),
            aug_repeats=config.aug_repeats, process_index=process_index, process_count=process_count)

    segments = size_segments(config, steps_per_epoch)
    if len(segments) == 1:
        return batches_from(start_step, segments[0][1])

    def chained():
        for index, (begin, image_size) in enumerate(segments):
            end = segments[index + 1][0] if index + 1 < len(segments) else None
            if end is not None and end <= start_step:
                continue
            first = max(begin, start_step)
            batches = batches_from(first, image_size)
            yield from batches if end is None else itertools.islice(batches, end - first)

    return chained()


@dataclasses.dataclass(frozen=True)
class EvalSet:
    """One evaluation set of a run: logged under `name`, every example of `split` of `info` scored once."""

    name: str
    info: object
    split: str
    label_map: np.ndarray | None = None  # dataset label -> model class (or position in class_subset)
    class_subset: tuple[int, ...] | None = None  # score only these model classes

    @property
    def num_examples(self) -> int:
        """Examples in the split (scored plus unlabeled plus skipped add up to this)."""
        return self.info.num_examples(self.split)


def main_eval_set(info) -> EvalSet:
    """The run's main evaluation set: the dataset's eval split, logged under its split name."""
    return EvalSet(name=info.eval_split, info=info, split=info.eval_split)


def other_eval_set(info, name: str, dataset: str, split: str, load: Callable, spec: str,
                   key: str = "evals") -> EvalSet:
    """The eval set `name` of `dataset`'s `split` ("": its eval split), labels mapped onto `info`'s classes."""
    dataset = dataset or info.name
    other = info if dataset == info.name else load(dataset, split)
    split = split or other.eval_split
    restrict = getattr(datasets.get(dataset, key), "restrict_to_present_classes", False) \
        if not folders.is_folder_name(dataset) else False
    label_map, subset = label_mapping(info, other, split, restrict, spec)
    return EvalSet(name=name, info=other, split=split, label_map=label_map, class_subset=subset)


def label_mapping(train_info, eval_info, split: str, restrict_to_present: bool,
                  spec: str) -> tuple[np.ndarray | None, tuple[int, ...] | None]:
    """How `eval_info`'s labels become model classes: (label map, class subset); (None, None) for identity."""
    train_names, eval_names = list(train_info.class_names), list(eval_info.class_names)
    if eval_names == train_names and not restrict_to_present:
        return None, None
    index = {name: position for position, name in enumerate(train_names)}
    missing = [name for name in eval_names if name not in index]
    if missing:
        raise ConfigError(f"config.evals: {spec!r} has classes that the model was not trained on "
                          f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); its class names must be "
                          "among the training dataset's.")
    to_model = np.array([index[name] for name in eval_names], np.int64)
    if restrict_to_present:
        present = np.unique(present_labels(eval_info, split))
        classes = np.unique(to_model[present])
    elif len(eval_names) < len(train_names):
        classes = np.unique(to_model)
    else:
        return to_model, None
    position = {int(model_class): offset for offset, model_class in enumerate(classes)}
    label_map = np.array([position.get(int(model_class), -1) for model_class in to_model], np.int64)
    return label_map, tuple(int(model_class) for model_class in classes)


def present_labels(info, split: str) -> np.ndarray:
    """Every label of `split`."""
    return info.labels(split)


def eval_stream(config: ml_collections.ConfigDict, eval_set: EvalSet, *, local_batch_size: int,
                process_index: int = 0, process_count: int = 1) -> Callable[[], Iterator[dict[str, np.ndarray]]]:
    """A factory of one pass over `eval_set` for this process (padded, masked; see pipeline.eval_batches)."""
    preprocess = preprocessing.build(config.eval_preprocess,
                                     context(config, eval_image_size(config), eval_set.info.channels),
                                     "eval_preprocess")
    return pipeline.eval_batches(eval_set.info, eval_set.split, local_batch_size=local_batch_size,
                                 preprocess=preprocess, cache=config.cache_dataset, process_index=process_index,
                                 process_count=process_count, label_map=eval_set.label_map)


def validate_config(config: ml_collections.ConfigDict) -> None:
    """ConfigError naming the key: sources, resolutions, crops, interpolation, the op chains, augmentation keys."""
    from imagenet_jax.data.preprocessing import INTERPOLATIONS, parse_chain

    if not isinstance(config.image_size, int) or config.image_size <= 0:
        raise ConfigError(f"config.image_size={config.image_size!r} must be > 0.")
    if not 0 < config.crop_pct <= 1:
        raise ConfigError(f"config.crop_pct={config.crop_pct} must be in (0, 1].")
    parse_chain(config.train_preprocess, "train_preprocess")
    parse_chain(config.eval_preprocess, "eval_preprocess")

    if folders.is_folder_name(config.dataset) and not folders.list_splits(folders.folder_root(config.dataset)):
        raise ConfigError(f"config.dataset={config.dataset!r}: {folders.folder_root(config.dataset)} holds no "
                          "ROOT/<split>/<class>/ image folders.")
    for key in ("eval_image_size", "lowres_cache_max_size"):
        if not isinstance(config[key], int) or config[key] < 0:
            raise ConfigError(f"config.{key}={config[key]!r} must be an integer >= 0.")
    if not isinstance(config.aug_repeats, int) or isinstance(config.aug_repeats, bool) or config.aug_repeats < 1:
        raise ConfigError(f"config.aug_repeats={config.aug_repeats!r} must be an integer >= 1 (1: no repeated "
                          "augmentation; ResNet strikes back and DeiT use 3).")
    sizes = [size for _, size in parse_size_schedule(config.image_size_schedule)] or [config.image_size]
    if config.lowres_cache_max_size and config.lowres_cache_max_size < min(sizes):
        raise ConfigError(f"config.lowres_cache_max_size={config.lowres_cache_max_size} is below every training "
                          f"image size ({', '.join(map(str, sizes))}), so no phase would read the cache: set it to "
                          "the size of the small phases of config.image_size_schedule, or 0.")
    _choice(config, "interpolation", INTERPOLATIONS)
    if not isinstance(config.antialias, bool):
        raise ConfigError(f"config.antialias={config.antialias!r} must be True or False.")
    # Augmentations are ops of config.train_preprocess (parsed above), each checking its own arguments
    # (imagenet_jax/data/augment.py); the flat keys' range checks went with the keys (config/moved_keys.py).
    for key, high in (("mix_prob", 1.0), ("mix_switch_prob", 1.0)):
        if not 0 <= config[key] <= high:
            raise ConfigError(f"config.{key}={config[key]} must be in [0, {high:g}].")
    for key in ("mixup_alpha", "cutmix_alpha"):
        if config[key] < 0:
            raise ConfigError(f"config.{key}={config[key]} must be >= 0 (0 disables it).")


def _choice(config: ml_collections.ConfigDict, key: str, choices) -> None:
    if config[key] not in choices:
        raise ConfigError(f"config.{key}={config[key]!r} is not one of: {', '.join(choices)}.")


def load_dataset(config: ml_collections.ConfigDict) -> AnyDatasetInfo:
    """config.dataset with its splits (a TFDS name or folder:PATH), prepared on first use."""
    return pipeline.load_dataset(config.dataset, config.data_dir, config.manual_dir, config.train_split,
                                 config.eval_split)
