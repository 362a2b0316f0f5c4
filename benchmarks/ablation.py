"""Ablation of adaptation levers on top of the shipped ``photo`` model (ideal code lengths).

Each lever is measured alone against the shipped model, on the same images, as the ideal
cost -log2 P of every colour subpixel under the integer tables (bits per subpixel; real
files add the header, about 0.04 %). The levers change only the mixture parameters that
the integer model outputs, so they are evaluated here in numpy with the reference pipeline
of ``tests/reference.py``, before any of them is built into the kernel and the format.

- ``image-logscale``: per image and channel, one log-scale offset (units 1/32) chosen by
  the encoder from -12..12 (an upper bound: chosen on the image itself; 3 header bytes).
- ``online-bias``: per context (channel x activity x texture, 384 contexts), the running
  mean of the coding error of the mixture mean is added to every component's mean;
  updated after each wavefront step, as a decoder could.
- ``online-scale``: per context, a log-scale offset from the running mean of |error| /
  scale, against the logistic's expectation 2 ln 2; updated after each step.
- ``online-select``: per context, the log-scale offset among -6, -3, 0, 3, 6 that would
  have coded the context's recent subpixels in the fewest bits; updated after each step.

Run from the repository root (a few minutes):

    python benchmarks/ablation.py --kodak 6 --heldout 6 --out benchmarks/results/ablation.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import reference  # noqa: E402
from neuralzip.core.ls import fit_ls  # noqa: E402
from neuralzip.core.mixture import MIXTURE  # noqa: E402
from neuralzip.training.train import split  # noqa: E402
from neuralzip.zoo import load  # noqa: E402

LN2X2 = 2 * np.log(2)  # E|x - mean| / scale of a logistic


def model_terms(model, image: np.ndarray):
    """(outputs (n, 12, K), base (n, 3), residuals (n, 3), pixels (n, 3)) in raster order."""
    h, w, _ = image.shape
    ctx = reference.Context.from_image(image, fit_ls(image))
    rows, cols = np.divmod(np.arange(h * w), w)
    feats, _ = ctx.features(rows, cols, model.context)
    out = reference.mlp_outputs(model.mlp, reference.quantize_features(feats))
    pixels, residuals = ctx.pixels.reshape(-1, 3), ctx.residuals.reshape(-1, 3)
    return out, 16 * pixels - residuals, residuals, pixels


def bits(model, mix: reference.Mixture, values: np.ndarray) -> np.ndarray:
    """Ideal bits of ``values`` (n,) under integer mixtures ``mix``."""
    edges = np.stack([values, values + 1, np.full_like(values, 256)], axis=1)
    c = reference.mixture_cdf(mix.prepared(model.tables), model.tables, edges)
    return -np.log2((c[:, 1] - c[:, 0]) / c[:, 2])


def mixtures(out, base, residuals):
    return [reference.channel_mixture(out, ch, base[:, ch], residuals) for ch in range(3)]


def shifted(mix: reference.Mixture, mean=0, logscale=0) -> reference.Mixture:
    return reference.Mixture(mix.mean_q4 + mean, mix.logscale_idx + logscale, mix.logit_q4)


def summary(mix: reference.Mixture) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean (q4) and scale (q4) of each subpixel's mixture."""
    w = np.exp(MIXTURE.logits.value(mix.logit_q4 - mix.logit_q4.max(1, keepdims=True)))
    w /= w.sum(1, keepdims=True)
    log_scale = MIXTURE.log_scales.value(np.clip(mix.logscale_idx, MIXTURE.log_scale_min, MIXTURE.log_scale_max))
    scale = MIXTURE.means.step * np.exp(log_scale)
    return (w * mix.mean_q4).sum(1), (w * scale).sum(1)


def contexts(image: np.ndarray, ch: int, mean_q4: np.ndarray, scale_q4: np.ndarray) -> np.ndarray:
    """Context index 0..127 of each pixel of channel ch: activity (8) x texture (16)."""
    h, w, _ = image.shape
    p = np.pad(image[:, :, ch].astype(np.int64), 1, mode="edge")
    nbrs = [p[1:-1, :-2], p[:-2, 1:-1], p[:-2, :-2], p[:-2, 2:]]  # W, N, NW, NE
    texture = sum((16 * n.reshape(-1) > mean_q4).astype(np.int64) << i for i, n in enumerate(nbrs))
    activity = np.clip(np.floor(np.log2(np.maximum(scale_q4, 1) / 8)), 0, 7).astype(np.int64)
    return activity * 16 + texture


def online(model, image, mixes, pixels, kind: str) -> float:
    """Total bits with an online per-context correction, updated after each wavefront step."""
    h, w, _ = image.shape
    total = 0.0
    for ch in range(3):
        mix = mixes[ch]
        mean, scale = summary(mix)
        ctx = contexts(image, ch, mean, scale)
        acc = np.zeros(128)
        count = np.zeros(128)
        correction = np.zeros(h * w, np.int64)
        for rows, cols in reference.wavefront(h, w):
            idx = rows * w + cols
            c = ctx[idx]
            if kind == "online-bias":
                correction[idx] = np.round(acc[c] / np.maximum(count[c], 1))
                err = 16 * pixels[idx, ch] - (mean[idx] + correction[idx])
                np.add.at(acc, c, err)
            else:
                ratio = (acc[c] + LN2X2 * 4) / (count[c] + 4)  # prior: 4 samples at the expectation
                correction[idx] = np.round(32 * np.log(ratio / LN2X2))
                err = np.abs(16 * pixels[idx, ch] - mean[idx]) / scale[idx]
                np.add.at(acc, c, err)
            np.add.at(count, c, 1)
            full = count >= 256  # keep the statistics recent
            acc[full] /= 2
            count[full] /= 2
        corrected = shifted(mix, mean=correction[:, None]) if kind == "online-bias" else \
            shifted(mix, logscale=correction[:, None])
        total += bits(model, corrected, pixels[:, ch]).sum()
    return total


CANDIDATES = np.array([-6, -3, 0, 3, 6])


def online_select(model, image, mixes, pixels) -> float:
    """Total bits with, per context, the recently best of CANDIDATES log-scale offsets."""
    h, w, _ = image.shape
    total = 0.0
    for ch in range(3):
        mix = mixes[ch]
        cand_bits = np.stack([bits(model, shifted(mix, logscale=d), pixels[:, ch]) for d in CANDIDATES], 1)
        ctx = contexts(image, ch, *summary(mix))
        score = np.zeros((128, CANDIDATES.size))
        for rows, cols in reference.wavefront(h, w):
            idx = rows * w + cols
            c = ctx[idx]
            choice = np.argmin(score[c] - 1e-9 * (CANDIDATES == 0), axis=1)  # ties keep 0
            total += cand_bits[idx, choice].sum()
            np.add.at(score, c, cand_bits[idx])
            score *= 0.999
    return total


def image_logscale(model, mixes, pixels) -> float:
    total = 0.0
    for ch in range(3):
        total += min(bits(model, shifted(mixes[ch], logscale=d), pixels[:, ch]).sum() for d in range(-12, 13, 2))
    return total + 3 * 8


LEVERS = ("image-logscale", "online-bias", "online-scale", "online-select")


def measure(model, image: np.ndarray) -> dict[str, float]:
    out, base, residuals, pixels = model_terms(model, image)
    mixes = mixtures(out, base, residuals)
    n = pixels.size
    result = {"shipped": sum(bits(model, mixes[ch], pixels[:, ch]).sum() for ch in range(3)) / n}
    result["image-logscale"] = image_logscale(model, mixes, pixels) / n
    for kind in ("online-bias", "online-scale"):
        result[kind] = online(model, image, mixes, pixels, kind) / n
    result["online-select"] = online_select(model, image, mixes, pixels) / n
    return result


def image_paths(kodak: int, heldout: int) -> list[tuple[str, str, Path]]:
    """(set, file name, path) of the first ``kodak`` Kodak images and ``heldout`` held-out
    photos of the training folders BSDS500 and Urban100 (``training.train.split``)."""
    data = ROOT.parent / "shared" / "data"
    out = [("kodak", p.name, p) for p in sorted((data / "kodak").glob("*.png"))[:kodak]]
    names = sorted(str(p) for f in ("bsds500", "urban100") for p in (data / "train" / f).glob("*.png"))
    return out + [("held-out", Path(n).name, Path(n)) for n in split(names)[1][:heldout]]


def images(kodak: int, heldout: int) -> list[tuple[str, str, np.ndarray]]:
    """``image_paths`` with each image's uint8 (H, W, 3) pixels instead of its path."""
    return [(s, name, np.asarray(Image.open(p).convert("RGB"))) for s, name, p in image_paths(kodak, heldout)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kodak", type=int, default=6, help="first N Kodak images")
    ap.add_argument("--heldout", type=int, default=6, help="first N held-out training-folder photos")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ablation.md")
    args = ap.parse_args()
    model = load("photo").model
    rows: dict[str, list[tuple[int, dict[str, float]]]] = {}
    t0 = time.perf_counter()
    for subset, name, image in images(args.kodak, args.heldout):
        rows.setdefault(subset, []).append((image.size, measure(model, image)))
        print(subset, name, {k: round(v, 4) for k, v in rows[subset][-1][1].items()}, flush=True)
    lines = [f"# Adaptation levers, measured alone (ideal bpsp, shipped `photo` model, weights {load('photo').tag.hex()})", "",
             f"Command: `python benchmarks/ablation.py --kodak {args.kodak} --heldout {args.heldout}` "
             f"({time.perf_counter() - t0:.0f} s). Pooled over the images of each set; "
             "change relative to the shipped model in brackets.", "",
             "| lever | " + " | ".join(f"{s} ({len(r)} images)" for s, r in rows.items()) + " |",
             "|---|" + "---:|" * len(rows)]
    for lever in ("shipped", *LEVERS):
        cells = []
        for r in rows.values():
            size = sum(s for s, _ in r)
            value = sum(s * m[lever] for s, m in r) / size
            ref = sum(s * m["shipped"] for s, m in r) / size
            cells.append(f"{value:.4f}" + ("" if lever == "shipped" else f" ({100 * (value / ref - 1):+.2f} %)"))
        lines.append(f"| {lever} | " + " | ".join(cells) + " |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
