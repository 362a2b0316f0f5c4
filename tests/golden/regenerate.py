"""Write the golden .nz files of the current encoder and their md5 manifest.

Each source image gives ``<source>_v<format version>_<weights tag>.nz`` (files of
versions 1 to 3 are named without the tag), and ``..._e<n>`` for the n-th encoder whose
choices (the per-image adaptation's search) made other bytes of the same version and
weights. Files already in the manifest stay as they are, frozen: no encoder need
reproduce them, but every release must keep decoding them to the same pixels. Run only
for a deliberate change of the bytes (new weights, a new format version, a new encoder
search):
    python tests/golden/regenerate.py
"""

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from neuralzip import zoo
from neuralzip.core.codec import Codec
from neuralzip.core.container import Header
from neuralzip.core.metadata import ITXT_CHUNK, ITXT_COMPRESSED, TEXT_CHUNK, ZTXT_CHUNK, Metadata, PngText

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MANIFEST = HERE / "golden.json"
SOURCES = {  # source name -> (model, source image, PIL mode, crop rows, crop cols)
    "sample_photo": ("photo", ROOT / "samples" / "sample.png", "RGB", slice(None), slice(None)),
    "urban_crop_photo": ("photo", ROOT / "tests" / "data" / "urban_crop.png", "RGB", slice(None), slice(None)),
    "tiny_photo": ("photo", ROOT / "tests" / "data" / "urban_crop.png", "RGB", slice(0, 3), slice(0, 5)),
    "urban_crop_grey": ("photo", ROOT / "tests" / "data" / "urban_crop.png", "L", slice(None), slice(None)),
    "urban_crop_rgba": ("photo", ROOT / "tests" / "data" / "urban_crop.png", "RGBA", slice(0, 40), slice(None)),
    "urban_crop_la": ("photo", ROOT / "tests" / "data" / "urban_crop.png", "LA", slice(0, 24), slice(0, 40)),
    "urban_crop_cifar10": ("cifar10", ROOT / "tests" / "data" / "urban_crop.png", "RGB", slice(8, 40), slice(30, 62)),
    "urban_crop_wide": ("photo-wide", ROOT / "tests" / "data" / "urban_crop.png", "RGB", slice(None), slice(None)),
    "urban_crop_fast": ("photo-fast", ROOT / "tests" / "data" / "urban_crop.png", "RGB", slice(None), slice(None)),
    "urban_crop_metadata": ("photo", ROOT / "tests" / "data" / "urban_crop.png", "RGB", slice(0, 32), slice(0, 48)),
    "urban_crop_png_text": ("photo", ROOT / "tests" / "data" / "urban_crop.png", "RGB", slice(32, 64), slice(0, 48)),
}
BLACK_TAIL = "urban_crop_black_tail"  # urban_crop with rows 32.. black: the last pixels decoded are 0
METADATA = {
    "urban_crop_metadata": Metadata(icc_profile=b"neuralzip golden ICC profile bytes", exif=b"Exif\0\0MM\0*",
                                       xmp=b"<x:xmpmeta/>", text={"Title": "golden", "Beschreibung": "grün"}),
    "urban_crop_png_text": Metadata(  # format version 6: PNG text chunks kept whole, comments
        png_text=[PngText(TEXT_CHUNK, b"Author", b"one"), PngText(TEXT_CHUNK, b"Author", b"two"),
                  PngText(ZTXT_CHUNK, b"Note", b"zipped " * 8),
                  PngText(ITXT_CHUNK, b"Titel", "grüne Blätter".encode(), b"de", "Titel".encode()),
                  PngText(ITXT_COMPRESSED, b"Beschreibung", "ein Bild".encode(), b"de-CH", "Description".encode())],
        comments=[b"JPEG comment", b"another \xff comment"]),
}
NOISY_PHOTO = "sample_noisy_photo"  # sample.png's left 128 columns with sensor-like noise: adapted
NOISY_WIDE = "sample_noisy_wide"  # the same with photo-wide, which efforts 3 to 5 code photos with
NOISE = "noise_stored"  # 12x10 RGB of splitmix64 hashes: incompressible, stored raw
DIAGRAM = "diagram_packed"  # a synthetic graphic, packed with LZMA2 (its bytes are liblzma's)


def noise() -> np.ndarray:
    x = np.arange(12 * 10 * 3, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return ((x ^ (x >> np.uint64(31))) & np.uint64(255)).astype(np.uint8).reshape(12, 10, 3)


def diagram() -> np.ndarray:
    """A 48x64 RGB graphic: flat background, a grid, three outlined boxes."""
    image = np.full((48, 64, 3), 236, np.uint8)
    image[::8, :] = image[:, ::8] = (200, 200, 210)
    for i in range(3):
        top, left = 4 + 12 * i, 6 + 18 * i
        image[top : top + 12, left : left + 16] = (60 * i, 120, 250 - 60 * i)
        image[top, left : left + 16] = image[top + 11, left : left + 16] = 0
    return image


def golden_images() -> dict[str, tuple[str, np.ndarray]]:
    """source name -> (model, uint8 pixels); RGBA and LA get a diagonal alpha ramp."""
    out = {}
    for name, (model, path, mode, rows, cols) in SOURCES.items():
        pixels = np.asarray(Image.open(path).convert(mode))[rows, cols].copy()
        if mode.endswith("A"):
            h, w = pixels.shape[:2]
            pixels[:, :, -1] = (np.add.outer(np.arange(h), np.arange(w)) * 3).clip(0, 255)
        out[name] = (model, np.ascontiguousarray(pixels))
    black_tail = out["urban_crop_photo"][1].copy()
    black_tail[32:] = 0
    out[BLACK_TAIL] = ("photo", black_tail)
    photo = out["sample_photo"][1][:, :128].astype(np.int64)
    noise_q = np.random.default_rng(0).integers(-6, 7, photo.shape)  # PCG64: the same on every machine
    out[NOISY_PHOTO] = ("photo", np.clip(photo + noise_q, 0, 255).astype(np.uint8))
    out[NOISY_WIDE] = ("photo-wide", out[NOISY_PHOTO][1])
    out[NOISE] = ("photo", noise())
    out[DIAGRAM] = ("photo", diagram())
    return out


def golden_codec(model: str) -> Codec:
    """The codec of a source: the current weights of ``model`` itself at the default
    effort's search (``zoo.codec`` codes with the model of an effort level)."""
    return Codec(zoo.load(model))


def main() -> None:
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    for entry in manifest.values():
        entry["frozen"] = True
    for source, (model, image) in golden_images().items():
        codec = golden_codec(model)
        data, _ = codec.encode(image, metadata=METADATA.get(source))
        version = Header.unpack(data)[0].version
        name = stem = f"{source}_v{version}_{codec.zoo_model.tag.hex()}"
        revision = 1
        while name in manifest and manifest[name]["nz_md5"] != hashlib.md5(data).hexdigest():
            revision += 1
            name = f"{stem}_e{revision}"
        (HERE / f"{name}.nz").write_bytes(data)
        manifest[name] = {
            "source": source,
            "model": model,
            "weights": codec.zoo_model.tag.hex(),
            "format_version": version,
            "frozen": False,
            "nz_md5": hashlib.md5(data).hexdigest(),
            "pixels_md5": hashlib.md5(image.tobytes()).hexdigest(),
            "shape": list(image.shape),
        }
    MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
