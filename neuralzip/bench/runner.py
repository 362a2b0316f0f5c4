"""Running codecs over images: one ``Record`` per (image, codec), in a pool if asked.

Units: sizes in bytes, rates in bits per subpixel (bpsp = 8 * bytes / (H * W * 3)),
times in wall-clock seconds of one call, memory in MiB (``memory.peak_mib``).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from threadpoolctl import threadpool_limits

from ..images import list_images, read_rgb
from .codecs import BenchCodec
from .memory import peak_mib

T = TypeVar("T")


@dataclass
class Record:
    """One codec on one image. ``error`` is None exactly when the codec encoded and decoded
    the image and the decoded pixels equal the original (``exact``)."""

    image: str
    codec: str
    width: int
    height: int
    bytes: int | None = None
    header_bytes: int | None = None  # None: the codec's headers are not separable
    nll_bits: float | None = None  # ideal code length under the codec's model, if it has one
    encode_s: float | None = None
    decode_s: float | None = None
    encode_mib: float | None = None
    decode_mib: float | None = None
    exact: bool = False
    error: str | None = None

    @property
    def subpixels(self) -> int:
        return self.width * self.height * 3

    @property
    def bpsp(self) -> float | None:
        return None if self.bytes is None else 8 * self.bytes / self.subpixels

    @property
    def payload_bpsp(self) -> float | None:
        """bpsp without container headers (None where they are not separable)."""
        if self.bytes is None or self.header_bytes is None:
            return None
        return 8 * (self.bytes - self.header_bytes) / self.subpixels

    @property
    def nll_bpsp(self) -> float | None:
        return None if self.nll_bits is None else self.nll_bits / self.subpixels

    def to_dict(self) -> dict[str, Any]:
        """Stored fields plus the derived rates, for JSON."""
        return {
            **asdict(self),
            "subpixels": self.subpixels,
            "bpsp": self.bpsp,
            "payload_bpsp": self.payload_bpsp,
            "nll_bpsp": self.nll_bpsp,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Record:
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


@dataclass(frozen=True)
class ImageRef:
    """An image to code: ``name`` as ``images.read_rgb`` takes it, ``label`` as reported
    (relative to the parent of the path it was found under, e.g. ``kodak/kodim01.png``)."""

    name: str
    label: str


def collect(paths: list[Path], limit: int | None = None) -> list[ImageRef]:
    """The images under each path (folders, ``.npy`` arrays, files), the first ``limit`` of each."""
    out = []
    for path in paths:
        names = list_images(path)[:limit]
        out += [ImageRef(n, os.path.relpath(n, path.parent)) for n in names]
    return out


def _timed_peak(call: Callable[[], T]) -> tuple[T, float, float]:
    """(``call()``, wall seconds, peak MiB)."""

    def timed() -> tuple[T, float]:
        t0 = time.perf_counter()
        result = call()
        return result, time.perf_counter() - t0

    (result, seconds), mib = peak_mib(timed)
    return result, seconds, mib


def measure(codec: BenchCodec, image: np.ndarray, label: str) -> Record:
    """Encode, decode and compare; any failure is recorded in ``Record.error``, not raised."""
    record = Record(label, codec.name, width=image.shape[1], height=image.shape[0])
    try:
        (data, record.nll_bits), record.encode_s, record.encode_mib = _timed_peak(lambda: codec.encode_nll(image))
        record.bytes, record.header_bytes = len(data), codec.header_bytes(data)
        decoded, record.decode_s, record.decode_mib = _timed_peak(lambda: codec.decode(data))
    except Exception as exc:  # a codec's failure is a result to report, not a crash
        record.error = f"{type(exc).__name__}: {exc}"
        return record
    decoded = np.asarray(decoded)
    if decoded.shape != image.shape or decoded.dtype != image.dtype:
        record.error = f"NOT LOSSLESS: decoded {decoded.dtype} {decoded.shape}, expected {image.dtype} {image.shape}"
    elif not np.array_equal(decoded, image):
        record.error = f"NOT LOSSLESS: {int((decoded != image).sum())} of {image.size} subpixels differ"
    record.exact = record.error is None
    return record


_codecs: dict[str, BenchCodec] = {}


def _init(codecs: list[BenchCodec]) -> threadpool_limits:
    """Set up a worker (or this process) to run ``codecs`` with single-threaded BLAS;
    returns the limiter, whose ``restore_original_limits()`` undoes the latter."""
    _codecs.clear()
    _codecs.update((c.name, c) for c in codecs)
    return threadpool_limits(1)


@functools.lru_cache(maxsize=1)
def _read(name: str) -> np.ndarray:
    return read_rgb(name)


def _task(task: tuple[ImageRef, str]) -> Record:
    image, codec = task
    return measure(_codecs[codec], _read(image.name), image.label)


def run(codecs: list[BenchCodec], images: list[ImageRef], jobs: int = 1) -> Iterator[Record]:
    """Measure every codec on every image, image by image; ``jobs`` > 1 spreads the pairs
    over that many processes (their timings then share the CPU). Yields records in order."""
    tasks = [(image, codec.name) for image in images for codec in codecs]
    if jobs == 1:
        limiter = _init(codecs)
        try:
            yield from map(_task, tasks)
        finally:
            limiter.restore_original_limits()
        return
    with ProcessPoolExecutor(jobs, initializer=_init, initargs=(codecs,)) as pool:
        yield from pool.map(_task, tasks)
