"""Pillow plugin: after ``import neuralzip``, ``PIL.Image.open("x.nz")`` decodes and
``image.save("x.nz")`` encodes (``image.save(path, model="photo")`` picks the model).

``open`` reads the header only (size, mode, and the stored metadata as ``info``:
``icc_profile``, ``exif``, ``xmp`` and text entries); decoding happens on ``load()`` (or
first pixel access). Pillow opens a save target for writing before the plugin runs, so
``image.save`` is not atomic: ``neuralzip.save`` is.

``save`` codes what ``neuralzip compress`` codes for the same file: Pillow decodes the
pixels before the plugin runs, losing what the file's header says of their bit depth,
so the plugin reads that header again from the image's path (a 16-bit source refused, a
2- or 4-bit grey colour key scaled as the samples are). An image Pillow read from a
stream has no path to read again: it is refused unless its format (JPEG, MPO, WebP, GIF,
neuralzip) holds at most 8 bits a sample.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from PIL import Image, ImageFile

from . import api
from .core.codec import UnsupportedImage
from .core.container import MAGIC, Header
from .core.effort import DEFAULT_EFFORT
from .core.fields import Truncated
from .core.metadata import Metadata
from .zoo import DEFAULT_MODEL

FORMAT = "NEURALZIP"
_DECODER = "neuralzip"
_EIGHT_BIT_FORMATS = frozenset({FORMAT, "GIF", "JPEG", "MPO", "WEBP"})  # Pillow opens them at 8 bits a sample


def _accept(prefix: bytes) -> bool:
    return prefix[: len(MAGIC)] == MAGIC  # any version: an unknown one gets a clear FormatError


class NeuralzipImageFile(ImageFile.ImageFile):
    """A .nz file opened by Pillow: header read on open, pixels decoded on load."""

    format = FORMAT
    format_description = "neuralzip learned lossless image"

    def _open(self) -> None:
        assert self.fp is not None  # Pillow opens the file before it calls _open
        prefix = b""
        while True:  # read as much as the header takes; a damaged file says why (FormatError)
            more = self.fp.read(max(4096, len(prefix)))
            try:
                header, offset = Header.unpack_prefix(prefix + more)
                break
            except Truncated:
                if not more:
                    raise
                prefix += more
        header.check_payload(self.fp.seek(0, 2) - offset)
        self._mode = header.image_mode.name
        self._size = (header.width, header.height)
        if header.metadata:
            self.info.update(header.metadata.pil_info())
        self.fp.seek(0)
        # a plain tuple, which every supported Pillow takes (ImageFile._Tile, the named tuple that
        # Pillow's types ask for, is not in Pillow 10)
        self.tile = [(_DECODER, (0, 0, header.width, header.height), 0, ())]  # type: ignore[list-item]


class _Decoder(ImageFile.PyDecoder):
    _pulls_fd = True

    def decode(self, buffer: Image.DecoderInput) -> tuple[int, int]:
        assert self.fd is not None  # _pulls_fd: Pillow hands the decoder the file
        self.set_as_raw(api.decompress(self.fd.read()).tobytes())
        return -1, 0


@contextmanager
def _header(image: Image.Image) -> Iterator[Image.Image | None]:
    """The file behind ``image`` opened again, its pixels not loaded, for ``to_array`` to
    read the bit depth off; None for an image made in memory or of a format of 8 bits a
    sample at most. Raises UnsupportedImage for one read from a stream (no path to open)
    and where the path no longer opens."""
    if not isinstance(image, ImageFile.ImageFile) or image.format in _EIGHT_BIT_FORMATS:
        yield None
        return
    if not image.filename:
        raise UnsupportedImage(
            f"{image.format} image read from a stream, its pixels decoded before the save: its bit depth cannot be "
            "checked (open it from a path, or give it to neuralzip.compress before loading it)"
        )
    try:
        header = Image.open(image.filename)
    except OSError as exc:
        path = os.fsdecode(image.filename)
        raise UnsupportedImage(f"cannot open {path} again to check its bit depth: {exc.strerror or exc}") from exc
    with header:
        yield header


def _save(image: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    info = image.encoderinfo
    with _header(image) as header:
        pixels = api.to_array(image, header=header)
    model, effort = info.get("model", DEFAULT_MODEL), info.get("effort", DEFAULT_EFFORT)
    fp.write(api.compress(pixels, model, metadata=Metadata.of(image), effort=effort))


Image.register_open(FORMAT, NeuralzipImageFile, _accept)
Image.register_save(FORMAT, _save)
Image.register_extension(FORMAT, ".nz")
Image.register_decoder(_DECODER, _Decoder)
