"""A small ImageNet in the official manual-download layout, made from real photographs (for tests and benchmarks).

    python -m imagenet_jax fake-imagenet --manual_dir M [--train_per_class 12 --val_images 20]

Writes M/ILSVRC2012_img_train.tar (one nXXXXXXXX.tar per synset, holding nXXXXXXXX_K.JPEG files) and
M/ILSVRC2012_img_val.tar (ILSVRC2012_val_00000001.JPEG, ...). TFDS labels validation images by their sorted
position in validation_labels.txt, so the first `val_images` lines of that file decide the synsets; every
synset gets crops of one skimage photograph, JPEG-encoded at ImageNet-like sizes (~500x375, some portrait,
some grayscale, one PNG disguised as JPEG, as in the real archive).
"""

from __future__ import annotations

import io
import os
import sys
import tarfile

import numpy as np

TRAIN_TAR = "ILSVRC2012_img_train.tar"
VAL_TAR = "ILSVRC2012_img_val.tar"
# TFDS converts this one file of the real archive from PNG to JPEG; the fake has it too.
PNG_DISGUISED_AS_JPEG = "n02105855_2933.JPEG"
_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
           "stereo_motorcycle", "camera", "colorwheel", "clock", "coins", "brick", "grass", "gravel", "moon")


def validation_synsets(count: int) -> list[str]:
    """The labels TFDS gives the first `count` validation images (lines of its validation_labels.txt)."""
    import importlib.resources

    text = importlib.resources.files("tensorflow_datasets").joinpath(
        "datasets/imagenet2012/validation_labels.txt").read_text()
    return text.split()[:count]


def _photo(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    if image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    return np.asarray(image, np.uint8)


def _sample(photo: np.ndarray, rng: np.random.Generator, portrait: bool) -> np.ndarray:
    """A random crop of `photo` resized to an ImageNet-like size (long side 500, short side 333-375)."""
    from PIL import Image

    height, width = photo.shape[:2]
    scale = rng.uniform(0.55, 1.0)
    crop_h, crop_w = max(16, int(height * scale)), max(16, int(width * scale))
    top, left = rng.integers(0, height - crop_h + 1), rng.integers(0, width - crop_w + 1)
    crop = photo[top : top + crop_h, left : left + crop_w]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    short = int(rng.choice([333, 375, 375, 400]))
    size = (short, 500) if portrait else (500, short)  # PIL: (width, height)
    return np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize(size, Image.BILINEAR))


def encode(image: np.ndarray, fmt: str = "JPEG", quality: int = 90) -> bytes:
    """Encodes a uint8 HxW or HxWx3 array as JPEG or PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    options = {"quality": quality} if fmt == "JPEG" else {}
    Image.fromarray(image).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _add(archive: tarfile.TarFile, name: str, payload: bytes, truncated: tuple[str, ...] = ()) -> None:
    if name in truncated:
        payload = payload[: len(payload) // 3]
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mtime = 0
    archive.addfile(info, io.BytesIO(payload))


def make_fake_imagenet(manual_dir: str, train_per_class: int = 12, val_images: int = 20, seed: int = 0,
                       extra_classes: int = 0, truncated: tuple[str, ...] = (), quality: int = 0,
                       grain: float = 0.0) -> dict[str, int]:
    """Writes both tars into `manual_dir`; returns {"classes", "train", "validation"} counts.

    quality 0 draws a JPEG quality in [75, 95] per image; `grain` adds Gaussian noise of that standard deviation
    (grain 10 at quality 95 gives ImageNet's ~110 KB per 500x375 image, for benchmarks).

    Files named in `truncated` (e.g. "n01751748_2.JPEG", "ILSVRC2012_val_00000003.JPEG") are cut to a third of
    their bytes, like an interrupted copy, to test that such images are skipped rather than fatal.
    """
    rng = np.random.default_rng(seed)
    val_labels = validation_synsets(val_images)
    synsets = sorted(set(val_labels))
    if extra_classes:  # train-only synsets (from labels.txt) for larger benchmark sets
        import importlib.resources

        all_synsets = importlib.resources.files("tensorflow_datasets").joinpath(
            "datasets/imagenet2012/labels.txt").read_text().split()
        synsets = sorted(set(synsets) | set([s for s in all_synsets if s not in synsets][:extra_classes]))
    photos = {synset: _photo(_PHOTOS[index % len(_PHOTOS)]) for index, synset in enumerate(synsets)}

    def sample(synset: str, portrait: bool) -> np.ndarray:
        pixels = _sample(photos[synset], rng, portrait)
        if grain:
            pixels = np.clip(pixels + rng.normal(0.0, grain, pixels.shape), 0, 255).astype(np.uint8)
        return pixels

    def jpeg_quality() -> int:
        return quality or int(rng.integers(75, 96))
    os.makedirs(manual_dir, exist_ok=True)
    with tarfile.open(os.path.join(manual_dir, TRAIN_TAR), "w") as train:
        for synset in synsets:
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as per_class:
                for index in range(train_per_class):
                    name = f"{synset}_{index + 1}.JPEG"
                    pixels = sample(synset, portrait=index % 4 == 3)
                    if synset == PNG_DISGUISED_AS_JPEG.split("_")[0] and index == 0:
                        name, payload = PNG_DISGUISED_AS_JPEG, encode(pixels, "PNG")
                    else:
                        payload = encode(pixels, quality=jpeg_quality())
                    _add(per_class, name, payload, truncated)
            _add(train, f"{synset}.tar", inner.getvalue())
    with tarfile.open(os.path.join(manual_dir, VAL_TAR), "w") as val:
        for index, synset in enumerate(val_labels):
            pixels = sample(synset, portrait=index % 5 == 4)
            _add(val, f"ILSVRC2012_val_{index + 1:08d}.JPEG", encode(pixels, quality=jpeg_quality()), truncated)
    return {"classes": len(synsets), "train": len(synsets) * train_per_class, "validation": len(val_labels)}


def main(argv: list[str] | None = None) -> int:
    """`python -m imagenet_jax.data.fake_imagenet`: the fake-imagenet command (imagenet_jax/cli/fake_imagenet.py)."""
    from imagenet_jax.entry_points import forward

    return forward("fake-imagenet", argv, prog="python -m imagenet_jax.data.fake_imagenet")


if __name__ == "__main__":
    sys.exit(main())
