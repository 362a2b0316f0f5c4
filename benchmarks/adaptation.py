"""What the per-image adaptation (``neuralzip/core/adapt.py``) buys, part by part.

For each image: the ideal cost -log2 P under the integer tables (bits per subpixel) of
the shipped ``photo`` model as it is and with the adaptation the encoder chooses, the
header bytes it adds, and the seconds the choice takes (one thread); for the shipped
adaptation and for its parts alone (the others' learning rates set to 0, their zero
values left out of the header bytes; the encoder's pay-or-not decision still counts
them, so the parts are judged a little harder than they would be alone). Real files of
the whole sets are in ``benchmarks/results/{kodak,heldout}``.

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

from neuralzip import zoo
from neuralzip.core import adapt  # noqa: E402
from neuralzip.core.adaptation_block import Adaptation  # noqa: E402
from neuralzip.core.codec import Codec, adapted  # noqa: E402

SHIPPED = "shipped: last hidden biases, output biases, output gains"
VARIANTS = {  # name -> which of adapt.LEARNING_RATES stay (hidden offsets, output offsets, gains)
    "output biases alone": (0, 1, 0),
    "output biases + last hidden biases": (1, 1, 0),
    SHIPPED: (1, 1, 1),
}


def header_bytes(adaptation: Adaptation) -> int:
    """Bytes of the adaptation block with its all-zero lists left out."""
    def kept(values):
        return None if values is None or not values.any() else values
    return len(Adaptation([kept(v) for v in adaptation.bias_offsets], kept(adaptation.output_gains)).pack())


def measure(codec: Codec, image: np.ndarray) -> dict[str, dict[str, float]]:
    """Per variant: ideal bits with the chosen adaptation (and without: "plain"), its
    header bytes and the choice's seconds."""
    model = codec.zoo_model.model
    coefs, _ = codec.choose_coefs(image, 3)
    plain = codec._encode_pixels(image, coefs, 3, model, None)[1]
    shipped_rates, out = adapt.LEARNING_RATES, {}
    try:
        for variant, keep in VARIANTS.items():
            adapt.LEARNING_RATES = tuple(rate * k for rate, k in zip(shipped_rates, keep))
            t0 = time.perf_counter()
            adaptation = adapt.choose_adaptation(model, image, coefs, 3, codec.effort.search)
            seconds = time.perf_counter() - t0
            if adaptation is None:
                out[variant] = {"plain": plain, "adapted": plain, "header": 0, "seconds": seconds}
                continue
            bits = codec._encode_pixels(image, coefs, 3, adapted(model, adaptation), None)[1]
            out[variant] = {"plain": plain, "adapted": bits, "header": header_bytes(adaptation), "seconds": seconds}
    finally:
        adapt.LEARNING_RATES = shipped_rates
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kodak", type=int, default=24, help="first N Kodak images")
    ap.add_argument("--heldout", type=int, default=55, help="first N held-out training-folder photos")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "adaptation.md")
    args = ap.parse_args()
    codec = zoo.codec("photo", threads=1)
    rows: dict[tuple[str, str], list[tuple[int, dict[str, float]]]] = {}
    t0 = time.perf_counter()
    for subset, name, image in images(args.kodak, args.heldout):
        results = measure(codec, np.array(image))  # a writable copy the kernel may hold
        for variant, result in results.items():
            rows.setdefault((subset, variant), []).append((image.size, result))
        shipped = results[SHIPPED]
        print(subset, name, round(shipped["plain"] / image.size, 4), "->",
              {v: round(r["adapted"] / image.size, 4) for v, r in results.items()}, flush=True)
    lines = [f"# Per-image adaptation of the `photo` model (weights {codec.zoo_model.tag.hex()}), part by part "
             "(ideal bpsp, integer tables)", "",
             f"Command: `python benchmarks/adaptation.py --kodak {args.kodak} --heldout {args.heldout}` "
             f"({time.perf_counter() - t0:.0f} s, one thread). Pooled over each set; \"with its bytes\" adds "
             "the bytes the adaptation takes in the header. Parts alone: the other parts' learning rates "
             "set to 0 (see the script's docstring).", "",
             "| set | images | adaptation | shipped model | adapted | with its bytes | change | adapted images "
             "| choice s/image |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for (subset, variant), results in rows.items():
        size = sum(s for s, _ in results)
        plain = sum(r["plain"] for _, r in results) / size
        adapted_bpsp = sum(r["adapted"] for _, r in results) / size
        with_header = (sum(r["adapted"] + 8 * r["header"] for _, r in results)) / size
        chosen = sum(r["header"] > 0 for _, r in results)
        seconds = sum(r["seconds"] for _, r in results) / len(results)
        lines.append(f"| {subset} | {len(results)} | {variant} | {plain:.4f} | {adapted_bpsp:.4f} | "
                     f"{with_header:.4f} | {100 * (with_header / plain - 1):+.2f} % | {chosen} | {seconds:.2f} |")
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
