"""The packed payload: raw colour pixels through LZMA2, for images the model codes badly.

The model is trained on photographs. Graphics, screenshots and synthetic images (flat
areas, exact repeats, text) are what dictionary coders do best: a 512x512 diagram costs
the model ~1 bit per subpixel and LZMA2 ~0.03. The encoder screens with zlib at its
fastest level (a few ms a megapixel) and tries LZMA2 only when that alone already beats
the model's payload, so photographs pay nothing for the check.

Layout (FORMAT.md): a raw LZMA2 stream (no .xz container), dictionary ``DICT_SIZE``, of
the row-major (H, W, colour channels) uint8 pixels.

>>> data = pack(bytes(1000))
>>> len(data) < 32, unpack(data, 1000) == bytes(1000)
(True, True)

The decoder reads any LZMA2 stream; the encoder's exact bytes are liblzma's and may differ
between its versions (unlike the ANS payload's, which are the same everywhere).
"""

from __future__ import annotations

import lzma
import zlib

from .fields import FormatError

DICT_SIZE = 1 << 23  # 8 MiB, LZMA preset 6's: about 100 MB to encode, 9 MB to decode
_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": DICT_SIZE}]


def worth_trying(raw: bytes, model_payload_bytes: int) -> bool:
    """Whether LZMA2 may beat a model payload of ``model_payload_bytes`` on ``raw``: zlib at
    level 1 already does (photographs fail this by far, at a few ms a megapixel)."""
    screen = zlib.compressobj(1)
    size = 0
    for start in range(0, len(raw), 1 << 20):
        size += len(screen.compress(raw[start : start + (1 << 20)]))
        if size >= model_payload_bytes:
            return False
    return size + len(screen.flush()) < model_payload_bytes


def pack(raw: bytes) -> bytes:
    """The packed payload of raw pixel bytes."""
    return lzma.compress(raw, format=lzma.FORMAT_RAW, filters=_FILTERS)


def unpack(data: bytes, length: int) -> bytes:
    """The ``length`` raw pixel bytes of a packed payload; FormatError unless ``data`` is
    one whole LZMA2 stream of exactly that many bytes (never inflates past ``length``)."""
    inflater = lzma.LZMADecompressor(
        format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "dict_size": DICT_SIZE}]
    )
    try:
        raw = inflater.decompress(data, length + 1)
    except lzma.LZMAError as exc:
        raise FormatError(f"corrupted packed payload ({exc})") from None
    if len(raw) != length or not inflater.eof or inflater.unused_data:
        raise FormatError("corrupted packed payload (wrong length)")
    return raw
