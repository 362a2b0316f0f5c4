"""The alpha plane <-> the alpha block: a cheap exact code for transparency.

The colour channels go through the model; alpha is usually flat or made of large flat
areas, so it gets a simple lossless code instead (layout in FORMAT.md):

* ``CONSTANT`` (2 bytes): every pixel has the same alpha, stored once;
* ``DEFLATE``: zlib (level 9) of the plane with each row left-differenced modulo 256.
"""

from __future__ import annotations

import zlib

import numpy as np

from .fields import FormatError

CONSTANT, DEFLATE = 0, 1


def encode_alpha(alpha: np.ndarray) -> bytes:
    """Alpha block of a uint8 (H, W) plane."""
    first = int(alpha.flat[0])
    if (alpha == first).all():
        return bytes([CONSTANT, first])
    left_diff = np.diff(alpha, axis=1, prepend=np.uint8(0))  # uint8: wraps modulo 256
    return bytes([DEFLATE]) + zlib.compress(np.ascontiguousarray(left_diff).tobytes(), 9)


def decode_alpha(block: bytes, height: int, width: int) -> np.ndarray:
    """uint8 (H, W) plane of an alpha block; FormatError if the block is malformed."""
    kind, body = block[0], block[1:]
    if kind == CONSTANT:
        if len(body) != 1:
            raise FormatError("invalid constant alpha block")
        return np.full((height, width), body[0], np.uint8)
    if kind != DEFLATE:
        raise FormatError(f"unknown alpha block kind {kind}")
    inflater = zlib.decompressobj()
    try:
        plane = inflater.decompress(body, height * width + 1)  # bounded: no zip bomb
    except zlib.error as exc:
        raise FormatError(f"corrupted alpha block ({exc})") from None
    if len(plane) != height * width or not inflater.eof or inflater.unused_data:
        raise FormatError("corrupted alpha block (wrong length)")
    left_diff = np.frombuffer(plane, np.uint8).reshape(height, width)
    return np.cumsum(left_diff, axis=1, dtype=np.uint8)


def describe_alpha(block: bytes) -> str:
    """One-line summary of an alpha block, e.g. ``constant 255`` or ``deflate, 812 bytes``."""
    if block[0] == CONSTANT and len(block) == 2:
        return f"constant {block[1]}"
    return f"deflate, {len(block)} bytes"
