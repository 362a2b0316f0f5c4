"""Rewrite the golden .nz files and their md5 manifest from the shipped weights.

Run only for a deliberate bitstream change (new weights or a new format version):
    python tests/golden/regenerate.py
"""

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from neuralzip.codec import Codec

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SOURCES = {  # golden name -> (model, source image, PIL mode, crop rows, crop cols)
    "sample_photo": ("photo", ROOT / "samples" / "sample.png", "RGB", slice(None), slice(None)),
    "urban_crop_photo": ("photo", ROOT / "tests" / "data" / "urban_crop.png", "RGB", slice(None), slice(None)),
    "tiny_photo": ("photo", ROOT / "tests" / "data" / "urban_crop.png", "RGB", slice(0, 3), slice(0, 5)),
    "urban_crop_grey": ("photo", ROOT / "tests" / "data" / "urban_crop.png", "L", slice(None), slice(None)),
    "urban_crop_rgba": ("photo", ROOT / "tests" / "data" / "urban_crop.png", "RGBA", slice(0, 40), slice(None)),
    "urban_crop_la": ("photo", ROOT / "tests" / "data" / "urban_crop.png", "LA", slice(0, 24), slice(0, 40)),
    "urban_crop_cifar10": ("cifar10", ROOT / "tests" / "data" / "urban_crop.png", "RGB", slice(8, 40), slice(30, 62)),
}


def golden_images() -> dict[str, tuple[str, np.ndarray]]:
    """name -> (model, uint8 pixels) of every golden file; RGBA and LA get a diagonal alpha ramp."""
    out = {}
    for name, (model, path, mode, rows, cols) in SOURCES.items():
        pixels = np.asarray(Image.open(path).convert(mode))[rows, cols].copy()
        if mode.endswith("A"):
            h, w = pixels.shape[:2]
            pixels[:, :, -1] = (np.add.outer(np.arange(h), np.arange(w)) * 3).clip(0, 255)
        out[name] = (model, np.ascontiguousarray(pixels))
    return out


def main() -> None:
    manifest = {}
    for name, (model, image) in golden_images().items():
        data, _ = Codec.named(model).encode(image)
        (HERE / f"{name}.nz").write_bytes(data)
        manifest[name] = {
            "model": model,
            "nz_md5": hashlib.md5(data).hexdigest(),
            "pixels_md5": hashlib.md5(image.tobytes()).hexdigest(),
            "shape": list(image.shape),
        }
    (HERE / "golden.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
