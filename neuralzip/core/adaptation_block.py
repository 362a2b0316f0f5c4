"""The per-image adaptation block (FORMAT.md, "Adaptation"): a model's bias offsets per
layer and its output gains, each list a varint count, a scale byte e and zigzag varints
of the values / 2**e."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fields import FormatError, Reader, varint, zigzag

MAX_LAYERS = 16  # layers an adaptation block may describe ...
MAX_UNITS = 4096  # ... and units of one layer
MAX_OFFSET = 1 << 30  # the largest |offset|: its zigzag varint fits the reader's 5 bytes
MAX_SHIFT = 8  # offsets are stored divided by 2**e, e <= MAX_SHIFT


def _common_shift(values: list[int]) -> int:
    """The largest e <= MAX_SHIFT such that every value is a multiple of 2**e."""
    shift = 0
    while shift < MAX_SHIFT and all(v % (2 << shift) == 0 for v in values):
        shift += 1
    return shift


def _pack_values(values: np.ndarray | None) -> bytes:
    """varint count (0 for None), then for a count above 0 a byte e and the zigzag
    varints of the values divided by 2**e (the largest power of two dividing them all,
    at most MAX_SHIFT)."""
    ints = [] if values is None else [int(v) for v in values]
    if len(ints) > MAX_UNITS or any(abs(v) > MAX_OFFSET for v in ints):
        raise ValueError(f"adaptation: at most {MAX_UNITS} values a layer, each within ±2**30")
    if not ints:
        return varint(0)
    shift = _common_shift(ints)
    return varint(len(ints)) + bytes([shift]) + b"".join(varint(zigzag(v >> shift)) for v in ints)


def _unpack_values(r: Reader) -> np.ndarray | None:
    """Inverse of ``_pack_values``."""
    count = r.varint("adaptation value count")
    if count > MAX_UNITS:
        raise FormatError(f"invalid adaptation value count {count}")
    if not count:
        return None
    shift = r.take(1, "adaptation scale")[0]
    if shift > MAX_SHIFT:
        raise FormatError(f"invalid adaptation scale {shift}")
    coded = [r.varint("adaptation value") for _ in range(count)]
    values = np.array([c // 2 if c % 2 == 0 else -(c + 1) // 2 for c in coded], np.int64) << shift
    if np.abs(values).max() > MAX_OFFSET:
        raise FormatError("invalid adaptation value (over 2**30)")
    return values


@dataclass
class Adaptation:
    """A file's per-image adaptation of its model (``neuralzip.core.adapt``).

    ``bias_offsets``: per layer, int64 (units,) or None (``IntegerModel.with_bias_offsets``);
    ``output_gains``: int64 (outputs,) or None (``IntegerModel.with_output_gains``).
    """

    bias_offsets: list[np.ndarray | None]
    output_gains: np.ndarray | None = None

    def pack(self) -> bytes:
        """varint layer count, each layer's bias offsets, then the output gains, each as a
        varint count (0: none), a scale byte e and zigzag varints of the values / 2**e."""
        if not 0 < len(self.bias_offsets) <= MAX_LAYERS:
            raise ValueError(f"adaptation: 1 to {MAX_LAYERS} layers")
        return (
            varint(len(self.bias_offsets))
            + b"".join(map(_pack_values, self.bias_offsets))
            + _pack_values(self.output_gains)
        )

    def describe(self) -> str:
        """One line, e.g. ``200 bias offsets, 72 output gains, 283 bytes``."""
        offsets = sum(len(v) for v in self.bias_offsets if v is not None)
        gains = 0 if self.output_gains is None else len(self.output_gains)
        return f"{offsets} bias offsets, {gains} output gains, {len(self.pack())} bytes"

    @classmethod
    def unpack(cls, r: Reader) -> Adaptation:
        """Inverse of ``pack``, from a reader at the block's start."""
        layers = r.varint("adaptation layer count")
        if not 0 < layers <= MAX_LAYERS:
            raise FormatError(f"invalid adaptation layer count {layers}")
        return cls([_unpack_values(r) for _ in range(layers)], _unpack_values(r))
