"""What the per-image adaptation (``neuralzip/core/adapt.py``) buys, image by image.

For each image: the ideal cost -log2 P under the integer tables (bits per subpixel) of
the shipped ``photo`` model as it is and with the adaptation the encoder chooses, the
header bytes it adds, and the seconds the choice takes (one thread). Real files
of the whole sets are in ``benchmarks/results/{kodak,heldout}``.

Run from the repository root (about 2 s an image):

    python benchmarks/adaptation.py --kodak 24 --heldout 55 --out benchmarks/results/adaptation.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from ablation import images  # noqa: E402
from neuralzip.core.adapt import choose_adaptation  # noqa: E402
from neuralzip.core.codec import Codec, adapted  # noqa: E402


def measure(codec: Codec, image: np.ndarray) -> dict[str, float]:
    """Ideal bits without and with the chosen adaptation, its header bytes, the choice's seconds."""
    model = codec.zoo_model.model
    coefs, _ = codec.choose_coefs(image, 3)
    t0 = time.perf_counter()
    adaptation = choose_adaptation(model, image, coefs, 3)
    seconds = time.perf_counter() - t0
    plain = codec._encode_pixels(image, coefs, 3, model, None)[1]
    if adaptation is None:
        return {"plain": plain, "adapted": plain, "header": 0, "seconds": seconds}
    bits = codec._encode_pixels(image, coefs, 3, adapted(model, adaptation), None)[1]
    return {"plain": plain, "adapted": bits, "header": len(adaptation.pack()), "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kodak", type=int, default=24, help="first N Kodak images")
    ap.add_argument("--heldout", type=int, default=55, help="first N held-out training-folder photos")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "adaptation.md")
    args = ap.parse_args()
    codec = Codec.named("photo", threads=1)
    rows: dict[str, list[tuple[int, dict[str, float]]]] = {}
    t0 = time.perf_counter()
    for subset, name, image in images(args.kodak, args.heldout):
        result = measure(codec, np.array(image))  # a writable copy the kernel may hold
        rows.setdefault(subset, []).append((image.size, result))
        print(subset, name, {k: round(v / image.size, 4) if k in ("plain", "adapted") else round(v, 2)
                             for k, v in result.items()}, flush=True)
    lines = ["# Per-image adaptation of the `photo` model (ideal bpsp, integer tables)", "",
             f"Command: `python benchmarks/adaptation.py --kodak {args.kodak} --heldout {args.heldout}` "
             f"({time.perf_counter() - t0:.0f} s, one thread). Pooled over each set; \"with its bytes\" adds "
             "the bytes the adaptation takes in the header.", "",
             "| set | images | shipped model | adapted | with its bytes | change | adapted images | choice s/image |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for subset, results in rows.items():
        size = sum(s for s, _ in results)
        plain = sum(r["plain"] for _, r in results) / size
        adapted = sum(r["adapted"] for _, r in results) / size
        with_header = (sum(r["adapted"] + 8 * r["header"] for _, r in results)) / size
        chosen = sum(r["header"] > 0 for _, r in results)
        seconds = sum(r["seconds"] for _, r in results) / len(results)
        lines.append(f"| {subset} | {len(results)} | {plain:.4f} | {adapted:.4f} | {with_header:.4f} | "
                     f"{100 * (with_header / plain - 1):+.2f} % | {chosen} | {seconds:.2f} |")
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
