"""Do per-image low-rank adapters (CALLIC's lever) pay on top of today's adaptation?

For each validation photo (carved from ``train/`` by ``training.train.split``, never
Kodak), the real cost of the whole image under the integer model (bits per subpixel,
kernel tables, header bytes of what is stored added) for:

* ``shipped``: the encoder's adaptation at the default effort (``adapt.choose_adaptation``:
  last hidden biases, output biases, output gains; its bytes);
* ``same, N steps``: the same variables fitted in torch for N Adam steps (how far the
  shipped 60 steps are from converged);
* ``+ output rank r`` / ``+ hidden rank r``: the same, plus a rank-r update U V of the
  output layer's (128 x 12K) or the last hidden layer's (128 x 128) weights, scaled per
  output by the layer's largest weight; U and V are quantized to int8 with one float
  scale each, and the integer model gets W + round(U V scale) (what a decoder would
  apply); their bytes, (rows + columns) r + 8, are added;
* ``best of the fits``: per image, the cheapest of the torch fits, as an encoder that
  tried every rank and kept the smallest file would get (an upper bound on what picking
  r per image buys).

Everything is fitted on the encoder's pixel sample (``adapt.sample_terms``) with the
float twin of the mixture (``training.float_model.nll_bits``) and then measured on the
whole image with the integer model, so the rows are real code lengths. Run from the
repository root (about 20 s an image on one core):

    python benchmarks/adapters.py --images 21 --out benchmarks/results/adapters.md
"""

from __future__ import annotations

import argparse
import glob
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from neuralzip import zoo
from neuralzip.core.adapt import _Head, choose_adaptation, sample_terms
from neuralzip.core.adaptation_block import Adaptation
from neuralzip.core.codec import adapted
from neuralzip.core.effort import DEFAULT_EFFORT, effort
from neuralzip.core.intmodel import GAIN_LIMIT, IntegerModel
from neuralzip.training.float_model import nll_bits
from neuralzip.training.train import split

ROOT = Path(__file__).resolve().parent.parent
STEPS = 120  # Adam steps of the torch fits
BATCH = 4096
VARIANTS = {  # name -> (output-layer rank, last-hidden-layer rank)
    f"same variables, {STEPS} steps": (0, 0),
    "+ output rank 1": (1, 0),
    "+ output rank 2": (2, 0),
    "+ output rank 4": (4, 0),
    "+ hidden rank 2": (0, 2),
    "+ hidden rank 4": (0, 4),
}

BEST = "best of the fits above, per image (chosen knowing the whole image's cost)"


def validation_photos(count: int) -> list[str]:
    """The first ``count`` validation photos of ``train/``, the non-BSDS ones first (larger)."""
    _, val = split(sorted(glob.glob(str(ROOT.parent / "shared/data/train/*/*"))))
    return ([p for p in val if "/bsds500/" not in p] + [p for p in val if "/bsds500/" in p])[:count]


def _int8(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """x rounded to int8 levels of one scale (returned dequantized) and its bytes."""
    scale = x.abs().max().clamp_min(1e-12) / 127
    return torch.round(x / scale) * scale, x.numel() + 4


def fit(model: IntegerModel, terms, out_rank: int, hidden_rank: int) -> tuple[IntegerModel, int]:
    """The integer model adapted by a torch fit on ``terms`` (biases, gains, and the
    low-rank updates asked for), and the bytes a file would store for it."""
    mlp = model.mlp
    torch.manual_seed(0)
    head = _Head(mlp, terms.features, terms.base_q4, terms.pixels, 3)
    h = terms.features.astype(np.float64)
    for w, b, frac in zip(mlp.weights[:-2], mlp.biases[:-2], mlp.fracs[:-2]):
        h = np.clip(np.floor((h @ w + b) / 2.0 ** np.asarray(frac)), 0, mlp.act_max)
    t = {
        "h": torch.tensor(h),
        "w2": torch.tensor(mlp.weights[-2] / 2.0 ** np.asarray(mlp.fracs[-2])),
        "b2": torch.tensor(mlp.biases[-2] / 2.0 ** np.asarray(mlp.fracs[-2])),
        "w": torch.tensor(head.weights, dtype=torch.float64),
        "b": torch.tensor(head.bias),
        "base": torch.tensor(terms.base_q4, dtype=torch.float64),
        "x": torch.tensor(terms.pixels, dtype=torch.float64),
    }
    hidden, outputs = t["w2"].shape[1], t["w"].shape[1]
    offsets_h = torch.zeros(hidden, dtype=torch.float64, requires_grad=True)
    offsets_o = torch.zeros(outputs, dtype=torch.float64, requires_grad=True)
    gains = torch.zeros(outputs, dtype=torch.float64, requires_grad=True)
    factors = {
        "out": (out_rank, t["w"], torch.zeros(hidden, out_rank), torch.randn(out_rank, outputs) * 0.1),
        "hid": (hidden_rank, t["w2"], torch.zeros(hidden, hidden_rank), torch.randn(hidden_rank, hidden) * 0.1),
    }
    lora = {
        k: (w.abs().max(0).values, u.double().requires_grad_(), v.double().requires_grad_())
        for k, (r, w, u, v) in factors.items()
        if r
    }
    groups = [{"params": [offsets_h], "lr": 12.8}, {"params": [offsets_o], "lr": 1.0}, {"params": [gains], "lr": 2.56}]
    groups += [{"params": [u, v], "lr": 0.02} for _, u, v in lora.values()]
    opt = torch.optim.Adam(groups)

    def delta(key: str, quantized: bool = False) -> torch.Tensor:
        scale, u, v = lora[key]
        if quantized:
            u, v = _int8(u)[0], _int8(v)[0]
        return (u @ v) * scale

    def bits(rows: torch.Tensor) -> torch.Tensor:
        if "hid" in lora:
            pre = t["h"][rows] @ (t["w2"] + delta("hid")) + t["b2"]
            pre = pre + (torch.floor(pre) - pre).detach()
        else:
            pre = torch.tensor(head.before[rows.numpy()], dtype=torch.float64)
        act = (pre + offsets_h).clamp(0, float(head.act_max))
        w = t["w"] * (1 + gains / 256) + (delta("out") if "out" in lora else 0)
        out = act @ w + t["b"] + offsets_o
        out = out + (torch.round(out) - out).detach()
        return nll_bits(out.view(-1, 12, mlp.components), t["base"][rows], t["x"][rows]).sum()

    order = torch.randperm(len(terms.pixels))
    for step in range(STEPS):
        rows = order[(step * BATCH) % len(order) :][:BATCH]
        opt.zero_grad()
        bits(rows).backward()
        opt.step()
    with torch.no_grad():
        chosen = [
            np.clip(np.round(offsets_h.numpy() / 8) * 8, -(1 << 14), 1 << 14).astype(np.int64),
            np.clip(np.round(offsets_o.numpy()), -(1 << 14), 1 << 14).astype(np.int64),
        ]
        block = Adaptation(
            [None] * (len(mlp.weights) - 2) + chosen,
            np.clip(np.round(gains.numpy()), -GAIN_LIMIT, GAIN_LIMIT).astype(np.int64),
        )
        model, stored = adapted(model, block), len(block.pack())
        weights = list(model.mlp.weights)
        for key, layer in (("out", -1), ("hid", -2)):
            if key in lora:
                units = 2.0 ** (np.asarray(mlp.fracs[layer]) + (8 if key == "out" else 0))
                weights[layer] = weights[layer] + np.round(delta(key, quantized=True).numpy() * units)
                stored += _int8(lora[key][1])[1] + _int8(lora[key][2])[1]
    return replace(model, mlp=replace(model.mlp, weights=weights)), stored


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=21, help="validation photos (non-BSDS first)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "adapters.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    codec = zoo.codec("photo")
    model, search = codec.zoo_model.model, effort(DEFAULT_EFFORT).search
    totals: dict[str, float] = {}
    subpixels, t0 = 0, time.perf_counter()
    for path in validation_photos(args.images):
        image = np.array(Image.open(path).convert("RGB"))
        coefs, _ = codec.choose_coefs(image, 3)
        subpixels += image.size
        shipped = choose_adaptation(model, image, coefs, 3, search)
        stored = 0 if shipped is None else len(shipped.pack())
        costs = {"none": codec._encode_pixels(image, coefs, 3, model, None)[1]}
        tuned = model if shipped is None else adapted(model, shipped)
        costs["shipped"] = codec._encode_pixels(image, coefs, 3, tuned, None)[1] + 8 * stored
        terms = sample_terms(image, coefs, model.context, search.sample)
        for name, (out_rank, hidden_rank) in VARIANTS.items():
            fitted, nbytes = fit(model, terms, out_rank, hidden_rank)
            costs[name] = codec._encode_pixels(image, coefs, 3, fitted, None)[1] + 8 * nbytes
        costs[BEST] = min(bits for name, bits in costs.items() if name in VARIANTS)
        for name, bits in costs.items():
            totals[name] = totals.get(name, 0.0) + bits
        print(Path(path).name, {k: round(v / image.size, 4) for k, v in costs.items()}, flush=True)
    lines = [
        f"# Per-image low-rank adapters against today's adaptation (`photo` {codec.zoo_model.tag.hex()}, "
        f"{args.images} validation photos)",
        "",
        f"Command: `python benchmarks/adapters.py --images {args.images}` ({time.perf_counter() - t0:.0f} s). "
        "Real code lengths of whole images under the integer model, header bytes of what is stored "
        "included, pooled over the images. `shipped` leaves its adaptation out where it does not pay; "
        "the torch fits always store theirs.",
        "",
        "| adaptation | bpsp | change against shipped |",
        "|---|---:|---:|",
    ]
    for name, bits in totals.items():
        lines.append(f"| {name} | {bits / subpixels:.4f} | {100 * (bits / totals['shipped'] - 1):+.2f} % |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
