"""Everyday API: images (numpy arrays or PIL images) <-> .nz bytes and files.

Modes and shapes: a uint8 array of shape (H, W) or (H, W, 1) is grey (``L``), (H, W, 2)
grey + alpha (``LA``), (H, W, 3) ``RGB``, (H, W, 4) ``RGBA``. ``decompress`` returns the
mode's shape: (H, W) for L (so (H, W, 1) comes back as (H, W)), (H, W, C) otherwise.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import re
import struct
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image

from . import zoo
from .atomic import write_atomically
from .core.codec import DEFAULT_MAX_PIXELS, EncodeStats, UnsupportedImage, check_pixels
from .core.container import Header
from .core.effort import DEFAULT_EFFORT, FAST_EFFORT
from .core.metadata import Metadata
from .zoo import DEFAULT_MODEL

ImageLike = np.ndarray | Image.Image
CODED_MODES = ("L", "LA", "RGB", "RGBA")
PALETTE_MODES = ("P", "PA")
KEYED_MODES = {"L": "LA", "RGB": "RGBA"}  # with a colour key, coded as


def _raw_mode(image: Image.Image) -> tuple[str, str, object] | None:
    """(decoder name, raw mode, decoder arguments) of the first tile of a PIL image not
    yet loaded; None once its pixels are loaded (the tiles are gone)."""
    for tile in getattr(image, "tile", None) or ():
        args = tile[3] if len(tile) > 3 else None
        rawmode = args if isinstance(args, str) else args[0] if isinstance(args, tuple) and args else None
        if isinstance(rawmode, str):
            return tile[0], rawmode, args
    return None


def _source_depth(image: Image.Image) -> tuple[int, str] | None:
    """(bits per sample, mode) of the file behind a PIL image not yet loaded, where
    Pillow's mode hides them: it opens 16-bit RGB, RGBA and grey + alpha PNGs (and 16-bit
    TIFFs and PPMs) as 8-bit RGB or RGBA. Read off the decoder's raw mode (``RGB;16B``,
    ``LA;16B``: 16; ``RGB;16`` is packed 5-6-5 and ``P;4`` 4-bit, both at most 8) or a
    PPM's maximum value. None once the pixels are loaded (the tiles are gone)."""
    raw = _raw_mode(image)
    if raw is None:
        return None
    decoder, rawmode, args = raw
    if decoder.startswith("ppm") and isinstance(args, tuple) and len(args) > 1 and isinstance(args[1], int):
        return max(8, args[1].bit_length()), rawmode  # maximum value 65535: 16 bits
    wide = re.search(r";(\d+)[BLN]", rawmode)
    return (int(wide.group(1)) if wide else 8), rawmode.split(";")[0]


def _key_in_8_bits(image: Image.Image, raw: tuple[str, str, object] | None) -> Image.Image:
    """``image``, or for a 2- or 4-bit grey PNG with a colour key a copy whose key is in
    the 8-bit units of its pixels. Pillow opens those (raw mode ``L;2``, ``L;4``) as L,
    scaling each sample to 0..255 (times 85, 17), but leaves ``info["transparency"]`` in
    the file's units, so its ``convert("LA")`` would find no pixel of the key colour. As
    libpng does, the bits of the key above the depth are ignored and the rest scaled like
    the samples. ``raw`` is ``_raw_mode`` of the file's image before its pixels were
    loaded (the raw mode is gone then)."""
    packed = re.fullmatch(r"L;([124])", raw[1]) if raw is not None and image.mode == "L" else None
    key = image.info.get("transparency")
    if packed is None or not isinstance(key, int):
        return image
    top = (1 << int(packed.group(1))) - 1
    scaled = image.copy()  # loads the pixels; the caller's image and its info stay as they were
    scaled.info["transparency"] = (key & top) * (255 // top)
    return scaled


def _frames(image: Image.Image) -> int:
    """Frames (GIF, APNG) or pages (TIFF) of an image file."""
    return int(getattr(image, "n_frames", 1))


def to_array(image: ImageLike, *, header: Image.Image | None = None) -> np.ndarray:
    """The pixels neuralzip codes for ``image``, uint8 (H, W) or (H, W, C).

    PIL images in modes L, LA, RGB and RGBA give their pixels; palette images (P, PA) the
    RGB they show, or RGBA if any pixel is not fully opaque; L and RGB images with a
    colour key (PNG ``tRNS``, ``info["transparency"]``) likewise give LA or RGBA if any
    pixel has the key colour (a 2- or 4-bit grey PNG's key scaled as its samples are, which
    Pillow's own ``convert`` does not do). Refused with UnsupportedImage, by name: other
    modes (1, I;16, I, F, CMYK, YCbCr, ...: 1- and 16-bit grey PNGs, keyed or not);
    images whose file has more than 8 bits per sample (16-bit PNG, TIFF, PPM: Pillow would
    hand over their high bytes only); animated and multi-page images (GIF, APNG, TIFF,
    ...: one frame would be coded, the others lost). The bit depth is read off an image as
    ``PIL.Image.open`` returns it, before its pixels are loaded, or where they are loaded
    already off ``header``: the same file opened again, not loaded. Arrays pass through
    unchanged (``Codec.encode`` checks them).
    """
    if not isinstance(image, Image.Image):
        return np.asarray(image)
    source = image if header is None else header
    frames = _frames(image)
    if frames > 1:
        raise UnsupportedImage(
            f"animated or multi-page image ({frames} frames): neuralzip codes single "
            "images only (save each frame as its own file)"
        )
    depth = _source_depth(source)
    if depth is not None and depth[0] > 8 and image.mode in CODED_MODES + PALETTE_MODES:
        raise UnsupportedImage(
            f"{depth[0]}-bit {depth[1]} image: neuralzip codes 8-bit images only (coding it would drop the low bits)"
        )
    if image.mode in PALETTE_MODES or (image.mode in KEYED_MODES and "transparency" in image.info):
        image = _key_in_8_bits(image, _raw_mode(source))
        with_alpha = np.asarray(image.convert(KEYED_MODES.get(image.mode, "RGBA")))
        if (with_alpha[:, :, -1] != 255).any():
            return with_alpha
        return with_alpha[:, :, 0] if image.mode == "L" else np.ascontiguousarray(with_alpha[:, :, :3])
    if image.mode not in CODED_MODES:
        raise UnsupportedImage(
            f"unsupported image mode {image.mode!r}: neuralzip codes 8-bit L, LA, RGB, RGBA and palette (P) images"
        )
    return np.asarray(image)


_PILLOW_LIMIT = threading.Lock()


def _header_size(file: str | os.PathLike | IO[bytes]) -> tuple[int, int] | None:
    """(width, height) in the header of an image file, read as ``Image.open`` reads it (by
    the first registered plugin that accepts its first bytes and opens it) but without the
    decompression-bomb check ``Image.open`` does afterwards, so that an image Pillow
    refuses as over twice its limit can be named by its size while that check stays on.
    None for a stream that cannot seek back, or where no plugin opens the file without
    raising (WebP's and a few others check the size as they open it)."""
    with contextlib.ExitStack() as stack:
        fp: IO[bytes]
        if isinstance(file, (str, os.PathLike)):
            fp, name = stack.enter_context(builtins.open(file, "rb")), os.fspath(file)
        else:
            fp, name = file, ""
        try:
            fp.seek(0)
        except (AttributeError, OSError):
            return None
        prefix = fp.read(16)
        for format_id in Image.ID:
            factory, accept = Image.OPEN[format_id]
            accepted = accept is None or accept(prefix)
            if isinstance(accepted, str) or not accepted:
                continue
            fp.seek(0)
            try:
                with factory(fp, name) as image:
                    return image.size
            except (SyntaxError, IndexError, TypeError, struct.error, Image.DecompressionBombError):
                continue
    return None


def _open_within(file: str | os.PathLike | IO[bytes], max_pixels: int) -> Image.Image:
    """``Image.open`` with ``max_pixels`` as Pillow's decompression-bomb limit for this call
    only: the process-wide limit (``PIL.Image.MAX_IMAGE_PIXELS``) is ours just while
    Pillow reads the header, under a lock, and never off; the size is checked before any
    pixel is decoded. Past twice the limit, which Pillow refuses before handing the image
    over, the error names the size ``_header_size`` reads, or says "more than" twice it."""
    limit = max(max_pixels, 1)
    with _PILLOW_LIMIT:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, limit
        try:
            with warnings.catch_warnings():  # between the limit and twice it Pillow warns; we refuse
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(file)
        except Image.DecompressionBombError as exc:  # over twice the limit: named by its size where the header gives it
            size = _header_size(file)
            if size is not None:
                check_pixels(*size, max_pixels, UnsupportedImage)
            raise UnsupportedImage(
                f"image of more than {2 * limit} pixels exceeds the limit of {max_pixels} pixels"
            ) from exc
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    try:
        check_pixels(*image.size, max_pixels, UnsupportedImage)
    except UnsupportedImage:
        image.close()
        raise
    return image


def read_image(file: str | os.PathLike | IO[bytes], *, max_pixels: int | None = None) -> np.ndarray:
    """``to_array`` of an image file (a path or a binary file object; any format Pillow reads).

    With ``max_pixels``, an image of more pixels raises UnsupportedImage as soon as its
    header is read, before its pixels are decoded, and that limit replaces Pillow's own
    decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``).
    """
    with _open(file, max_pixels) as image:
        return to_array(image)


def read_image_and_metadata(
    file: str | os.PathLike | IO[bytes], *, max_pixels: int | None = None
) -> tuple[np.ndarray, Metadata]:
    """``read_image``, and the file's ICC profile, EXIF, XMP, text entries and comments
    (``Metadata.of``: a PNG's text chunks read again from ``file``)."""
    with _open(file, max_pixels) as image:
        return to_array(image), Metadata.of(image, file)


def _open(file: str | os.PathLike | IO[bytes], max_pixels: int | None) -> Image.Image:
    """``Image.open``, within ``max_pixels`` where given (``_open_within``)."""
    return Image.open(file) if max_pixels is None else _open_within(file, max_pixels)


def encode(
    image: ImageLike,
    model: str = DEFAULT_MODEL,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Callable[[int, int], None] | None = None,
    metadata: Metadata | None = None,
    strip: bool = False,
    fast: bool = False,
    effort: int = DEFAULT_EFFORT,
) -> tuple[bytes, EncodeStats]:
    """``compress`` that also says what the file cost (sizes, bits, seconds)."""
    codec = zoo.codec(model, effort=FAST_EFFORT if fast else effort)
    if isinstance(image, Image.Image):
        check_pixels(*image.size, max_pixels, UnsupportedImage)  # before a lazily opened image loads its pixels
    pixels = to_array(image)  # before Metadata.of: a PNG's text loads the pixels, and the bit depth is read before
    if isinstance(image, Image.Image) and metadata is None:
        metadata = Metadata.of(image)
    return codec.encode(pixels, progress=progress, max_pixels=max_pixels, metadata=None if strip else metadata)


def compress(
    image: ImageLike,
    model: str = DEFAULT_MODEL,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Callable[[int, int], None] | None = None,
    metadata: Metadata | None = None,
    strip: bool = False,
    fast: bool = False,
    effort: int = DEFAULT_EFFORT,
) -> bytes:
    """.nz bytes of an image (see ``to_array``), coded with the shipped model ``model``
    (``neuralzip.zoo.available()`` lists them). Lossless: ``decompress`` gives back
    identical pixels.

    The file keeps ``metadata`` (for a PIL image, by default, its ICC profile, EXIF, XMP
    and text entries), unless ``strip``. Raises UnsupportedImage for an image of more than
    ``max_pixels`` pixels (a PIL image before its pixels are loaded). ``progress(done,
    total)`` is called as encoding advances, with ``done == total`` at the end.
    ``effort`` (1..5, default 3) is how much work the encoder spends for smaller files
    (``neuralzip.core.effort.EFFORTS``); ``fast`` is effort 1. Photos are coded with a
    faster model at effort 1, ``photo`` at 2 and a wider one, slower to decode, at 3-5
    (the file names its model).
    Raises ValueError for an effort outside 1..5.
    """
    return encode(
        image, model, max_pixels=max_pixels, progress=progress, metadata=metadata, strip=strip, fast=fast, effort=effort
    )[0]


def decompress(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Callable[[int, int], None] | None = None,
    parsed: tuple[Header, int] | None = None,
) -> np.ndarray:
    """Pixels of .nz bytes, uint8 (H, W) for L or (H, W, C) for LA, RGB and RGBA.

    The model is the one named in the file. Raises FormatError or DecodeError on a bad or
    damaged file, and DecodeError for an image of more than ``max_pixels`` pixels, before
    allocating it; TypeError for anything but bytes. ``progress(step, total)`` is called as
    decoding advances. The header is parsed once: ``parsed``, where the caller has
    ``Header.unpack(data)`` already, is used instead.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decompress takes the bytes of a .nz file, not {type(data).__module__}.{type(data).__name__}")
    data = bytes(data)
    if parsed is None:
        parsed = Header.unpack(data)
    return zoo.codec_for_header(parsed[0]).decode(data, progress=progress, max_pixels=max_pixels, parsed=parsed)


def metadata(data: bytes) -> Metadata:
    """The metadata stored in .nz bytes (empty if none), from the header alone."""
    return Header.unpack(data)[0].metadata or Metadata()


def open(path: str | os.PathLike) -> Image.Image:  # noqa: A001 - mirrors PIL.Image.open
    """The .nz file at ``path`` decoded into a PIL image of mode L, LA, RGB or RGBA, its
    stored metadata in ``info`` (``icc_profile``, ``exif``, ``xmp``, text entries)."""
    data = Path(path).read_bytes()
    parsed = Header.unpack(data)
    image = Image.fromarray(decompress(data, parsed=parsed))
    image.info.update((parsed[0].metadata or Metadata()).pil_info())
    return image


def save(path: str | os.PathLike, image: ImageLike, model: str = DEFAULT_MODEL) -> None:
    """Compress ``image`` into the file ``path``, replacing it whole: the file is either
    the complete new one or untouched, even on an error or Ctrl-C."""
    write_atomically(Path(path), compress(image, model), overwrite=True)
