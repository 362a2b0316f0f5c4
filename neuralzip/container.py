"""The ``.nz`` container: header fields <-> bytes. Layout in FORMAT.md.

Only (de)serialisation and range checks live here; what the fields mean for decoding is
the codec's business.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

MAGIC = b"NZ"
FORMAT_VERSION = 1
FLAG_IMAGE_LS = 0x01  # per-image LS coefficients follow the header
KNOWN_FLAGS = FLAG_IMAGE_LS
MODES = {0: "RGB"}
MAX_NAME = 32
MAX_SIDE = 1 << 24


class FormatError(ValueError):
    """The bytes are not a valid .nz file; the message says what is wrong."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise FormatError(f"file is truncated (in the {what})")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def varint(self, what: str) -> int:
        value = 0
        for shift in range(0, 36, 7):
            byte = self.take(1, what)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
        raise FormatError(f"invalid {what}")


@dataclass
class Header:
    """Header fields of a .nz file. ``coefs``: int64 (65,) per-image LS coefficients or None."""

    model_name: str
    model_sha: bytes  # first 4 bytes of the weights file's sha256
    width: int
    height: int
    mode: int  # key of MODES
    precision: int  # entropy coder precision in bits
    payload_length: int  # bytes of ANS payload after the header
    checksum: int  # CRC-32 of the decoded pixels (H, W, C uint8, row-major)
    coefs: np.ndarray | None = None
    version: int = FORMAT_VERSION

    def pack(self) -> bytes:
        name = self.model_name.encode("ascii")
        flags = FLAG_IMAGE_LS if self.coefs is not None else 0
        parts = [
            MAGIC,
            bytes([self.version, flags, self.mode, len(name)]),
            name,
            self.model_sha,
            _varint(self.width),
            _varint(self.height),
            bytes([self.precision]),
            _varint(self.payload_length),
            struct.pack("<I", self.checksum),
        ]
        if self.coefs is not None:
            parts.append(np.asarray(self.coefs, "<i2").tobytes())
        return b"".join(parts)

    @classmethod
    def unpack(cls, data: bytes, n_coefs: int) -> tuple["Header", int]:
        """(header, offset of the payload). Raises FormatError on any malformed field."""
        r = _Reader(data)
        if r.take(len(MAGIC), "magic bytes") != MAGIC:
            raise FormatError("not a neuralzip file (bad magic bytes)")
        version, flags, mode, name_len = r.take(4, "header")
        if version != FORMAT_VERSION:
            raise FormatError(f"unsupported format version {version} (this neuralzip reads version {FORMAT_VERSION})")
        if flags & ~KNOWN_FLAGS:
            raise FormatError(f"unknown header flags 0x{flags:02x}")
        if mode not in MODES:
            raise FormatError(f"unknown image mode {mode}")
        if not 0 < name_len <= MAX_NAME:
            raise FormatError("invalid model name length")
        try:
            name = r.take(name_len, "model name").decode("ascii")
        except UnicodeDecodeError:
            raise FormatError("invalid model name") from None
        sha = r.take(4, "model hash")
        width, height = r.varint("width"), r.varint("height")
        if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
            raise FormatError(f"invalid image size {width}x{height}")
        precision = r.take(1, "header")[0]
        payload_length = r.varint("payload length")
        (checksum,) = struct.unpack("<I", r.take(4, "checksum"))
        coefs = None
        if flags & FLAG_IMAGE_LS:
            coefs = np.frombuffer(r.take(2 * n_coefs, "LS coefficients"), "<i2").astype(np.int64)
        header = cls(name, sha, width, height, mode, precision, payload_length, checksum, coefs, version)
        if len(data) - r.pos != payload_length:
            what = "truncated" if len(data) - r.pos < payload_length else "longer than its header says"
            raise FormatError(f"file is {what} (payload {len(data) - r.pos} bytes, header says {payload_length})")
        return header, r.pos
