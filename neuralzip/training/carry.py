"""Training images packed to travel to a lent training machine (a GPU for one stretch).

``python -m neuralzip.training.carry OUT --area A PATHS...`` splits the images of PATHS
as training does (``train.split``), writes the validation images whole to ``OUT/val`` and
the central ``A`` fraction of each training image's area to ``OUT/train``, all as lossless
WebP named ``{folder}_{stem}.webp``. Train there with ``neuralzip train OUT/train --val
OUT/val``: the validation set is the same as on the full folders, the training set is a
deterministic subset of their pixels. Pixels only: metadata and alpha are dropped.
"""

from __future__ import annotations

import argparse
import math
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

from ..images import list_images, read_rgb
from .train import split


def central_crop(height: int, width: int, area: float) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the centred crop holding ``area`` of the image (sides scaled alike)."""
    side = math.sqrt(area)
    h, w = max(1, round(height * side)), max(1, round(width * side))
    return (height - h) // 2, (width - w) // 2, h, w


def _pack(job: tuple[str, Path, float]) -> int:
    name, out, area = job
    pixels = read_rgb(name)
    height, width = pixels.shape[:2]
    top, left, h, w = central_crop(height, width, area)
    Image.fromarray(pixels[top : top + h, left : left + w]).save(out, "WEBP", lossless=True, quality=100, exact=True)
    return out.stat().st_size


def carry(out: Path, paths: list[str], area: float, jobs: int = 2) -> tuple[int, int]:
    """Write ``out/train`` and ``out/val``; returns (files, bytes) written."""
    names = [n for p in paths for n in list_images(p)]
    train, val = split(names)
    plan = []
    for folder, subset, fraction in (("train", train, area), ("val", val, 1.0)):
        (out / folder).mkdir(parents=True, exist_ok=True)
        plan += [(n, out / folder / f"{Path(n).parent.name}_{Path(n).stem}.webp", fraction) for n in subset]
    with ProcessPoolExecutor(jobs) as pool:
        sizes = list(pool.map(_pack, plan, chunksize=4))
    return len(sizes), sum(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--area", type=float, default=0.5, help="fraction of each training image's area kept")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    files, size = carry(args.out, args.paths, args.area, args.jobs)
    print(f"{files} images, {size / 2**20:.1f} MiB in {args.out}")


if __name__ == "__main__":
    main()
