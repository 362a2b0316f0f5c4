"""Training and benchmark data: image collections (folders of image files and
N x H x W x 3 ``.npy`` arrays) and every pixel's model inputs and targets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.kernel import image_kernel
from ..core.ls import rgb_copy
from ..core.units import DEFAULT_CONTEXT, n_features

IMAGE_SUFFIXES = {".png", ".bmp", ".ppm", ".pnm", ".tif", ".tiff", ".webp", ".jpg", ".jpeg"}


def list_images(path: str | Path) -> list[str]:
    """Names of the images under ``path``: sorted files of a folder, ``file.npy#i`` entries
    of an array, or the path itself."""
    path = Path(path)
    if path.is_dir():
        return sorted(str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if path.suffix == ".npy":
        n = np.load(path, mmap_mode="r").shape[0]
        return [f"{path}#{i}" for i in range(n)]
    return [str(path)]


def read_rgb(name: str) -> np.ndarray:
    """uint8 (H, W, 3) RGB pixels of a name from ``list_images``."""
    if "#" in name and name.split("#")[0].endswith(".npy"):
        path, i = name.rsplit("#", 1)
        return np.ascontiguousarray(np.load(path, mmap_mode="r")[int(i)], dtype=np.uint8)
    with Image.open(name) as im:
        return np.asarray(im.convert("RGB"))


def load_images(paths: list[str | Path]) -> tuple[list[str], list[np.ndarray]]:
    """(names, images) of every image under ``paths``."""
    names = [n for p in paths for n in list_images(p)]
    return names, [read_rgb(n) for n in names]


@dataclass
class ImageTerms:
    """Model inputs and targets of all H*W pixels of one image, in raster order.

    features: int16 (n, n_features(context)) fixed point (2**-8); base_q4: int64 (n, 3) LS predictions with
    the pixel's actual earlier channels; residuals_q4: int64 (n, 3) = 16 * pixel - base;
    pixels: int64 (n, 3).
    """

    features: np.ndarray
    base_q4: np.ndarray
    residuals_q4: np.ndarray
    pixels: np.ndarray


def analyse(image: np.ndarray, coefs: np.ndarray, context: int = DEFAULT_CONTEXT) -> ImageTerms:
    """Terms of a uint8 (H, W, 3) image under LS coefficients ``coefs``, with the inputs of
    ``context`` (``units.CONTEXTS``)."""
    pixels = rgb_copy(image)
    kernel = image_kernel(pixels, coefs, colour_channels=3, context=context)
    kernel.compute_residuals()
    n = pixels.shape[0] * pixels.shape[1]
    features = np.empty((n, n_features(context)), np.int16)
    base = np.empty((n, 3), np.int16)
    kernel.terms(features, base)
    flat = pixels.reshape(n, 3).astype(np.int64)
    base = base.astype(np.int64)
    return ImageTerms(features, base, 16 * flat - base, flat)
