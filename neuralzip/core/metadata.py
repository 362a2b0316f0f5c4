"""Image metadata kept beside the pixels: ICC profile, EXIF, XMP and text entries.

neuralzip stores them, byte for byte, in an optional block of the .nz container (format
version 2: ``container.pack_metadata``, FORMAT.md) and writes them back into the
decompressed PNG. EXIF is kept as it is (an orientation tag is *not* applied to the
pixels). Entry kinds: 1 ICC profile, 2 EXIF (Pillow's ``info["exif"]``, starting
``Exif\\0\\0``), 3 XMP packet, 4 text entry (UTF-8 key, NUL, UTF-8 value), in that
order, text entries in file order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the core imports no Pillow; only these conversions use it
    from PIL import Image

ICC, EXIF, XMP, TEXT = 1, 2, 3, 4
XMP_PNG_KEY = "XML:com.adobe.xmp"  # where PNG keeps XMP: an iTXt chunk of this keyword
DESCRIBED_KEYS = 20  # text keys ``describe`` names; a file may hold 65,536 of them
EXIF_PREFIX = b"Exif\0\0"  # how Pillow's info["exif"] starts for JPEG and PNG (not for WebP)
_PNG_KEYWORD = re.compile(r"[\x20-\x7e\xa1-\xff]{1,79}")  # PNG: 1-79 printable Latin-1 characters ...
_NOT_IN_PNG_KEYWORD = re.compile(r"[^\x20-\x7e\xa1-\xff]+")


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
    """Metadata entries that cannot be read."""


@dataclass
class Metadata:
    """What a file says about its pixels. Empty fields are None or {}."""

    icc_profile: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    text: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.icc_profile or self.exif or self.xmp or self.text)

    @classmethod
    def of(cls, image: Image.Image) -> Metadata:
        """The metadata Pillow read with ``image`` (any format it reads)."""
        info = image.info
        text = {k: v for k, v in getattr(image, "text", {}).items() if k != XMP_PNG_KEY and isinstance(v, str)}
        xmp, exif = info.get("xmp"), info.get("exif") or None
        if exif is not None and not exif.startswith(EXIF_PREFIX):  # WebP's: as JPEG and PNG give it
            exif = EXIF_PREFIX + exif
        return cls(
            icc_profile=info.get("icc_profile") or None,
            exif=exif,
            xmp=(xmp.encode() if isinstance(xmp, str) else xmp) or None,
            text=text,
        )

    def entries(self) -> list[tuple[int, bytes]]:
        """(kind, bytes) of every non-empty field, in block order. Raises MetadataError for
        a text key with a NUL in it, which a text entry cannot hold (the NUL ends its key)."""
        for key in self.text:
            if "\0" in key:
                raise MetadataError(f"text key {key!r} holds a NUL character, which a .nz file cannot hold")
        entries = [(ICC, self.icc_profile), (EXIF, self.exif), (XMP, self.xmp)]
        entries += [(TEXT, k.encode() + b"\0" + v.encode()) for k, v in self.text.items()]
        return [(kind, data) for kind, data in entries if data]

    @classmethod
    def from_entries(cls, entries: list[tuple[int, bytes]]) -> Metadata:
        """Inverse of ``entries``; raises MetadataError on an unknown kind or a text entry
        without its NUL."""
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
            else:
                raise MetadataError(f"unknown or malformed metadata entry (kind {kind})")
        return meta

    def pil_info(self) -> dict:
        """The entries as Pillow puts them in ``Image.info``."""
        fields = (("icc_profile", self.icc_profile), ("exif", self.exif), ("xmp", self.xmp))
        return {**{k: v for k, v in fields if v}, **self.text}

    def png_options(self) -> dict:
        """Keyword arguments of Pillow's PNG ``save`` that write this metadata."""
        from PIL import PngImagePlugin

        options: dict = {}
        if self.icc_profile:
            options["icc_profile"] = self.icc_profile
        if self.exif:
            options["exif"] = self.exif
        if self.text or self.xmp:
            info = PngImagePlugin.PngInfo()
            for key, value in self.text.items():
                if not is_png_keyword(key):  # an iTXt of a keyword PNG holds, the key as its translated keyword
                    info.add_itxt(png_keyword(key), value, "", key)
                elif value.isascii():
                    info.add_text(key, value)
                else:  # tEXt is Latin-1: UTF-8 text goes into iTXt
                    info.add_itxt(key, value)
            if self.xmp:
                info.add_itxt(XMP_PNG_KEY, self.xmp.decode("utf-8", "replace"))
            options["pnginfo"] = info
        return options

    def describe(self) -> str:
        """One line for ``neuralzip info``."""
        parts = [
            f"{name} {len(data):,} bytes"
            for name, data in (("ICC profile", self.icc_profile), ("EXIF", self.exif), ("XMP", self.xmp))
            if data
        ]
        if self.text:
            keys = list(self.text)
            more = f" and {len(keys) - DESCRIBED_KEYS:,} more" if len(keys) > DESCRIBED_KEYS else ""
            parts.append(f"text {', '.join(keys[:DESCRIBED_KEYS])}{more}")
        return "; ".join(parts) or "none"
