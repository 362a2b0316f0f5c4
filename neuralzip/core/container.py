"""The ``.nz`` container: header fields <-> bytes. Layout in FORMAT.md.

The header is one table, ``HEADER_FIELDS``, in the order of the file: ``Header.pack``
writes its fields, ``Header.unpack_prefix`` reads them, ``Header.info_lines`` shows them
(``neuralzip info``), and tests/test_format_doc.py checks FORMAT.md's header table against
it. Only (de)serialisation and range checks live here; what the fields mean for decoding
is the codec's business.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .adaptation_block import Adaptation
from .alpha import describe_alpha
from .fields import (
    EVERY_VERSION,
    NO_DEFAULT,
    Byte,
    Field,
    Flag,
    FormatError,
    Int16s,
    Raw,
    Reader,
    Shown,
    Sized,
    Truncated,
    Uint32,
    Values,
    Varint,
    since,
    varint,
)
from .metadata import COMMENT, MAX_METADATA, REPEATED, TEXT, Metadata, MetadataError
from .units import LS_SIZES
from .versions import (
    FORMAT_VERSION,
    METADATA_KINDS_VERSION,
    MODEL_NUMBER_VERSION,
    REGISTERED_MODELS,
    REGISTERED_PRECISION,
    REGISTERED_VERSION,
    model_versions,
    registered_number,
)

MAGIC = b"NZ"
FLAG_IMAGE_LS = Flag(0, EVERY_VERSION)  # per-image LS coefficients follow the header
FLAG_METADATA = Flag(1, since(2))  # a metadata block follows the alpha block
FLAG_STORED = Flag(2, since(2))  # the payload is the raw colour pixels, not ANS words
FLAG_PACKED = Flag(3, since(3))  # the payload is an LZMA2 stream of the raw colour pixels
FLAG_ADAPTATION = Flag(4, since(3))  # the per-image adaptation block follows the LS coefficients
FLAGS = (FLAG_IMAGE_LS, FLAG_METADATA, FLAG_STORED, FLAG_PACKED, FLAG_ADAPTATION)
# version 3 also terminates ANS
KNOWN_FLAGS = {version: sum(flag.mask for flag in FLAGS if version in flag.versions) for version in EVERY_VERSION}
MAX_METADATA_ENTRIES = 1 << 16  # entries a metadata block may hold


def compress_bound(length: int) -> int:
    """The most bytes zlib's ``compress`` writes for ``length`` bytes, at any level
    (zlib's ``compressBound``): the longest alpha block (plus its kind byte) or metadata
    block a reader takes."""
    return length + (length >> 12) + (length >> 14) + (length >> 25) + 13


MAX_METADATA_BLOCK = compress_bound(MAX_METADATA)  # bytes of a metadata block (16,782,349)
MAX_NAME = 32
MAX_SIDE = 1 << 24
_MODEL_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Mode:
    """An image mode a .nz file holds, named as in PIL.

    ``colour_channels``: channels coded by the model (1 for grey, 3 for RGB);
    ``alpha``: whether an alpha plane is stored in the alpha block.
    """

    name: str
    colour_channels: int
    alpha: bool

    @property
    def channels(self) -> int:
        """Channels of the decoded image."""
        return self.colour_channels + self.alpha

    @property
    def ls_coefs(self) -> int:
        """Number of per-image LS coefficients a file of this mode carries: the coded channels'."""
        return sum(LS_SIZES[: self.colour_channels])

    def describe(self) -> str:
        """E.g. ``RGBA (3 colour channels coded, alpha block)``."""
        plural = "s" * (self.colour_channels > 1)
        return f"{self.name} ({self.colour_channels} colour channel{plural} coded{', alpha block' * self.alpha})"


MODES = {0: Mode("RGB", 3, False), 1: Mode("L", 1, False), 2: Mode("RGBA", 3, True), 3: Mode("LA", 1, True)}
_PAYLOAD_KINDS = {
    (False, False): "",
    (True, False): " (pixels stored raw)",  # by (stored, packed)
    (False, True): " (pixels packed with LZMA2)",
}


class _AlphaModes:
    """The gate of the alpha block's fields: the modes with alpha, in every version."""

    versions = EVERY_VERSION

    @property
    def doc(self) -> str:
        return ", ".join(mode.name for mode in MODES.values() if mode.alpha)

    def holds(self, values: Values) -> bool:
        return MODES[values["mode"]].alpha


class _ModelName(Sized):
    """The model's name: written in ASCII, read as Latin-1 (``_valid_name`` then refuses
    anything but a name)."""

    def to_bytes(self, value: str) -> bytes:
        return value.encode("ascii")

    def from_bytes(self, data: bytes, values: Values) -> str:
        return data.decode("latin-1")


class _MetadataBlock(Sized):
    """The metadata block (``pack_metadata``), read as its file's format version holds it."""

    def to_bytes(self, value: Metadata) -> bytes:
        return pack_metadata(value)

    def from_bytes(self, data: bytes, values: Values) -> Metadata:
        return unpack_metadata(data, values["version"])


class _AdaptationBlock:
    """The adaptation block (``adaptation_block.Adaptation``), which says its own length."""

    size = "…"

    def write(self, value: Adaptation) -> bytes:
        return value.pack()

    def read(self, r: Reader, what: str, values: Values) -> Adaptation:
        return Adaptation.unpack(r)


class _Magic:
    """The magic bytes ``NZ``, which ``_is_neuralzip`` checks."""

    size = str(len(MAGIC))

    def write(self, value: None) -> bytes:
        return MAGIC

    def read(self, r: Reader, what: str, values: Values) -> bytes:
        return r.take(len(MAGIC), what)


# What a reader refuses, checked as soon as the field is read (``Field.check``)


def _is_neuralzip(values: Values) -> None:
    if values["magic bytes"] != MAGIC:
        raise FormatError("not a neuralzip file (bad magic bytes)")


def _known_version(values: Values) -> None:
    if values["version"] not in KNOWN_FLAGS:
        raise FormatError(
            f"unsupported format version {values['version']} (this neuralzip reads versions 1 to {FORMAT_VERSION})"
        )


def _known_flags(values: Values) -> None:
    version, flags = values["version"], values["flags"]
    if flags & ~KNOWN_FLAGS[version]:
        raise FormatError(f"unknown header flags 0x{flags:02x} for version {version}")
    if flags & (FLAG_STORED.mask | FLAG_PACKED.mask) and flags & (FLAG_IMAGE_LS.mask | FLAG_ADAPTATION.mask):
        raise FormatError("a stored or packed payload carries no LS coefficients or adaptation")
    if flags & FLAG_STORED.mask and flags & FLAG_PACKED.mask:
        raise FormatError("a payload is stored or packed, not both")


def _known_mode(values: Values) -> None:
    if values["mode"] not in MODES:
        raise FormatError(f"unknown image mode {values['mode']}")


def _registered(values: Values) -> None:
    number, version = values["model number"], values["version"]
    if number not in REGISTERED_MODELS:
        raise FormatError(f"unknown model number {number} (a newer neuralzip may know it)")
    if version not in model_versions(number):
        raise FormatError(f"model {number} is not a model of format version {version}")


def _valid_name_length(values: Values) -> None:
    if not 0 < values["name length"] <= MAX_NAME:
        raise FormatError("invalid model name length")


def _valid_name(values: Values) -> None:
    if not _MODEL_NAME.fullmatch(values["model name"]):
        raise FormatError("invalid model name")


def _valid_size(values: Values) -> None:
    width, height = values["width"], values["height"]
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise FormatError(f"invalid image size {width}x{height}")


def _valid_alpha_length(values: Values) -> None:
    length, width, height = values["alpha block length"], values["width"], values["height"]
    if length == 0:
        raise FormatError("empty alpha block")
    if length > 1 + compress_bound(width * height):
        raise FormatError(f"alpha block of {length:,} bytes is longer than any of a {width}x{height} image")


def _valid_metadata_length(values: Values) -> None:
    length = values["metadata block length"]
    if length > MAX_METADATA_BLOCK:
        raise FormatError(f"metadata block of {length:,} bytes (at most {MAX_METADATA_BLOCK:,})")


def _model_text(header: Header) -> str:
    return f"{header.model_name} (weights {header.model_sha.hex()})"


def _registered_model_text(header: Header) -> str:
    return f"{header.model_name} (weights {header.model_sha.hex()}, registered model {header.model_number})"


_BY_NAME = range(1, MODEL_NUMBER_VERSION)  # the versions that name a model by its name and hash
_ALPHA = _AlphaModes()
# The header, field by field in the order of the file: FORMAT.md's header table, row by row
HEADER_FIELDS: tuple[Field, ...] = (
    Field("magic bytes", _Magic(), check=_is_neuralzip),
    Field(
        "version",
        Byte(),
        attr="version",
        source="written_version",
        check=_known_version,
        shown=Shown(1, "format version", lambda h: str(h.written_version)),
    ),
    Field("flags", Byte(), source="flags", check=_known_flags),
    Field("mode", Byte(), attr="mode", check=_known_mode, shown=Shown(2, "mode", lambda h: h.image_mode.describe())),
    Field(
        "model number",
        Varint(),
        since(MODEL_NUMBER_VERSION),
        source="model_number",
        default=NO_DEFAULT,
        check=_registered,
        shown=Shown(0, "model", _registered_model_text),
    ),
    Field("name length", Byte(), _BY_NAME, check=_valid_name_length),
    Field(
        "model name",
        _ModelName("name length", "n"),
        _BY_NAME,
        attr="model_name",
        default=NO_DEFAULT,
        check=_valid_name,
        shown=Shown(0, "model", _model_text),
    ),
    Field("model hash", Raw(4), _BY_NAME, attr="model_sha", default=NO_DEFAULT),
    Field("width", Varint(), attr="width", shown=Shown(3, "size", lambda h: f"{h.width}x{h.height}")),
    Field("height", Varint(), attr="height", check=_valid_size),
    Field(
        "precision",
        Byte(),
        _BY_NAME,
        attr="precision",
        default=REGISTERED_PRECISION,
        shown=Shown(4, "coder precision", lambda h: f"{h.precision} bits"),
    ),
    Field(
        "payload length",
        Varint(),
        attr="payload_length",
        shown=Shown(9, "payload", lambda h: f"{h.payload_length:,} bytes{_PAYLOAD_KINDS[h.stored, h.packed]}"),
    ),
    Field("checksum", Uint32(), attr="checksum", shown=Shown(10, "checksum", lambda h: f"CRC-32 {h.checksum:08x}")),
    Field(
        "LS coefficients",
        Int16s(lambda values: MODES[values["mode"]].ls_coefs),
        when=FLAG_IMAGE_LS,
        attr="coefs",
        shown=Shown(
            5,
            "LS coefficients",
            lambda h: "the model's defaults" if h.coefs is None else f"per-image, {len(h.coefs)} coefficients",
        ),
    ),
    Field(
        "adaptation",
        _AdaptationBlock(),
        when=FLAG_ADAPTATION,
        attr="adaptation",
        shown=Shown(6, "adaptation", lambda h: h.adaptation.describe() if h.adaptation else "none"),
    ),
    Field("alpha block length", Varint(), when=_ALPHA, check=_valid_alpha_length),
    Field(
        "alpha block",
        Sized("alpha block length", "a"),
        when=_ALPHA,
        attr="alpha",
        shown=Shown(7, "alpha", lambda h: None if h.alpha is None else describe_alpha(h.alpha)),
    ),
    Field("metadata block length", Varint(), when=FLAG_METADATA, check=_valid_metadata_length),
    Field(
        "metadata block",
        _MetadataBlock("metadata block length", "m"),
        when=FLAG_METADATA,
        attr="metadata",
        shown=Shown(8, "metadata", lambda h: h.metadata.describe() if h.metadata else "none"),
    ),
)
# each length field -> the field whose bytes it counts (a writer writes it from them)
_LENGTH_OF = {f.encoding.length: f.name for f in HEADER_FIELDS if isinstance(f.encoding, Sized)}


@dataclass
class Header:
    """Header fields of a .nz file.

    ``coefs``: int64 (MODES[mode].ls_coefs,) per-image LS coefficients, or None.
    ``alpha``: the alpha block's bytes (see ``neuralzip.core.alpha``), present exactly when the
    mode has alpha.
    """

    model_name: str
    model_sha: bytes  # first 4 bytes of the weights file's sha256
    width: int
    height: int
    mode: int  # key of MODES
    precision: int  # entropy coder precision in bits
    payload_length: int  # bytes of ANS payload after the header
    checksum: int  # CRC-32 of the decoded pixels (H, W, channels uint8, row-major)
    coefs: np.ndarray | None = None
    alpha: bytes | None = None
    metadata: Metadata | None = None  # version 2
    stored: bool = False  # version 2: payload = raw colour pixels (H, W, colour channels)
    packed: bool = False  # version 3: payload = LZMA2 stream of those raw colour pixels
    adaptation: Adaptation | None = None  # version 3
    version: int | None = None  # as read; None for a new header (see ``written_version``)

    @property
    def image_mode(self) -> Mode:
        return MODES[self.mode]

    @property
    def raw_length(self) -> int:
        """Bytes of the raw colour pixels (H, W, colour channels uint8)."""
        return self.width * self.height * self.image_mode.colour_channels

    @property
    def model_number(self) -> int | None:
        """The model's number in ``REGISTERED_MODELS``, or None for an unregistered one."""
        return registered_number(self.model_name, self.model_sha)

    @property
    def written_version(self) -> int:
        """The version ``pack`` writes: the one read, or for a new header the shortest that
        holds it: for a registered model at the registered precision, its version
        (``REGISTERED_VERSION``), or 6 where the metadata needs it (``Metadata.version``);
        else 2 for a stored payload, 3 for an ANS payload (terminated since 3) or a packed
        one (neither holds metadata of version 6: ``pack`` refuses it)."""
        if self.version is not None:
            return self.version
        if self.model_number is not None and self.precision == REGISTERED_PRECISION:
            return max(REGISTERED_VERSION[self.model_number], self.metadata.version if self.metadata else 0)
        return 2 if self.stored else 3

    @property
    def terminated(self) -> bool:
        """Whether the payload is an ANS stream that ends with the coder's terminator."""
        return not (self.stored or self.packed) and self.written_version >= 3

    @property
    def flags(self) -> int:
        """The flags byte: which optional fields follow, and what the payload is."""
        return (
            (FLAG_IMAGE_LS.mask if self.coefs is not None else 0)
            | (FLAG_METADATA.mask if self.metadata else 0)
            | (FLAG_STORED.mask if self.stored else 0)
            | (FLAG_PACKED.mask if self.packed else 0)
            | (FLAG_ADAPTATION.mask if self.adaptation is not None else 0)
        )

    def _check_writable(self) -> None:
        """Raise ValueError (MetadataError for the metadata) for a header that no version
        holds, or that a reader would refuse."""
        version, flags = self.written_version, self.flags
        if version not in KNOWN_FLAGS or flags & ~KNOWN_FLAGS[version]:
            raise ValueError(f"format version {self.version} cannot hold this header")
        if self.metadata and self.metadata.version > version:
            raise MetadataError(
                f"format version {version} cannot hold comments or PNG text chunks kept whole "
                "(version 6 does, with a registered model only; --strip leaves the metadata out)"
            )
        if (self.alpha is not None) != self.image_mode.alpha:
            raise ValueError(
                f"mode {self.image_mode.name} {'needs' if self.image_mode.alpha else 'has no'} alpha block"
            )
        if (self.stored or self.packed) and self.coefs is not None:
            raise ValueError("a stored or packed payload carries no LS coefficients")
        if self.stored and self.packed:
            raise ValueError("a payload is stored or packed, not both")
        if (self.stored or self.packed) and self.adaptation is not None:
            raise ValueError("a stored or packed payload carries no adaptation")
        if version >= MODEL_NUMBER_VERSION:
            if self.model_number is None or self.precision != REGISTERED_PRECISION:
                raise ValueError("format versions 4 to 6 hold registered models at precision 24 only")
            if version not in model_versions(self.model_number):
                raise ValueError(
                    f"registered model {self.model_number} is written in format version "
                    f"{' or '.join(map(str, sorted(model_versions(self.model_number))))}"
                )
        if self.coefs is not None and len(self.coefs) != self.image_mode.ls_coefs:
            raise ValueError(f"mode {self.image_mode.name} carries {self.image_mode.ls_coefs} LS coefficients")

    def pack(self) -> bytes:
        """The header's bytes: each field of ``HEADER_FIELDS`` that its version, flags and
        mode have, in order, a length written from the bytes it counts."""
        self._check_writable()
        fields = [f for f in HEADER_FIELDS if f.present(self._layout)]
        written = {f.name: f.encoding.write(self._value(f)) for f in fields if f.name not in _LENGTH_OF}
        lengths = {f.name: f.encoding.write(len(written[_LENGTH_OF[f.name]])) for f in fields if f.name in _LENGTH_OF}
        return b"".join((written | lengths)[f.name] for f in fields)

    @property
    def _layout(self) -> Values:
        """What decides which fields the header has."""
        return {"version": self.written_version, "flags": self.flags, "mode": self.mode}

    def _value(self, field: Field) -> Any:
        """What ``pack`` writes in ``field`` (None for the magic bytes)."""
        name = field.source or field.attr
        return None if name is None else getattr(self, name)

    def info_lines(self) -> list[str]:
        """``label: value`` lines of the fields ``neuralzip info`` shows (``Field.shown``), in
        their order: those the header's version has, and the others' defaults (the coder
        precision of a version-4 file, an adaptation of a version-1 one: none)."""
        shown = [
            f.shown
            for f in HEADER_FIELDS
            if f.shown is not None and (self.written_version in f.exists_in or f.default is not NO_DEFAULT)
        ]
        lines = [(s.label, s.text(self)) for s in sorted(shown, key=lambda s: s.rank)]
        return [f"{label}: {text}" for label, text in lines if text is not None]

    @classmethod
    def unpack(cls, data: bytes) -> tuple[Header, int]:
        """(header, offset of the payload). Raises FormatError on any malformed field."""
        header, offset = cls.unpack_prefix(data)
        header.check_payload(len(data) - offset)
        return header, offset

    def check_payload(self, length: int) -> None:
        """Raise FormatError unless ``length`` bytes follow the header, as it says."""
        if length != self.payload_length:
            what = "truncated" if length < self.payload_length else "longer than its header says"
            raise FormatError(f"file is {what} (payload {length} bytes, header says {self.payload_length})")

    @classmethod
    def unpack_prefix(cls, data: bytes, check_size: Callable[[int, int], None] | None = None) -> tuple[Header, int]:
        """(header, offset of the payload) of the first bytes of a file, the payload not
        checked: a stream's header can be read before the rest. Raises Truncated where
        ``data`` ends inside the header, FormatError on a malformed field (the magic bytes
        are checked first, so two bytes tell a file that is not .nz at all).
        ``check_size(width, height)``, if given, is called as soon as the size is read,
        before the blocks whose length grows with it (alpha): it raises to refuse it."""
        r, values = Reader(data), Values()
        for field in HEADER_FIELDS:
            if field.present(values):
                values[field.name] = field.encoding.read(r, field.name, values)
                if field.check is not None:
                    field.check(values)
                if field.name == "height" and check_size is not None:  # before the alpha block
                    check_size(values["width"], values["height"])
        attrs = {f.attr: values.get(f.name, f.default) for f in HEADER_FIELDS if f.attr is not None}
        if "model number" in values:
            attrs["model_name"], attrs["model_sha"] = REGISTERED_MODELS[values["model number"]]
        header = cls(**attrs, stored=FLAG_STORED.holds(values), packed=FLAG_PACKED.holds(values))
        width, height, payload_length = header.width, header.height, header.payload_length
        if header.stored and payload_length != header.raw_length:
            raise FormatError(f"stored payload of {payload_length} bytes does not hold a {width}x{height} image")
        if header.packed and payload_length >= header.raw_length:  # the writer packs only what gets smaller
            raise FormatError(f"packed payload of {payload_length} bytes is not smaller than a {width}x{height} image")
        return header, r.pos


def pack_metadata(metadata: Metadata) -> bytes:
    """The metadata block: a zlib stream of entries ``kind | varint length | bytes``.
    Raises MetadataError for metadata a reader would refuse (over 16 MiB or 65,536
    entries): the writer checks what the reader checks."""
    entries = metadata.entries()
    raw = b"".join(bytes([kind]) + varint(len(data)) + data for kind, data in entries)
    if len(raw) > MAX_METADATA or len(entries) > MAX_METADATA_ENTRIES:
        raise MetadataError(
            f"metadata of {len(raw):,} bytes in {len(entries):,} entries: a file holds at most "
            f"{MAX_METADATA:,} bytes and {MAX_METADATA_ENTRIES:,} entries (--strip leaves it out)"
        )
    return zlib.compress(raw, 9)


def unpack_metadata(block: bytes, version: int = FORMAT_VERSION) -> Metadata:
    """Inverse of ``pack_metadata``, for a file of format ``version``; raises FormatError
    on a malformed block, or one with kinds that version does not hold (5 and 6 before 6)."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(block, MAX_METADATA)
    except zlib.error as exc:
        raise FormatError(f"invalid metadata block ({exc})") from None
    if inflater.unconsumed_tail or not inflater.eof or inflater.unused_data:
        raise FormatError("invalid metadata block (not one complete zlib stream, or over 16 MiB)")
    r, entries = Reader(raw), list[tuple[int, bytes]]()
    try:
        while r.pos < len(raw):
            kind = r.take(1, "metadata block")[0]
            length = r.varint("metadata entry length")
            if length == 0:
                raise FormatError("empty metadata entry")
            if kind > (COMMENT if version >= METADATA_KINDS_VERSION else TEXT):
                raise FormatError(f"invalid metadata block (kind {kind} in a file of format version {version})")
            if entries and (kind < entries[-1][0] or (kind == entries[-1][0] and kind not in REPEATED)):
                raise FormatError("invalid metadata block (entries out of order, or a kind twice)")
            if len(entries) == MAX_METADATA_ENTRIES:
                raise FormatError(f"invalid metadata block (over {MAX_METADATA_ENTRIES:,} entries)")
            entries.append((kind, r.take(length, "metadata entry")))
        return Metadata.from_entries(entries)
    except (Truncated, MetadataError) as exc:  # the block is whole: a short entry is an error
        raise FormatError(f"invalid metadata block ({exc})") from None
