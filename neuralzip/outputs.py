"""The image files ``neuralzip decompress`` writes: the formats it writes losslessly, the
file's metadata in each, and a read-back check that the pixels came through exactly."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import ExifTags, Image

from .core.metadata import TIFF_HOLDS, Metadata, MetadataWarning
from .jobs import File, UserError

# Output formats written losslessly, by suffix, with the modes each keeps exactly (Pillow
# writes RGBA as RGB to BMP and PPM, and lossy or resized pixels to JPEG, WebP, ICO, ...).
OUTPUT_FORMATS = {
    ".png": ("PNG", {"L", "LA", "RGB", "RGBA"}),
    ".tif": ("TIFF", {"L", "LA", "RGB", "RGBA"}),
    ".tiff": ("TIFF", {"L", "LA", "RGB", "RGBA"}),
    ".bmp": ("BMP", {"L", "RGB"}),
    ".ppm": ("PPM", {"L", "RGB"}),
    ".pgm": ("PPM", {"L"}),
    ".pnm": ("PPM", {"L", "RGB"}),
}


def output_format(target: File | None) -> tuple[str, set[str]]:
    """(Pillow format, modes it writes losslessly) of an output path (PNG for stdout or a
    path without a suffix); UserError for any other suffix."""
    suffix = "" if target is None else target.suffix.lower()
    if suffix == "":
        return OUTPUT_FORMATS[".png"]
    if suffix not in OUTPUT_FORMATS:
        raise UserError(
            f"{target}: {suffix} is not an output format written losslessly; use one of {', '.join(OUTPUT_FORMATS)}"
        )
    return OUTPUT_FORMATS[suffix]


# A TIFF keeps EXIF's orientation as its Orientation tag, which readers apply (Pillow as it
# loads): the read-back check compares them with the decoded pixels turned the same way.
_TIFF_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def image_file(image: np.ndarray, metadata: Metadata | None, image_format: str, name: str) -> bytes:
    """``image`` as a file of ``image_format`` with the ``metadata`` it holds, read back:
    UserError naming the output ``name`` where the pixels a reader gets are not exactly
    ``image``."""
    out, picture = io.BytesIO(), Image.fromarray(image)
    picture.save(out, format=image_format, **_metadata_options(metadata, image_format))
    pixels_only = _png_pixels_only(out.getvalue()) if image_format == "PNG" else out.getvalue()
    with Image.open(io.BytesIO(pixels_only)) as written:  # what a reader of the file will get
        orientation = written.getexif().get(ExifTags.Base.Orientation, 1) if image_format == "TIFF" else 1
        turn = _TIFF_ORIENTATION.get(int(orientation))
        shown = image if turn is None else np.asarray(picture.transpose(turn))
        if written.mode != picture.mode or not np.array_equal(np.asarray(written), shown):
            raise UserError(f"{name}: {image_format} did not keep the pixels exactly; nothing written")
    return out.getvalue()


_PNG_METADATA_CHUNKS = {b"iCCP", b"eXIf", b"tEXt", b"zTXt", b"iTXt"}


def _png_pixels_only(png: bytes) -> bytes:
    """``png`` without its metadata chunks: the pixels read back are checked on it, so that
    metadata over Pillow's own chunk limit (``PngImagePlugin.MAX_TEXT_CHUNK``, 1 MiB: an
    ICC profile of a few MiB) neither fails the check nor needs that limit lifted for the
    whole process."""
    kept, pos = [png[:8]], 8
    while pos + 8 <= len(png):
        length, kind = int.from_bytes(png[pos : pos + 4], "big"), png[pos + 4 : pos + 8]
        if kind not in _PNG_METADATA_CHUNKS:
            kept.append(png[pos : pos + 12 + length])
        pos += 12 + length
    return b"".join(kept)


def _metadata_options(meta: Metadata | None, image_format: str) -> dict:
    """Pillow ``save`` options that write ``meta`` into ``image_format``: all of it into
    PNG, the ICC profile, EXIF and XMP into TIFF, none into BMP and PPM. What the format
    cannot hold gets one MetadataWarning naming it."""
    if not meta:
        return {}
    if image_format == "PNG":
        return meta.png_options()
    options, held = (meta.tiff_options(), TIFF_HOLDS) if image_format == "TIFF" else ({}, set())
    left_out = [part for option, part in meta.parts().items() if option not in held]
    if left_out:
        warnings.warn(MetadataWarning(f"{image_format} cannot hold the {'; '.join(left_out)}: left out"), stacklevel=2)
    return options
