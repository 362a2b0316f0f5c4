"""The ``.nz`` container: header fields <-> bytes. Layout in FORMAT.md.

Only (de)serialisation and range checks live here; what the fields mean for decoding is
the codec's business.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .adaptation_block import Adaptation
from .fields import FormatError, Reader, Truncated, varint
from .metadata import COMMENT, MAX_METADATA, REPEATED, TEXT, Metadata, MetadataError
from .units import LS_SIZES
from .versions import (
    FORMAT_VERSION,
    METADATA_KINDS_VERSION,
    REGISTERED_MODELS,
    REGISTERED_PRECISION,
    REGISTERED_VERSION,
    model_versions,
    registered_number,
)

MAGIC = b"NZ"
FLAG_IMAGE_LS = 0x01  # per-image LS coefficients follow the header
FLAG_METADATA = 0x02  # version 2: a metadata block follows the alpha block
FLAG_STORED = 0x04  # version 2: the payload is the raw colour pixels, not ANS words
FLAG_PACKED = 0x08  # version 3: the payload is an LZMA2 stream of the raw colour pixels
FLAG_ADAPTATION = 0x10  # version 3: the per-image adaptation block follows the LS coefficients
_FLAGS_2 = FLAG_IMAGE_LS | FLAG_METADATA | FLAG_STORED
_FLAGS_3 = _FLAGS_2 | FLAG_PACKED | FLAG_ADAPTATION
# version 3 also terminates ANS
KNOWN_FLAGS = {1: FLAG_IMAGE_LS, 2: _FLAGS_2, 3: _FLAGS_3, 4: _FLAGS_3, 5: _FLAGS_3, 6: _FLAGS_3}
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


MODES = {0: Mode("RGB", 3, False), 1: Mode("L", 1, False), 2: Mode("RGBA", 3, True), 3: Mode("LA", 1, True)}


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

    def pack(self) -> bytes:
        name = self.model_name.encode("ascii")
        flags = (
            (FLAG_IMAGE_LS if self.coefs is not None else 0)
            | (FLAG_METADATA if self.metadata else 0)
            | (FLAG_STORED if self.stored else 0)
            | (FLAG_PACKED if self.packed else 0)
            | (FLAG_ADAPTATION if self.adaptation is not None else 0)
        )
        if self.written_version not in KNOWN_FLAGS or flags & ~KNOWN_FLAGS[self.written_version]:
            raise ValueError(f"format version {self.version} cannot hold this header")
        if self.metadata and self.metadata.version > self.written_version:
            raise MetadataError(
                f"format version {self.written_version} cannot hold comments or PNG text chunks kept whole "
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
        if self.written_version >= 4:
            if self.model_number is None or self.precision != REGISTERED_PRECISION:
                raise ValueError("format versions 4 to 6 hold registered models at precision 24 only")
            if self.written_version not in model_versions(self.model_number):
                raise ValueError(
                    f"registered model {self.model_number} is written in format version "
                    f"{' or '.join(map(str, sorted(model_versions(self.model_number))))}"
                )
            model, precision = varint(self.model_number), b""
        else:
            model, precision = bytes([len(name)]) + name + self.model_sha, bytes([self.precision])
        parts = [
            MAGIC,
            bytes([self.written_version, flags, self.mode]),
            model,
            varint(self.width),
            varint(self.height),
            precision,
            varint(self.payload_length),
            struct.pack("<I", self.checksum),
        ]
        if self.coefs is not None:
            if len(self.coefs) != self.image_mode.ls_coefs:
                raise ValueError(f"mode {self.image_mode.name} carries {self.image_mode.ls_coefs} LS coefficients")
            parts.append(np.asarray(self.coefs, "<i2").tobytes())
        if self.adaptation is not None:
            parts.append(self.adaptation.pack())
        if self.alpha is not None:
            parts += [varint(len(self.alpha)), self.alpha]
        if self.metadata:
            block = pack_metadata(self.metadata)
            parts += [varint(len(block)), block]
        return b"".join(parts)

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
        r = Reader(data)
        if r.take(len(MAGIC), "magic bytes") != MAGIC:
            raise FormatError("not a neuralzip file (bad magic bytes)")
        version, flags, mode = r.take(3, "header")
        if version not in KNOWN_FLAGS:
            raise FormatError(
                f"unsupported format version {version} (this neuralzip reads versions 1 to {FORMAT_VERSION})"
            )
        if flags & ~KNOWN_FLAGS[version]:
            raise FormatError(f"unknown header flags 0x{flags:02x} for version {version}")
        if flags & (FLAG_STORED | FLAG_PACKED) and flags & (FLAG_IMAGE_LS | FLAG_ADAPTATION):
            raise FormatError("a stored or packed payload carries no LS coefficients or adaptation")
        if flags & FLAG_STORED and flags & FLAG_PACKED:
            raise FormatError("a payload is stored or packed, not both")
        if mode not in MODES:
            raise FormatError(f"unknown image mode {mode}")
        if version >= 4:
            number = r.varint("model number")
            if number not in REGISTERED_MODELS:
                raise FormatError(f"unknown model number {number} (a newer neuralzip may know it)")
            if version not in model_versions(number):
                raise FormatError(f"model {number} is not a model of format version {version}")
            name, sha = REGISTERED_MODELS[number]
        else:
            name_len = r.take(1, "header")[0]
            if not 0 < name_len <= MAX_NAME:
                raise FormatError("invalid model name length")
            name = r.take(name_len, "model name").decode("latin-1")
            if not _MODEL_NAME.fullmatch(name):
                raise FormatError("invalid model name")
            sha = r.take(4, "model hash")
        width, height = r.varint("width"), r.varint("height")
        if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
            raise FormatError(f"invalid image size {width}x{height}")
        if check_size is not None:
            check_size(width, height)
        precision = REGISTERED_PRECISION if version >= 4 else r.take(1, "header")[0]
        payload_length = r.varint("payload length")
        (checksum,) = struct.unpack("<I", r.take(4, "checksum"))
        coefs = alpha = None
        if flags & FLAG_IMAGE_LS:
            n_coefs = MODES[mode].ls_coefs
            coefs = np.frombuffer(r.take(2 * n_coefs, "LS coefficients"), "<i2").astype(np.int64)
        adaptation = Adaptation.unpack(r) if flags & FLAG_ADAPTATION else None
        if MODES[mode].alpha:
            alpha_length = r.varint("alpha block length")
            if alpha_length == 0:
                raise FormatError("empty alpha block")
            if alpha_length > 1 + compress_bound(width * height):
                raise FormatError(
                    f"alpha block of {alpha_length:,} bytes is longer than any of a {width}x{height} image"
                )
            alpha = r.take(alpha_length, "alpha block")
        metadata = None
        if flags & FLAG_METADATA:
            metadata_length = r.varint("metadata block length")
            if metadata_length > MAX_METADATA_BLOCK:
                raise FormatError(f"metadata block of {metadata_length:,} bytes (at most {MAX_METADATA_BLOCK:,})")
            metadata = unpack_metadata(r.take(metadata_length, "metadata block"), version)
        header = cls(
            name,
            sha,
            width,
            height,
            mode,
            precision,
            payload_length,
            checksum,
            coefs,
            alpha,
            metadata,
            bool(flags & FLAG_STORED),
            bool(flags & FLAG_PACKED),
            adaptation,
            version,
        )
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
