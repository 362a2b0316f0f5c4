"""The codecs under test: small pluggable classes with one contract.

A ``BenchCodec`` turns a uint8 (H, W, 3) RGB array into bytes and back, losslessly. The
runner checks the round trip pixel for pixel, so a codec only has to code. Optional hooks:

- ``header_bytes(data)``: bytes of container framing in ``data`` (None: not separable);
- ``encode_nll(image)``: (bytes, ideal model code length in bits or None).

Every codec runs single-threaded, so timings compare codecs, not thread pools. To add a
codec, subclass ``BenchCodec`` (or instantiate ``ImagecodecsCodec``) and list it in
``all_codecs``.
"""

from __future__ import annotations

import functools
import importlib
import io
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

# A chunk walker yields (chunk type, bytes of its contents) for every chunk of a file.
ChunkWalker = Callable[[bytes], Iterator[tuple[bytes, int]]]


def png_chunks(data: bytes) -> Iterator[tuple[bytes, int]]:
    """PNG chunks after the 8-byte signature: 4-byte big-endian length, type, data, CRC."""
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        yield data[pos + 4 : pos + 8], length
        pos += 12 + length


def riff_chunks(data: bytes) -> Iterator[tuple[bytes, int]]:
    """RIFF chunks (WebP) after the 12-byte ``RIFF size WEBP`` header; odd sizes are padded."""
    pos = 12
    while pos + 8 <= len(data):
        (length,) = struct.unpack_from("<I", data, pos + 4)
        yield data[pos : pos + 4], length
        pos += 8 + length + (length & 1)


def isobmff_boxes(data: bytes) -> Iterator[tuple[bytes, int]]:
    """Top-level ISO-BMFF boxes (AVIF, JP2): 4-byte size, type, optional 64-bit size."""
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I", data, pos)[0], data[pos + 4 : pos + 8]
        head = 8
        if size == 1:
            size, head = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = len(data) - pos
        yield kind, size - head
        pos += size


def container_overhead(data: bytes, walk: ChunkWalker, payload: bytes) -> int:
    """Bytes of ``data`` outside the contents of its ``payload``-type chunks."""
    return len(data) - sum(length for kind, length in walk(data) if kind == payload)


class BenchCodec(ABC):
    """A lossless codec under test.

    Contract: ``decode(encode(image))`` equals ``image`` for any uint8 (H, W, 3) array.
    ``name`` is unique among the codecs of a run; ``settings`` says exactly how the
    underlying library is called; ``headers`` says how ``header_bytes`` counts.
    """

    name: str
    settings: str
    headers: str = "not separable"

    def missing(self) -> str | None:
        """Why this codec cannot run here (a library is absent), or None when it can."""
        return None

    @abstractmethod
    def encode(self, image: np.ndarray) -> bytes:
        """Compress a uint8 (H, W, 3) RGB array."""

    @abstractmethod
    def decode(self, data: bytes) -> np.ndarray:
        """Decompress to a uint8 (H, W, 3) RGB array."""

    def encode_nll(self, image: np.ndarray) -> tuple[bytes, float | None]:
        """(``encode(image)``, ideal code length in bits under the codec's model, or None)."""
        return self.encode(image), None

    def header_bytes(self, data: bytes) -> int | None:
        """Container bytes of ``data`` that are not compressed pixels; None if not separable."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}: {self.settings}>"


class NeuralzipCodec(BenchCodec):
    """neuralzip with one shipped model; the model is loaded on first use."""

    headers = ".nz header (LS coefficients included) = file size - payload length"

    def __init__(self, model: str):
        from .. import zoo

        self.model = model
        self.name = f"neuralzip-{model}"
        used = zoo.coding_model(model)  # the default effort's model: photo-wide for photo
        self.settings = f"zoo.codec({model!r}, threads=1)" + ("" if used == model else f": codes with {used!r}")
        self._codec: Any = None

    def __getstate__(self) -> dict:  # worker processes load their own model
        return {**self.__dict__, "_codec": None}

    @property
    def codec(self) -> Any:
        if self._codec is None:
            from .. import zoo

            self._codec = zoo.codec(self.model, threads=1)  # one thread per codec, as the others
        return self._codec

    def encode_nll(self, image: np.ndarray) -> tuple[bytes, float | None]:
        data, stats = self.codec.encode(image)
        return data, stats.nll_bits

    def encode(self, image: np.ndarray) -> bytes:
        return self.encode_nll(image)[0]

    def decode(self, data: bytes) -> np.ndarray:
        return self.codec.decode(data)

    def header_bytes(self, data: bytes) -> int | None:
        from ..core.container import Header

        return len(data) - Header.unpack(data)[0].payload_length


class PngCodec(BenchCodec):
    """PNG through Pillow, ``optimize=True`` (zlib level 9 and the smallest filter choice)."""

    name = "png"
    settings = "Pillow Image.save(format='PNG', optimize=True)"
    headers = "signature + non-IDAT chunks + 12 bytes framing per IDAT chunk"

    def encode(self, image: np.ndarray) -> bytes:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG", optimize=True)
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))

    def header_bytes(self, data: bytes) -> int | None:
        return container_overhead(data, png_chunks, b"IDAT")


class ImagecodecsCodec(BenchCodec):
    """A codec of the ``imagecodecs`` package: ``<fmt>_encode(image, **options)`` and
    ``<fmt>_decode(data)``; ``header`` counts container bytes (None: not separable)."""

    def __init__(
        self,
        name: str,
        fmt: str,
        options: dict[str, Any],
        header: Callable[[bytes], int] | None = None,
        headers: str = BenchCodec.headers,
    ):
        self.name, self.fmt, self.options = name, fmt, options
        self.settings = f"imagecodecs.{fmt}_encode({', '.join(f'{k}={v!r}' for k, v in options.items())})"
        self.header, self.headers = header, headers

    def _module(self) -> Any:
        return importlib.import_module("imagecodecs")

    def missing(self) -> str | None:
        try:
            module = self._module()
        except ImportError:
            return "the imagecodecs package is not installed (pip install 'neuralzip[bench]')"
        if not getattr(module, self.fmt.upper()).available:
            return f"this imagecodecs {module.__version__} was built without {self.fmt}"
        return None

    def encode(self, image: np.ndarray) -> bytes:
        return bytes(getattr(self._module(), f"{self.fmt}_encode")(image, **self.options))

    def decode(self, data: bytes) -> np.ndarray:
        return getattr(self._module(), f"{self.fmt}_decode")(data)

    def header_bytes(self, data: bytes) -> int | None:
        return None if self.header is None else self.header(data)


def qoi_framing(data: bytes) -> int:
    """QOI's fixed 14-byte header and 8-byte end marker."""
    return 14 + 8


webp_framing = functools.partial(container_overhead, walk=riff_chunks, payload=b"VP8L")
jp2_framing = functools.partial(container_overhead, walk=isobmff_boxes, payload=b"jp2c")
avif_framing = functools.partial(container_overhead, walk=isobmff_boxes, payload=b"mdat")


def all_codecs(models: list[str] | None = None) -> list[BenchCodec]:
    """Every codec of the suite, neuralzip first (one per shipped model, or per ``models``)."""
    if models is None:
        from ..zoo import available

        models = available()
    one = {"numthreads": 1}
    riff = "RIFF outside the VP8L chunk data"
    return [
        *(NeuralzipCodec(m) for m in models),
        PngCodec(),
        ImagecodecsCodec("webp-m6", "webp", {"lossless": True, "method": 6, "level": 100, **one}, webp_framing, riff),
        ImagecodecsCodec("webp-m0", "webp", {"lossless": True, "method": 0, **one}, webp_framing, riff),
        ImagecodecsCodec("jpegxl-e7", "jpegxl", {"lossless": True, "effort": 7, **one}),
        ImagecodecsCodec("jpegxl-e9", "jpegxl", {"lossless": True, "effort": 9, **one}),
        ImagecodecsCodec("jpegls", "jpegls", {}),
        ImagecodecsCodec(
            "jpeg2000", "jpeg2k", {"reversible": True, **one}, jp2_framing, "JP2 boxes outside the jp2c codestream"
        ),
        ImagecodecsCodec("qoi", "qoi", {}, qoi_framing, "14-byte header + 8-byte end marker"),
        ImagecodecsCodec(
            "avif", "avif", {"level": 100, "speed": 5, **one}, avif_framing, "ISO-BMFF boxes outside the mdat data"
        ),
    ]
