"""Image collections, as training, publishing and the benchmark read them: folders of image
files and N x H x W x 3 ``.npy`` arrays, each image named by a string."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

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


def load_images(paths: Sequence[str | Path]) -> tuple[list[str], list[np.ndarray]]:
    """(names, images) of every image under ``paths``."""
    names = [n for p in paths for n in list_images(p)]
    return names, [read_rgb(n) for n in names]
