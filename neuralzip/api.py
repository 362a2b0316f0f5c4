"""Everyday API: images (numpy arrays or PIL images) <-> .nz bytes and files.

Modes and shapes: a uint8 array of shape (H, W) or (H, W, 1) is grey (``L``), (H, W, 2)
grey + alpha (``LA``), (H, W, 3) ``RGB``, (H, W, 4) ``RGBA``. ``decompress`` returns the
mode's shape: (H, W) for L (so (H, W, 1) comes back as (H, W)), (H, W, C) otherwise.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image

from .atomic import write_atomically
from .codec import DEFAULT_MAX_PIXELS, Codec, EncodeStats, UnsupportedImage
from .zoo import DEFAULT_MODEL

ImageLike = np.ndarray | Image.Image
CODED_MODES = ("L", "LA", "RGB", "RGBA")
PALETTE_MODES = ("P", "PA")


def to_array(image: ImageLike) -> np.ndarray:
    """The pixels neuralzip codes for ``image``, uint8 (H, W) or (H, W, C).

    PIL images in modes L, LA, RGB and RGBA give their pixels; palette images (P, PA) the
    RGB they show, or RGBA if any pixel is not fully opaque; other modes (1, I;16, I, F,
    CMYK, YCbCr, ...) raise UnsupportedImage naming the mode. Arrays pass through
    unchanged (``Codec.encode`` checks them).
    """
    if not isinstance(image, Image.Image):
        return np.asarray(image)
    if image.mode in PALETTE_MODES:
        rgba = np.asarray(image.convert("RGBA"))
        return rgba if (rgba[:, :, 3] != 255).any() else np.ascontiguousarray(rgba[:, :, :3])
    if image.mode not in CODED_MODES:
        raise UnsupportedImage(
            f"unsupported image mode {image.mode!r}: neuralzip codes 8-bit L, LA, RGB, RGBA "
            "and palette (P) images"
        )
    return np.asarray(image)


def check_size(width: int, height: int, max_pixels: int) -> None:
    """Raise UnsupportedImage, worded as ``Codec.encode`` words it, for an image of more
    than ``max_pixels`` pixels."""
    if width * height > max_pixels:
        raise UnsupportedImage(f"image of {width}x{height} pixels exceeds the limit of {max_pixels} pixels")


class _PillowLimitOff:
    """Pillow's decompression-bomb check (``PIL.Image.MAX_IMAGE_PIXELS``: a warning past 89
    megapixels, an error past 179) switched off while any thread is inside, and put back
    when the last one leaves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._saved: int | None = None

    def __enter__(self) -> None:
        with self._lock:
            if self._inside == 0:
                self._saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            self._inside += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._inside -= 1
            if self._inside == 0:
                Image.MAX_IMAGE_PIXELS = self._saved


_pillow_limit_off = _PillowLimitOff()


def read_image(file: str | os.PathLike | IO[bytes], *, max_pixels: int | None = None) -> np.ndarray:
    """``to_array`` of an image file (a path or a binary file object; any format Pillow reads).

    With ``max_pixels``, an image of more pixels raises UnsupportedImage as soon as its
    header is read, before its pixels are decoded, and that limit replaces Pillow's own
    decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``).
    """
    with _pillow_limit_off if max_pixels is not None else contextlib.nullcontext(), Image.open(file) as image:
        if max_pixels is not None:
            check_size(*image.size, max_pixels)
        return to_array(image)


def encode(image: ImageLike, model: str = DEFAULT_MODEL, *, max_pixels: int = DEFAULT_MAX_PIXELS,
           progress: Callable[[int, int], None] | None = None) -> tuple[bytes, EncodeStats]:
    """``compress`` that also says what the file cost (sizes, bits, seconds)."""
    if isinstance(image, Image.Image):
        check_size(*image.size, max_pixels)  # before a lazily opened image loads its pixels
    return Codec.named(model).encode(to_array(image), progress=progress, max_pixels=max_pixels)


def compress(image: ImageLike, model: str = DEFAULT_MODEL, *, max_pixels: int = DEFAULT_MAX_PIXELS,
             progress: Callable[[int, int], None] | None = None) -> bytes:
    """.nz bytes of an image (see ``to_array``), coded with the shipped model ``model``
    (``neuralzip.zoo.available()`` lists them). Lossless: ``decompress`` gives back
    identical pixels.

    Raises UnsupportedImage for an image of more than ``max_pixels`` pixels (a PIL image
    before its pixels are loaded). ``progress(done, total)`` is called as encoding
    advances, with ``done == total`` at the end.
    """
    return encode(image, model, max_pixels=max_pixels, progress=progress)[0]


def decompress(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Pixels of .nz bytes, uint8 (H, W) for L or (H, W, C) for LA, RGB and RGBA.

    The model is the one named in the file. Raises FormatError or DecodeError on a bad or
    damaged file, and DecodeError for an image of more than ``max_pixels`` pixels, before
    allocating it. ``progress(step, total)`` is called as decoding advances.
    """
    return Codec.for_file(data).decode(data, progress=progress, max_pixels=max_pixels)


def open(path: str | os.PathLike) -> Image.Image:  # noqa: A001 - mirrors PIL.Image.open
    """The .nz file at ``path`` decoded into a PIL image of mode L, LA, RGB or RGBA."""
    return Image.fromarray(decompress(Path(path).read_bytes()))


def save(path: str | os.PathLike, image: ImageLike, model: str = DEFAULT_MODEL) -> None:
    """Compress ``image`` into the file ``path``, replacing it whole: the file is either
    the complete new one or untouched, even on an error or Ctrl-C."""
    write_atomically(Path(path), compress(image, model), overwrite=True)
