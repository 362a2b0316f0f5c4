"""The bytes of a .nz file's fields (FORMAT.md): unsigned LEB128 varints of at most 5
bytes in their shortest form, zigzag for signed values, and the ``Reader`` that takes them
from a file, raising ``FormatError`` (``Truncated`` where the bytes end too soon); and what
a row of the header's table of fields is (``Field``: its ``Encoding``, the versions that
have it, the ``Flag`` or other ``Gate`` it needs)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import numpy as np

from .versions import FORMAT_VERSION


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


# The header as a table (``container.HEADER_FIELDS``): each field an encoding, the format
# versions that have it and the condition that gates it. Reading, writing, ``neuralzip info``
# and FORMAT.md's header table (tests/test_format_doc.py) all walk that one table.

Values = dict[str, Any]  # by name, the fields read so far (for a writer: the version, flags and mode)


class Encoding(Protocol):
    """How a field's value becomes bytes and back; ``size``: the field's size as FORMAT.md's
    header table gives it. ``read`` may look at the fields before (``values``): a length."""

    @property
    def size(self) -> str: ...

    def write(self, value: Any) -> bytes: ...

    def read(self, r: Reader, what: str, values: Values) -> Any: ...


class Byte:
    """An unsigned byte. A file that ends before one is "truncated (in the header)", the
    field unnamed, as readers have always said."""

    size = "1"

    def write(self, value: int) -> bytes:
        return bytes([value])

    def read(self, r: Reader, what: str, values: Values) -> int:
        return r.take(1, "header")[0]


class Varint:
    """An unsigned LEB128 varint (``varint``, ``Reader.varint``)."""

    size = "varint"

    def write(self, value: int) -> bytes:
        return varint(value)

    def read(self, r: Reader, what: str, values: Values) -> int:
        return r.varint(what)


class Uint32:
    """A little-endian unsigned 32-bit integer."""

    size = "4"

    def write(self, value: int) -> bytes:
        return struct.pack("<I", value)

    def read(self, r: Reader, what: str, values: Values) -> int:
        return struct.unpack("<I", r.take(4, what))[0]


@dataclass(frozen=True)
class Raw:
    """``length`` bytes, as they are."""

    length: int

    @property
    def size(self) -> str:
        return str(self.length)

    def write(self, value: bytes) -> bytes:
        return bytes(value)

    def read(self, r: Reader, what: str, values: Values) -> bytes:
        return r.take(self.length, what)


@dataclass(frozen=True)
class Sized:
    """Bytes whose count the field named ``length`` before them holds (FORMAT.md's ``size``
    for them: a letter); a writer writes that field from the bytes it writes here. A
    subclass turns a value into them and back (``to_bytes``, ``from_bytes``)."""

    length: str
    size: str

    def write(self, value: Any) -> bytes:
        return self.to_bytes(value)

    def read(self, r: Reader, what: str, values: Values) -> Any:
        return self.from_bytes(r.take(values[self.length], what), values)

    def to_bytes(self, value: Any) -> bytes:
        return bytes(value)

    def from_bytes(self, data: bytes, values: Values) -> Any:
        return data


@dataclass(frozen=True)
class Int16s:
    """``count(values)`` little-endian int16s (FORMAT.md: ``2·k``), read as int64."""

    count: Callable[[Values], int]
    size = "2·k"

    def write(self, value: np.ndarray) -> bytes:
        return np.asarray(value, "<i2").tobytes()

    def read(self, r: Reader, what: str, values: Values) -> np.ndarray:
        return np.frombuffer(r.take(2 * self.count(values), what), "<i2").astype(np.int64)


class Gate(Protocol):
    """When a field is there, beyond its format versions; ``doc`` as FORMAT.md's header
    table says it."""

    @property
    def versions(self) -> range: ...

    @property
    def doc(self) -> str: ...

    def holds(self, values: Values) -> bool: ...


@dataclass(frozen=True)
class Flag:
    """Bit ``bit`` of the flags byte, which the format ``versions`` have."""

    bit: int
    versions: range

    @property
    def mask(self) -> int:
        return 1 << self.bit

    @property
    def doc(self) -> str:
        return f"flags bit {self.bit}"

    def holds(self, values: Values) -> bool:
        return bool(values["flags"] & self.mask)


EVERY_VERSION = range(1, FORMAT_VERSION + 1)


def since(version: int) -> range:
    """The format versions from ``version`` on."""
    return range(version, FORMAT_VERSION + 1)


class NoDefault(Enum):
    """The default of a field that another stands for where it is absent (a registered
    model's number for its name and hash)."""

    NO_DEFAULT = "no default"


NO_DEFAULT = NoDefault.NO_DEFAULT


@dataclass(frozen=True)
class Shown:
    """A field's line in ``neuralzip info``: ``label: text(header)``, the ``rank``-th line
    (the order the command has always printed them in); no line where ``text`` gives None."""

    rank: int
    label: str
    text: Callable[[Any], str | None]


@dataclass(frozen=True)
class Field:
    """A field of the header, as a row of FORMAT.md's header table.

    ``name``: the table's name for it, also what a truncation message says it was in;
    ``versions``: the format versions that have it, and ``when``, where given, what else it
    needs (a flag, alpha); ``attr``: the ``Header`` attribute it holds, and ``source``, what
    a writer writes where not that attribute (None for both: a constant, or a length, which
    the writer takes from the bytes it measures); ``default``: the attribute's value where
    the field is absent; ``check(values)``: raises FormatError for a value a reader refuses,
    as soon as it is read."""

    name: str
    encoding: Encoding
    versions: range = EVERY_VERSION
    when: Gate | None = None
    attr: str | None = None
    source: str | None = None
    default: Any = None
    check: Callable[[Values], None] | None = None
    shown: Shown | None = None

    @property
    def exists_in(self) -> range:
        """The format versions whose files may have it: its own and its gate's."""
        versions = self.when.versions if self.when is not None else EVERY_VERSION
        return range(max(self.versions.start, versions.start), min(self.versions.stop, versions.stop))

    def present(self, values: Values) -> bool:
        """Whether a header of these values (version, flags and mode, where the field
        depends on them) has the field."""
        if self.exists_in != EVERY_VERSION and values["version"] not in self.exists_in:
            return False
        return self.when is None or self.when.holds(values)
