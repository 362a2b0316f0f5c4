"""The command's inputs, read in memory that grows with what is read: an image from stdin,
and a .nz file (or stdin) whose header is read and checked before its payload.
``describe`` sums a .nz file up in one line."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import BinaryIO

from .core.ans import PRECISION
from .core.codec import DecodeError, check_pixels
from .core.container import MAGIC, Header
from .core.fields import FormatError, Truncated
from .jobs import File, UserError

MAX_PAYLOAD_BITS = 2 * PRECISION  # a coded subpixel is two ANS symbols, each of probability >= 2**-24
CHUNK = 1 << 16


def stdin() -> BinaryIO:
    if sys.stdin is None:
        raise UserError("standard input is closed")
    return sys.stdin.buffer


def read_image_stdin(max_pixels: int) -> bytes:
    """stdin's bytes, refused at the first byte past what any image file of ``max_pixels``
    pixels could need (8 bytes a pixel, plus 64 MiB of headers and metadata): a stream
    without end (``/dev/zero``) is cut short, never read whole, and memory grows with what
    was read, not with the limit."""
    limit = 8 * max_pixels + (1 << 26)
    stream, data = stdin(), bytearray()
    while len(data) <= limit:
        chunk = stream.read(min(limit + 1 - len(data), max(CHUNK, len(data))))
        if not chunk:
            return bytes(data)
        data += chunk
    raise UserError(f"standard input is longer than any image of --max-pixels {max_pixels} pixels could be")


def read_nz(
    source: File | None, max_pixels: int | None = None, keep_payload: bool = True
) -> tuple[tuple[Header, int], bytes, int]:
    """((header, offset of the payload), the file's bytes, its length) of a .nz file or of
    stdin (None), its header read and checked before the rest: two bytes refuse a stream
    that is not .nz at all, and an image over ``max_pixels`` (before the alpha block is
    read) or a payload longer than any image of its size could need (``MAX_PAYLOAD_BITS``
    bits a subpixel) is refused before the payload is read. Each try to parse the header
    reads up to where the field it stopped in ends (in chunks that at most double what is
    held, so a length that lies costs no memory), so the header is parsed a few times at
    most (once per field that runs past what was read), never once per chunk. Without
    ``keep_payload`` the payload is only counted (the bytes returned are the header's)."""

    def check_size(width: int, height: int) -> None:
        if max_pixels is not None:
            check_pixels(width, height, max_pixels, DecodeError)

    with contextlib.ExitStack() as stack:
        stream = stdin() if source is None else stack.enter_context(source.open("rb"))
        data, needed = bytearray(), len(MAGIC)
        while True:
            want = needed if needed <= len(MAGIC) else max(needed, CHUNK)  # the magic bytes first
            while len(data) < want:
                chunk = stream.read(min(want - len(data), max(CHUNK, len(data))))
                if not chunk:
                    break
                data += chunk
            try:
                header, offset = Header.unpack_prefix(bytes(data), check_size)
                break
            except Truncated as exc:
                if len(data) < needed:  # the stream ended
                    raise
                needed = max(exc.needed, len(data) + 1)
        subpixels = header.width * header.height * header.image_mode.colour_channels
        if header.payload_length > subpixels * MAX_PAYLOAD_BITS // 8 + 16:
            raise FormatError(
                f"payload length {header.payload_length:,} is more than a {header.width}x{header.height} image can need"
            )
        total = len(data)
        if not keep_payload:
            del data[offset:]
        if not keep_payload and isinstance(source, Path) and source.is_file():
            total = source.stat().st_size  # a file's size says how long it is: the payload is not read
        else:
            while total <= offset + header.payload_length:  # a byte past the end tells a longer file
                chunk = stream.read(min(max(CHUNK, total), offset + header.payload_length + 1 - total))
                if not chunk:
                    break
                total += len(chunk)
                if keep_payload:
                    data += chunk
    if total < offset + header.payload_length:
        raise FormatError(f"file is truncated (payload {total - offset} bytes, header says {header.payload_length})")
    if total > offset + header.payload_length:
        raise FormatError(f"file is longer than its header says (header says {header.payload_length} bytes of payload)")
    return (header, offset), bytes(data), total


def describe(header: Header, size: int) -> str:
    """``WxH MODE, N bytes, B bpsp`` of a .nz file of ``size`` bytes."""
    subpixels = header.width * header.height * header.image_mode.channels
    return f"{header.width}x{header.height} {header.image_mode.name}, {size:,} bytes, {8 * size / subpixels:.4f} bpsp"
