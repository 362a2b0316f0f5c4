"""Bits per subpixel of each image mode on real photographs (not a test).

For each image, codes RGB, L (grey), RGBA and LA versions, checks every round trip, and
writes a markdown table. RGBA/LA use an all-opaque alpha or a cut-out: an ellipse with an
anti-aliased edge, 0 outside. bpsp = 8 * file bytes / (H * W * channels), alpha included.

    PYTHONPATH=. python benchmarks/modes.py samples/sample.png ../shared/data/kodak/kodim23.png \\
        --out benchmarks/modes.md
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import time
from pathlib import Path

import numpy as np
from PIL import Image

import neuralzip
from neuralzip.api import encode


def cutout_alpha(height: int, width: int) -> np.ndarray:
    """uint8 (H, W): 255 inside an ellipse, 0 outside, anti-aliased (4x4 supersampling)."""
    y, x = np.mgrid[: 4 * height, : 4 * width]
    inside = ((x + 0.5) / (4 * width) - 0.5) ** 2 / 0.16 + ((y + 0.5) / (4 * height) - 0.5) ** 2 / 0.16 <= 1
    return np.round(inside.reshape(height, 4, width, 4).mean(axis=(1, 3)) * 255).astype(np.uint8)


def versions(rgb: np.ndarray) -> dict[str, np.ndarray]:
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    opaque = np.full(grey.shape, 255, np.uint8)
    cutout = cutout_alpha(*grey.shape)
    return {
        "RGB": rgb,
        "L": grey,
        "RGBA, opaque": np.dstack([rgb, opaque]),
        "RGBA, cut-out": np.dstack([rgb, cutout]),
        "LA, cut-out": np.dstack([grey, cutout]),
    }


def png_bytes(image: np.ndarray) -> int:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG", optimize=True)
    return out.tell()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = []
    for path in args.images:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        for mode, image in versions(rgb).items():
            data, stats = encode(image)
            t0 = time.perf_counter()
            assert np.array_equal(neuralzip.decompress(data), image), (path, mode)
            decode_s = time.perf_counter() - t0
            png = png_bytes(image)
            rows.append(f"| {path.name} | {rgb.shape[1]}x{rgb.shape[0]} | {mode} | {len(data):,} | {stats.bpsp:.4f} "
                        f"| {stats.nll_bpsp:.4f} | {8 * png / image.size:.4f} | {stats.seconds:.1f} / {decode_s:.1f} |")
            print(rows[-1], flush=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    args.out.write_text("\n".join([
        "# Bits per subpixel by image mode",
        "",
        f"`benchmarks/modes.py`, model `photo`, {platform.machine()}, {os.cpu_count()} cores, "
        f"load average at the end {load} (other jobs sharing the CPU show there; times are indicative).",
        "bpsp = 8 × file bytes / (H × W × channels), alpha included; colour NLL = the model's ideal bits "
        "per colour subpixel; PNG = Pillow `optimize=True`. Every round trip was checked pixel-exact.",
        "",
        "| image | size | mode | bytes | bpsp | colour NLL bpsp | PNG bpsp | encode / decode s |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]))


if __name__ == "__main__":
    main()
