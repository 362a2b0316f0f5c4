"""How the per-image adaptation's search (``adapt.Search``: Adam steps, pixels a step,
sample size) trades encoder work for bits, on validation photos.

For each search: the real cost of each whole image under the integer model with the
adaptation that search chooses (bits per subpixel, kernel tables, the adaptation block's
bytes; the model unadapted where the encoder judges the block would not pay), pooled, and
the seconds the choice took. The photos are the validation photos carved from
``train/`` (``training.train.split``; the non-BSDS ones first, as they are larger), never
Kodak: the effort levels' searches (``core/effort.py``) are chosen here. Run from the
repository root:

    python benchmarks/adaptation_search.py --images 21 --out benchmarks/results/adaptation_search.md
    python benchmarks/adaptation_search.py --model photo-fast --searches "none,effort 2,effort 3 (default)" \
        --out benchmarks/results/adaptation_search_photo-fast.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from adapters import validation_photos  # noqa: E402

from neuralzip import zoo  # noqa: E402
from neuralzip.core.adapt import Search, choose_adaptation  # noqa: E402
from neuralzip.core.codec import adapted  # noqa: E402

SEARCHES: dict[str, Search | None] = {  # name -> search (steps, pixels a step, sample pixels); None: no adaptation
    "none": None,
    "effort 2 before 0.6.1": Search(12, 4096, 1 << 14),
    "effort 2": Search(24, 2048, 1 << 14),
    "effort 3 before 0.6.1": Search(30, 4096, 1 << 15),
    "effort 3 (default)": Search(60, 2048, 1 << 15),
    "120 steps of 1,024": Search(120, 1024, 1 << 15),
    "90 steps of 2,048": Search(90, 2048, 1 << 15),
    "effort 4 before 0.6.1": Search(40, 8192, 1 << 16),
    "effort 4": Search(160, 2048, 1 << 16),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=21, help="validation photos (non-BSDS first)")
    ap.add_argument("--model", default="photo", help="shipped model whose adaptation is searched")
    ap.add_argument("--searches", default=",".join(SEARCHES), help="comma-separated names of SEARCHES")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "adaptation_search.md")
    args = ap.parse_args()
    searches = {name: SEARCHES[name] for name in args.searches.split(",")}
    codec = zoo.codec(args.model)
    model = codec.zoo_model.model
    bits = dict.fromkeys(searches, 0.0)
    seconds = dict.fromkeys(searches, 0.0)
    subpixels, t0 = 0, time.perf_counter()
    for path in validation_photos(args.images):
        image = np.array(Image.open(path).convert("RGB"))
        coefs, _ = codec.choose_coefs(image, 3)
        subpixels += image.size
        row = []
        for name, search in searches.items():
            start = time.perf_counter()
            adaptation = None if search is None else choose_adaptation(model, image, coefs, 3, search)
            seconds[name] += time.perf_counter() - start
            tuned, stored = (model, 0) if adaptation is None else (adapted(model, adaptation), len(adaptation.pack()))
            bits[name] += codec._encode_pixels(image, coefs, 3, tuned, None)[1] + 8 * stored
            row.append(f"{bits[name] / subpixels:.4f}")
        print(Path(path).name, *row, flush=True)
    reference = bits.get("effort 3 before 0.6.1", next(iter(bits.values())))
    options = "" if args.model == "photo" else f' --model {args.model} --searches "{args.searches}"'
    lines = [
        f"# The adaptation's search against bits (`{args.model}` {codec.zoo_model.tag.hex()}, "
        f"{args.images} validation photos)",
        "",
        f"Command: `python benchmarks/adaptation_search.py --images {args.images}{options}` "
        f"({time.perf_counter() - t0:.0f} s, {codec.threads or 'all'} kernel threads). Real code lengths of "
        "whole images under the integer model, the adaptation block's bytes included, pooled. "
        "Work: Adam steps x pixels a step, the cost of the search itself; seconds: choosing it, summed "
        "over the images (the machine may have been shared: compare the work column).",
        "",
        "| search | steps | pixels a step | sample | work | bpsp | change | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, search in searches.items():
        work = "0 | 0 | 0 | 0" if search is None else (
            f"{search.steps} | {search.batch:,} | {search.sample:,} | {search.steps * search.batch:,}"
        )
        lines.append(
            f"| {name} | {work} | {bits[name] / subpixels:.4f} | {100 * (bits[name] / reference - 1):+.2f} % "
            f"| {seconds[name]:.1f} |"
        )
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
