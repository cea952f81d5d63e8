"""ImageNet-C's own implementation (the `imagecorruptions` package, 1.1.2) as a test oracle, and real photographs.

imagecorruptions 1.1.2 predates setuptools without pkg_resources, numpy 2 (np.float_) and skimage 0.19+
(`multichannel=`): `reference()` imports it with three shims that change none of its arithmetic, confined to
its own module (no global numpy or skimage attribute is touched).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import types
import warnings

import numpy as np
import pytest

PHOTOS = ("astronaut", "chelsea", "coffee")


class _NumpyWithFloat(types.ModuleType):
    float_ = np.float64

    def __getattr__(self, name):
        return getattr(np, name)


@functools.cache
def reference() -> types.ModuleType:
    """imagecorruptions' corruptions module, importable on today's setuptools, numpy and skimage."""
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None:
        pytest.skip("imagecorruptions is not installed (pip install -e '.[dev]')")
    package_dir = list(spec.submodule_search_locations)[0]
    shim = types.ModuleType("pkg_resources")
    shim.resource_filename = lambda _name, relative: os.path.join(package_dir, relative)
    had = sys.modules.get("pkg_resources")
    sys.modules["pkg_resources"] = had or shim
    try:
        with warnings.catch_warnings():  # its scipy.ndimage.interpolation import is deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            import imagecorruptions
            from imagecorruptions import corruptions
    finally:
        if had is None:
            del sys.modules["pkg_resources"]
    from skimage.filters import gaussian

    corruptions.np = _NumpyWithFloat("numpy")
    corruptions.gaussian = lambda image, sigma, multichannel=False, **kw: gaussian(
        image, sigma=sigma, channel_axis=-1 if multichannel else None, **kw)
    return imagecorruptions


def reference_corrupt(image: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """imagecorruptions.corrupt of one uint8 HWC image, numpy's global generator seeded first."""
    np.random.seed(seed)
    return reference().corrupt(image, corruption_name=name, severity=severity).astype(np.float32)


@functools.cache
def photos(side: int) -> np.ndarray:
    """skimage's astronaut, chelsea (a cat) and coffee photographs, resized to side x side, uint8 NHWC."""
    from PIL import Image
    from skimage import data

    return np.stack([np.asarray(Image.fromarray(getattr(data, name)()).resize((side, side), Image.BILINEAR))
                     for name in PHOTOS])
