"""Would a mixture of two shipped models pay at the highest effort (issue 25's effort-max)?

For each validation photo (carved from ``train/`` by ``training.train.split``, never Kodak),
every subpixel's probability under each model, as the compiled kernel's frequency tables
give it (the real tables a file is coded with, per-image LS coefficients included), and
the code length of each model alone and of their mixture with weights a and 1 - a:
-log2(a p1 + (1 - a) p2). With ``--adapt`` each model first gets the per-image adaptation
the default effort's encoder chooses for it (as an encoder coding with both would).

The mixture is what a decoder running both models would code with: the mixed stage tables
are f1 S2 + f2 S1 for tables f1, f2 of row sums S1, S2 (IEEE products of integers, the same
on every machine). It is not built: this measures what it would buy. Run from the
repository root (about 3 s an image on two cores, 6 s with ``--adapt``):

    python benchmarks/ensemble.py --models photo,photo-wide --images 21 --adapt \\
        --out benchmarks/results/ensemble.md
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
from neuralzip.core.codec import Codec, adapted  # noqa: E402
from neuralzip.core.container import Header  # noqa: E402
from neuralzip.core.kernel import image_kernel  # noqa: E402

WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7)  # a: the first model's share


def probabilities(zoo_model: zoo.ZooModel, rgb: np.ndarray, adapt: bool) -> np.ndarray:
    """float64 (H * W * 3,): each subpixel's probability under the model's real tables, in
    decoding order (step, channel, pixel), with the default encoder's LS coefficients and,
    if ``adapt``, its adaptation."""
    codec = Codec(zoo_model)
    coefs = codec.choose_coefs(rgb, 3)[0]
    model = zoo_model.model
    if adapt:
        adaptation = Header.unpack(codec.encode(rgb)[0])[0].adaptation
        model = model if adaptation is None else adapted(model, adaptation)
    kernel = image_kernel(rgb.copy(), coefs, 3, model)
    kernel.compute_residuals()
    rows = rgb.shape[0] * rgb.shape[1] * 3 * 2
    symbols, tables = np.empty(rows, np.int32), np.empty((rows, 16))
    kernel.encode_steps(0, kernel.num_steps(), symbols, tables)
    sizes = np.empty(kernel.num_steps(), np.int32)
    kernel.step_sizes(sizes)
    out, row = [], 0
    for n in sizes:  # per step and channel: n bucket rows, then n value rows
        for _ in range(3):
            buckets, values = tables[row : row + n], tables[row + n : row + 2 * n]
            out.append(values[np.arange(n), symbols[row + n : row + 2 * n]] / buckets.sum(axis=1))
            row += 2 * n
    return np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="photo,photo-wide", help="two shipped models")
    ap.add_argument("--images", type=int, default=21, help="validation photos (non-BSDS first)")
    ap.add_argument("--adapt", action="store_true", help="adapt each model as the default effort does")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ensemble.md")
    args = ap.parse_args()
    names = args.models.split(",")
    models = [zoo.load(name) for name in names]
    bits = {key: 0.0 for key in [*names, *WEIGHTS]}
    subpixels, started = 0, time.time()
    for path in validation_photos(args.images):
        rgb = np.ascontiguousarray(np.asarray(Image.open(path).convert("RGB")))
        p1, p2 = (probabilities(m, rgb, args.adapt) for m in models)
        subpixels += p1.size
        bits[names[0]] += -np.log2(p1).sum()
        bits[names[1]] += -np.log2(p2).sum()
        for a in WEIGHTS:
            bits[a] += -np.log2(a * p1 + (1 - a) * p2).sum()
        print(f"{Path(path).name}: {bits[0.5] / subpixels:.4f} bpsp mixed so far", flush=True)
    best = min(bits[n] for n in names)
    options = f" --models {args.models} --images {args.images}" + (" --adapt" if args.adapt else "")
    lines = [
        f"# A mixture of `{names[0]}` and `{names[1]}` ({args.images} validation photos"
        + (", each model adapted as the default effort's encoder does)" if args.adapt else ", unadapted)"),
        "",
        f"Command: `python benchmarks/ensemble.py{options}` ({time.time() - started:.0f} s). Ideal code lengths "
        "of the real integer tables (the coder adds about 0.1 %, the header nothing here), pooled over the "
        "images; a mixture weighs the first model by a.",
        "",
        "| model | bpsp | change against the better one alone |",
        "|---|---:|---:|",
    ]
    for key in [*names, *WEIGHTS]:
        label = f"`{key}` alone" if key in names else f"mixture, a = {key}"
        lines.append(f"| {label} | {bits[key] / subpixels:.4f} | {100 * (bits[key] / best - 1):+.2f} % |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
