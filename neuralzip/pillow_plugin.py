"""Pillow plugin: after ``import neuralzip``, ``PIL.Image.open("x.nz")`` decodes and
``image.save("x.nz")`` encodes (``image.save(path, model="photo")`` picks the model).

``open`` reads the header only (size, mode, and the stored metadata as ``info``:
``icc_profile``, ``exif``, ``xmp`` and text entries); decoding happens on ``load()`` (or
first pixel access). Pillow opens a save target for writing before the plugin runs, so
``image.save`` is not atomic: ``neuralzip.save`` is.
"""

from __future__ import annotations

from typing import IO

from PIL import Image, ImageFile

from . import api
from .core.container import MAGIC, Header, Truncated
from .core.effort import DEFAULT_EFFORT
from .zoo import DEFAULT_MODEL

FORMAT = "NEURALZIP"
_DECODER = "neuralzip"


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


def _save(image: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    info = image.encoderinfo
    fp.write(api.compress(image, info.get("model", DEFAULT_MODEL), effort=info.get("effort", DEFAULT_EFFORT)))


Image.register_open(FORMAT, NeuralzipImageFile, _accept)
Image.register_save(FORMAT, _save)
Image.register_extension(FORMAT, ".nz")
Image.register_decoder(_DECODER, _Decoder)
