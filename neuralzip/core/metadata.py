"""Image metadata kept beside the pixels: ICC profile, EXIF, XMP, text entries and comments.

neuralzip stores them, byte for byte, in an optional block of the .nz container (format
version 2: ``container.pack_metadata``, FORMAT.md) and writes them back into the
decompressed PNG. EXIF is kept as it is (an orientation tag is *not* applied to the
pixels). Entry kinds: 1 ICC profile, 2 EXIF (Pillow's ``info["exif"]``, starting
``Exif\\0\\0``), 3 XMP packet, 4 text entry (UTF-8 key, NUL, UTF-8 value), and since format
version 6: 5 PNG text chunk (``PngText``: a tEXt, zTXt or iTXt chunk kept whole), 6 comment
(a JPEG COM segment's bytes); in that order, entries of kinds 4 to 6 in file order.
"""

from __future__ import annotations

import re
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:  # the core imports no Pillow; only these conversions use it
    import os

    from PIL import Image

ICC, EXIF, XMP, TEXT, PNG_TEXT, COMMENT = 1, 2, 3, 4, 5, 6
REPEATED = {TEXT, PNG_TEXT, COMMENT}  # the kinds a block may hold more than once
TEXT_CHUNK, ZTXT_CHUNK, ITXT_CHUNK, ITXT_COMPRESSED = 0, 1, 2, 3  # a PNG text chunk's type byte
MAX_METADATA = 1 << 24  # bytes a metadata block may inflate to
MAX_KEYWORD = 79  # bytes of a PNG text chunk's keyword (PNG's own limit)
XMP_PNG_KEY = "XML:com.adobe.xmp"  # where PNG keeps XMP: an iTXt chunk of this keyword
XMP_TIFF_TAG = 700  # where TIFF keeps it
TIFF_HOLDS = {"icc_profile", "exif", "xmp"}  # the ``parts`` TIFF holds (``tiff_options``)
COMMENT_PNG_KEY = b"Comment"  # the keyword of the tEXt chunk a comment becomes in PNG
DESCRIBED_KEYS = 20  # text keys ``describe`` names; a file may hold 65,536 of them
EXIF_PREFIX = b"Exif\0\0"  # how Pillow's info["exif"] starts for JPEG and PNG (not for WebP)
_PNG_KEYWORD = re.compile(r"[\x20-\x7e\xa1-\xff]{1,79}")  # PNG: 1-79 printable Latin-1 characters ...
_NOT_IN_PNG_KEYWORD = re.compile(r"[^\x20-\x7e\xa1-\xff]+")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# a JPEG's segments whose content a .nz file keeps (marker, how the data starts): EXIF, XMP,
# the ICC profile, comments; and those that only describe the JPEG's own coding (JFIF, Adobe)
_JPEG_KEPT = (
    ("APP0", b"JFIF\0"),
    ("APP0", b"JFXX\0"),
    ("APP1", EXIF_PREFIX),
    ("APP1", b"http://ns.adobe.com/xap/1.0/\0"),
    ("APP2", b"ICC_PROFILE\0"),
    ("APP14", b"Adobe"),
    ("COM", b""),
)
_PNG_KEPT = {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"iCCP", b"eXIf"}  # the pixels, ICC profile and EXIF (and text)
_CHUNK_NAMES = {TEXT_CHUNK: b"tEXt", ZTXT_CHUNK: b"zTXt", ITXT_CHUNK: b"iTXt", ITXT_COMPRESSED: b"iTXt"}


def is_png_keyword(key: str) -> bool:
    """Whether PNG can hold ``key`` as the keyword of a tEXt or iTXt chunk: 1 to 79
    printable Latin-1 characters, no leading, trailing or consecutive spaces."""
    return bool(_PNG_KEYWORD.fullmatch(key)) and key == key.strip(" ") and "  " not in key


def png_keyword(key: str) -> str:
    """A PNG keyword for ``key`` (``key`` itself where it is one): each run of characters
    PNG's keywords cannot hold becomes ``_``, spaces are squeezed and trimmed, and the
    result cut to 79 characters (``_`` if nothing is left)."""
    if is_png_keyword(key):
        return key
    keyword = re.sub(" +", " ", _NOT_IN_PNG_KEYWORD.sub("_", key)).strip(" ")[:79].rstrip(" ")
    return keyword or "_"


class MetadataError(ValueError):
    """Metadata entries that cannot be read, or that no .nz file holds."""


class MetadataWarning(UserWarning):
    """Metadata left out: a damaged chunk of a source, or what an output format cannot hold."""


@dataclass(frozen=True)
class PngText:
    """A PNG text chunk as its file held it, bytes unchanged: ``chunk`` its type
    (``TEXT_CHUNK``, ``ZTXT_CHUNK``, ``ITXT_CHUNK`` or ``ITXT_COMPRESSED``), ``keyword`` 1 to
    79 bytes, ``text`` uncompressed (Latin-1 in tEXt and zTXt, UTF-8 in iTXt), and for iTXt
    the ``language`` tag and ``translated_keyword``; none but ``text`` holds a NUL."""

    chunk: int
    keyword: bytes
    text: bytes
    language: bytes = b""
    translated_keyword: bytes = b""

    @property
    def international(self) -> bool:
        return self.chunk in (ITXT_CHUNK, ITXT_COMPRESSED)

    @property
    def key(self) -> str:
        return self.keyword.decode("latin-1")

    @property
    def value(self) -> str:
        return self.text.decode("utf-8" if self.international else "latin-1", "replace")

    @classmethod
    def of_text(cls, key: str, value: str) -> PngText:
        """The chunk a text entry (kind 4) becomes in PNG: tEXt for a PNG keyword and an
        ASCII value, iTXt for any other value, and for a key that is no PNG keyword an iTXt
        of ``png_keyword(key)`` whose translated keyword is the key."""
        if not is_png_keyword(key):
            return cls(ITXT_CHUNK, png_keyword(key).encode("latin-1"), value.encode(), b"", key.encode())
        return cls(TEXT_CHUNK if value.isascii() else ITXT_CHUNK, key.encode("latin-1"), value.encode())

    def fields(self) -> list[bytes]:
        """The NUL-terminated fields before the text: the keyword, and for iTXt the
        language tag and the translated keyword."""
        return [self.keyword, self.language, self.translated_keyword] if self.international else [self.keyword]

    def check(self) -> None:
        """Raise MetadataError unless the fields are what a PNG text chunk holds."""
        if self.chunk not in _CHUNK_NAMES or not 0 < len(self.keyword) <= MAX_KEYWORD:
            raise MetadataError(
                f"PNG text chunk of type {self.chunk} (0 to 3) with a keyword of {len(self.keyword)} bytes (1 to 79)"
            )
        if any(b"\0" in f for f in self.fields()) or (
            not self.international and self.language + self.translated_keyword
        ):
            raise MetadataError(
                f"PNG text chunk {self.keyword!r}: a NUL in a field before its text, or a tEXt or zTXt with iTXt fields"
            )

    def pack(self) -> bytes:
        """The entry (kind 5): type byte, the NUL-terminated fields, the text."""
        self.check()
        return bytes([self.chunk]) + b"".join(f + b"\0" for f in self.fields()) + self.text

    @classmethod
    def unpack(cls, data: bytes) -> PngText:
        """Inverse of ``pack``; raises MetadataError on a malformed entry."""
        international = data[0] in (ITXT_CHUNK, ITXT_COMPRESSED)
        fields = data[1:].split(b"\0", 3 if international else 1)
        if len(fields) < (4 if international else 2):
            raise MetadataError("PNG text chunk without its fields")
        text = cls(data[0], fields[0], fields[-1], *fields[1:-1])
        text.check()
        return text

    def png_chunk(self) -> tuple[bytes, bytes]:
        """(type, data) of the chunk in PNG; compressed text as zlib writes it at its
        default level, as Pillow does."""
        name, compressed = _CHUNK_NAMES[self.chunk], self.chunk in (ZTXT_CHUNK, ITXT_COMPRESSED)
        text = zlib.compress(self.text) if compressed else self.text
        flags = b"\0" if self.chunk == ZTXT_CHUNK else bytes([compressed, 0]) if self.international else b""
        return name, self.keyword + b"\0" + flags + b"".join(f + b"\0" for f in self.fields()[1:]) + text

    @classmethod
    def from_png(cls, name: bytes, data: bytes) -> PngText:
        """Inverse of ``png_chunk``; raises ValueError for a damaged chunk (fields that do
        not parse, a keyword of more than 79 bytes, a compression method other than 0, a
        broken zlib stream). Compressed text is inflated to at most MAX_METADATA + 1 bytes."""
        match = _PNG_TEXT_SYNTAX[name].fullmatch(data)
        if match is None:
            raise ValueError("its fields do not parse")
        if name == b"tEXt":
            return cls(TEXT_CHUNK, match[1], match[2])
        if name == b"zTXt":
            return cls(ZTXT_CHUNK, match[1], _inflate(match[2]))
        if match[2] == b"\0":
            return cls(ITXT_CHUNK, match[1], match[5], match[3], match[4])
        return cls(ITXT_COMPRESSED, match[1], _inflate(match[5]), match[3], match[4])


_PNG_TEXT_SYNTAX = {  # keyword, NUL, [compression flag, method 0, language, NUL, translated keyword, NUL,] text
    b"tEXt": re.compile(rb"([^\0]{1,79})\0(.*)", re.S),
    b"zTXt": re.compile(rb"([^\0]{1,79})\0\0(.*)", re.S),
    b"iTXt": re.compile(rb"([^\0]{1,79})\0([\0\1])\0([^\0]*)\0([^\0]*)\0(.*)", re.S),
}


def _inflate(data: bytes) -> bytes:
    """A whole zlib stream inflated, up to MAX_METADATA + 1 bytes of it (more than any
    .nz file holds); ValueError for a broken one."""
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(data, MAX_METADATA + 1)
    except zlib.error as exc:
        raise ValueError(str(exc)) from None
    if len(text) <= MAX_METADATA and not (inflater.eof and not inflater.unused_data):
        raise ValueError("its zlib stream is cut short, or bytes follow it")
    return text


def _warn_not_kept(parts: dict[str, None], source: str, unit: str) -> None:
    """One MetadataWarning naming the ``parts`` (``unit``: chunks, segments) of a ``source``
    file (PNG, JPEG) that a .nz file keeps nothing of, where there are any."""
    if parts:
        warnings.warn(MetadataWarning(f"the {source}'s {', '.join(parts)} {unit} are not kept, left out"), stacklevel=3)


def _warn_jpeg_left_out(applist: list[tuple[str, bytes]]) -> None:
    """One MetadataWarning naming a JPEG's segments (Pillow's ``applist``) that a .nz file
    keeps nothing of (``_JPEG_KEPT``), e.g. APP13 Photoshop's IPTC, or none."""
    left_out = dict[str, None]()
    for marker, data in applist:
        if not any(marker == kept and data.startswith(start) for kept, start in _JPEG_KEPT):
            name = data.split(b"\0", 1)[0][:40].decode("latin-1")
            left_out[f"{marker} ({name})" if name.isprintable() and name else marker] = None
    _warn_not_kept(left_out, "JPEG", "segments")


def read_png_text(fp: IO[bytes]) -> list[PngText]:
    """The text chunks of the PNG file ``fp`` (read from where it is), in file order. A
    damaged one (see ``PngText.from_png``) is left out with a MetadataWarning naming it,
    and so are the chunks a .nz file keeps nothing of (``_PNG_KEPT``: gAMA, pHYs, tIME,
    ...), in one. Raises MetadataError where the text chunks hold more than MAX_METADATA
    bytes, read or inflated: no .nz file holds that."""
    chunks, total, left_out = list[PngText](), 0, dict[str, None]()
    if fp.read(len(_PNG_SIGNATURE)) != _PNG_SIGNATURE:
        return chunks
    while total <= MAX_METADATA and len(head := fp.read(8)) == 8 and head[4:] != b"IEND":
        length, name = int.from_bytes(head[:4], "big"), head[4:]
        if name not in _PNG_TEXT_SYNTAX:
            if name not in _PNG_KEPT:
                left_out[name.decode("latin-1")] = None
            fp.seek(length + 4, 1)
            continue
        total += length
        if total > MAX_METADATA:
            break
        data = fp.read(length)
        fp.seek(4, 1)
        try:
            chunks.append(PngText.from_png(name, data))
        except ValueError as exc:
            warnings.warn(MetadataWarning(f"a damaged {name.decode()} chunk ({exc}), left out"), stacklevel=2)
            continue
        total += max(0, len(chunks[-1].text) - length)
    _warn_not_kept(left_out, "PNG", "chunks")
    if total > MAX_METADATA:
        raise MetadataError(
            f"PNG text chunks of over {MAX_METADATA:,} bytes: a file holds at most that (--strip leaves them out)"
        )
    return chunks


@dataclass
class Metadata:
    """What a file says about its pixels. Empty fields are None, {} or [].

    ``text``: text entries (kind 4), each key once, written into PNG as
    ``PngText.of_text`` says; ``png_text``: PNG text chunks kept whole (kind 5: a key
    more than once, zTXt, an iTXt's language tag or translated keyword or compression);
    ``comments``: JPEG COM segments and the like (kind 6). Kinds 5 and 6 need format
    version 6 (``version``)."""

    icc_profile: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    text: dict[str, str] = field(default_factory=dict)
    png_text: list[PngText] = field(default_factory=list)
    comments: list[bytes] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.icc_profile or self.exif or self.xmp or self.text or self.png_text or self.comments)

    @property
    def version(self) -> int:
        """The oldest format version that holds these entries: 6 with kinds 5 or 6, else 2."""
        return 6 if self.png_text or self.comments else 2

    @classmethod
    def of(cls, image: Image.Image, source: str | os.PathLike | IO[bytes] | None = None) -> Metadata:
        """The metadata Pillow read with ``image`` (any format it reads). A PNG's text
        chunks are read again from ``source``, the file the image was read from (by
        default its ``filename``; ``_text_entries`` says what becomes of them); where no
        source can be read again, the text entries are those Pillow read. Comments: a
        JPEG's COM segments, in order, or another format's ``info["comment"]`` bytes."""
        info = image.info
        xmp, exif = info.get("xmp"), info.get("exif") or None
        xmp = (xmp.encode() if isinstance(xmp, str) else xmp) or None
        text = {k: v for k, v in getattr(image, "text", {}).items() if k != XMP_PNG_KEY and isinstance(v, str)}
        png_text: list[PngText] = []
        if image.format == "PNG":
            with _reread(source or getattr(image, "filename", None) or None) as fp:
                chunks = None if fp is None else read_png_text(fp)
            if chunks is not None:
                text, png_text, xmp = _text_entries(chunks, xmp)
        if exif is not None and not exif.startswith(EXIF_PREFIX):  # WebP's: as JPEG and PNG give it
            exif = EXIF_PREFIX + exif
        applist = getattr(image, "applist", [])
        _warn_jpeg_left_out(applist)
        comments = [data for marker, data in applist if marker == "COM"]
        if not comments and isinstance(info.get("comment"), bytes):
            comments = [info["comment"]]
        return cls(
            icc_profile=info.get("icc_profile") or None,
            exif=exif,
            xmp=xmp,
            text=text,
            png_text=png_text,
            comments=[c for c in comments if c],
        )

    def entries(self) -> list[tuple[int, bytes]]:
        """(kind, bytes) of every non-empty field, in block order. Raises MetadataError for
        a text key with a NUL in it, which a text entry cannot hold (the NUL ends its key),
        and for a PNG text chunk PNG cannot hold (``PngText.check``)."""
        for key in self.text:
            if "\0" in key:
                raise MetadataError(f"text key {key!r} holds a NUL character, which a .nz file cannot hold")
        entries = [(ICC, self.icc_profile), (EXIF, self.exif), (XMP, self.xmp)]
        entries += [(TEXT, k.encode() + b"\0" + v.encode()) for k, v in self.text.items()]
        entries += [(PNG_TEXT, chunk.pack()) for chunk in self.png_text]
        entries += [(COMMENT, comment) for comment in self.comments]
        return [(kind, data) for kind, data in entries if data]

    @classmethod
    def from_entries(cls, entries: list[tuple[int, bytes]]) -> Metadata:
        """Inverse of ``entries``; raises MetadataError on an unknown kind or a malformed
        text entry or PNG text chunk."""
        meta = cls()
        for kind, data in entries:
            if kind == ICC:
                meta.icc_profile = data
            elif kind == EXIF:
                meta.exif = data
            elif kind == XMP:
                meta.xmp = data
            elif kind == TEXT and b"\0" in data:
                key, value = data.split(b"\0", 1)
                meta.text[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
            elif kind == PNG_TEXT:
                meta.png_text.append(PngText.unpack(data))
            elif kind == COMMENT:
                meta.comments.append(data)
            else:
                raise MetadataError(f"unknown or malformed metadata entry (kind {kind})")
        return meta

    def pil_info(self) -> dict:
        """The entries as Pillow puts them in ``Image.info`` (of a key more than once, the
        last; of comments, the last, as Pillow's JPEG reader gives it)."""
        fields = (("icc_profile", self.icc_profile), ("exif", self.exif), ("xmp", self.xmp))
        comment = {"comment": self.comments[-1]} if self.comments else {}
        return {**{k: v for k, v in fields if v}, **self.text, **{c.key: c.value for c in self.png_text}, **comment}

    def png_chunks(self) -> list[PngText]:
        """The text chunks this metadata writes into PNG, in order: the text entries
        (``PngText.of_text``), the PNG text chunks, then each comment as a tEXt chunk of
        keyword ``Comment`` whose text is the comment's bytes."""
        return [
            *(PngText.of_text(key, value) for key, value in self.text.items()),
            *self.png_text,
            *(PngText(TEXT_CHUNK, COMMENT_PNG_KEY, comment) for comment in self.comments),
        ]

    def png_options(self) -> dict:
        """Keyword arguments of Pillow's PNG ``save`` that write this metadata."""
        from PIL import PngImagePlugin

        options: dict = {}
        if self.icc_profile:
            options["icc_profile"] = self.icc_profile
        if self.exif:
            options["exif"] = self.exif
        chunks = self.png_chunks()
        if chunks or self.xmp:
            info = PngImagePlugin.PngInfo()
            for chunk in chunks:
                info.add(*chunk.png_chunk())
            if self.xmp:
                info.add_itxt(XMP_PNG_KEY, self.xmp.decode("utf-8", "replace"))
            options["pnginfo"] = info
        return options

    def tiff_options(self) -> dict:
        """Keyword arguments of Pillow's TIFF ``save`` that write what TIFF holds of this
        metadata (``TIFF_HOLDS``): the ICC profile, and EXIF's tags with the XMP packet as
        tag 700."""
        from PIL import Image

        options: dict = {"icc_profile": self.icc_profile} if self.icc_profile else {}
        if self.exif or self.xmp:
            tags = Image.Exif()
            if self.exif:
                tags.load(self.exif)
            if self.xmp:
                tags[XMP_TIFF_TAG] = self.xmp
            options["exif"] = tags
        return options

    def parts(self) -> dict[str, str]:
        """What this metadata holds, a few words each, by the name of Pillow's ``save``
        option that writes it (``icc_profile``, ``exif``, ``xmp``, ``text``, ``comment``)."""
        fields = (
            ("icc_profile", "ICC profile", self.icc_profile),
            ("exif", "EXIF", self.exif),
            ("xmp", "XMP", self.xmp),
        )
        parts = {option: f"{name} {len(data):,} bytes" for option, name, data in fields if data}
        keys = [*self.text, *(chunk.key for chunk in self.png_text)]
        if keys:
            more = f" and {len(keys) - DESCRIBED_KEYS:,} more" if len(keys) > DESCRIBED_KEYS else ""
            parts["text"] = f"text {', '.join(keys[:DESCRIBED_KEYS])}{more}"
        if self.comments:
            count = f"{len(self.comments)} comments" if len(self.comments) > 1 else "comment"
            parts["comment"] = f"{count} {sum(map(len, self.comments)):,} bytes"
        return parts

    def describe(self) -> str:
        """One line for ``neuralzip info``."""
        return "; ".join(self.parts().values()) or "none"


def _text_entries(chunks: list[PngText], xmp: bytes | None) -> tuple[dict[str, str], list[PngText], bytes | None]:
    """(text entries, text chunks kept whole, XMP) of a PNG's text chunks and the XMP
    Pillow read from them. The XMP's chunk is left out where it is the plain iTXt that
    ``png_options`` writes back; otherwise it stays a text chunk, and the XMP is None.
    The others are text entries where each is the chunk ``PngText.of_text`` makes of its
    key and value and no key repeats (what version 5 holds), else all kept whole."""
    plain_xmp = PngText(ITXT_CHUNK, XMP_PNG_KEY.encode(), xmp or b"")
    if xmp and plain_xmp in chunks:
        chunks = chunks.copy()
        chunks.remove(plain_xmp)
    else:
        xmp = None
    text = {chunk.key: chunk.value for chunk in chunks}
    if len(text) < len(chunks) or any(PngText.of_text(chunk.key, chunk.value) != chunk for chunk in chunks):
        return {}, chunks, xmp
    return text, [], xmp


@contextmanager
def _reread(source: str | bytes | os.PathLike | IO[bytes] | None) -> Iterator[IO[bytes] | None]:
    """``source`` from its start: the path of a regular file opened again, a seekable file
    object put back where it was afterwards; None where there is none, or it cannot be read
    again (a named pipe)."""
    import os

    if isinstance(source, (str, bytes, os.PathLike)):
        if not os.path.isfile(source):
            yield None
            return
        try:
            with open(source, "rb") as fp:
                yield fp
        except OSError:
            yield None
    elif source is None or not source.seekable():
        yield None
    else:
        position = source.tell()
        source.seek(0)
        try:
            yield source
        finally:
            source.seek(position)
