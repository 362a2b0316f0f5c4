"""Pillow plugin: after ``import neuralzip``, ``PIL.Image.open("x.nz")`` decodes and
``image.save("x.nz")`` encodes (``image.save(path, model="photo")`` picks the model).

Decoding happens on ``load()`` (or first pixel access), not on ``open``.
"""

from __future__ import annotations

from typing import IO

from PIL import Image, ImageFile

from . import api
from .container import FORMAT_VERSION, MAGIC, Header
from .zoo import DEFAULT_MODEL

FORMAT = "NEURALZIP"
_DECODER = "neuralzip"


def _accept(prefix: bytes) -> bool:
    return prefix[: len(MAGIC) + 1] == MAGIC + bytes([FORMAT_VERSION])


class NeuralzipImageFile(ImageFile.ImageFile):
    """A .nz file opened by Pillow: header read on open, pixels decoded on load."""

    format = FORMAT
    format_description = "neuralzip learned lossless image"

    def _open(self) -> None:
        header = Header.unpack(self.fp.read())[0]  # a damaged file says why (FormatError)
        self._mode = header.image_mode.name
        self._size = (header.width, header.height)
        self.tile = [(_DECODER, (0, 0, header.width, header.height), 0, ())]


class _Decoder(ImageFile.PyDecoder):
    _pulls_fd = True

    def decode(self, buffer: bytes) -> tuple[int, int]:
        self.set_as_raw(api.decompress(self.fd.read()).tobytes())
        return -1, 0


def _save(image: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    fp.write(api.compress(image, image.encoderinfo.get("model", DEFAULT_MODEL)))


Image.register_open(FORMAT, NeuralzipImageFile, _accept)
Image.register_save(FORMAT, _save)
Image.register_extension(FORMAT, ".nz")
Image.register_decoder(_DECODER, _Decoder)
