"""The bytes of a .nz file's fields (FORMAT.md): unsigned LEB128 varints of at most 5
bytes in their shortest form, zigzag for signed values, and the ``Reader`` that takes them
from a file, raising ``FormatError`` (``Truncated`` where the bytes end too soon)."""

from __future__ import annotations


class FormatError(ValueError):
    """The bytes are not a valid .nz file; the message says what is wrong."""


class Truncated(FormatError):
    """The bytes end inside the header: a longer prefix of the file may still parse.
    ``needed``: how many bytes of the file the field that ran past the end reaches to,
    at least (a reader of a stream reads up to there before trying again)."""

    def __init__(self, message: str, needed: int = 0):
        super().__init__(message)
        self.needed = needed


def varint(value: int) -> bytes:
    """``value`` >= 0 as an unsigned LEB128 varint."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


class Reader:
    """Fields of ``data`` from its start on; ``pos``: the next byte's offset."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise Truncated(f"file is truncated (in the {what})", self.pos + n)
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def varint(self, what: str) -> int:
        """An unsigned LEB128 value of at most 5 bytes, in its shortest encoding."""
        value = 0
        for shift in range(0, 35, 7):
            byte = self.take(1, what)[0]
            if shift and byte == 0:
                raise FormatError(f"invalid {what} (overlong encoding)")
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
        raise FormatError(f"invalid {what}")


def zigzag(value: int) -> int:
    """A signed value as the unsigned one a varint holds: 2v for v >= 0, -2v - 1 below."""
    return 2 * value if value >= 0 else -2 * value - 1
