"""Photographs for the API, predict and export tests (their run is tests/conftest.py's tiny_run)."""

from __future__ import annotations

import io

import numpy as np

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")  # real photographs shipped with scikit-image


def photo_bytes(name: str, fmt: str = "JPEG") -> bytes:
    """One of scikit-image's photographs, encoded as JPEG (or PNG)."""
    import PIL.Image
    import skimage.data

    buffer = io.BytesIO()
    PIL.Image.fromarray(np.asarray(getattr(skimage.data, name)())).save(buffer, format=fmt)
    return buffer.getvalue()


def preprocessed_photos(run) -> np.ndarray:
    """The photographs after the run's eval preprocessing: uint8 [N, S, S, C] (28x28x1 for the default run)."""
    from imagenet_jax.predict import eval_preprocessor

    preprocess = eval_preprocessor(run)
    return np.stack([preprocess(photo_bytes(name)) for name in PHOTOS])
