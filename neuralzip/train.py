"""Training: images -> per-pixel integer terms -> float MixtureMLP -> exported integer model.

Training samples random pixels of all training images at once (the model reads a fixed
causal window, so pixels are independent samples given their context). The validation
split is carved deterministically from the training folders (``split``); Kodak and the
CIFAR-10 test set are never read here.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .analysis import analyse, fit_ls, ls_normal_equations
from .context import LS_TOTAL, N_FEATURES, solve_ls
from .imageio import load_images
from .intmodel import ACT_FRAC, IntegerMLP, IntegerModel
from .likelihood import Tables
from .model import OUTPUT_STEPS, MixtureMLP, nll_bits

WEIGHT_BITS = 20  # exported weights are integers below 2**20 in magnitude


@dataclass
class PixelSet:
    """Training terms of many pixels: features int16 (n, 75), base int16 (n, 3), target uint8 (n, 3)."""

    features: np.ndarray
    base: np.ndarray
    target: np.ndarray

    @classmethod
    def concat(cls, parts: list["PixelSet"]) -> "PixelSet":
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("features", "base", "target")))

    def __len__(self) -> int:
        return self.target.shape[0]


def split(names: list[str], every: int = 12) -> tuple[list[str], list[str]]:
    """Deterministic (train, validation) split by a hash of the file name: ~1/every held out
    (at least one image when there are two or more)."""
    val = [n for n in names if int(hashlib.sha256(Path(n).name.encode()).hexdigest(), 16) % every == 0]
    if not val and len(names) > 1:
        val = names[-1:]
    return [n for n in names if n not in val], val


def image_pixels(image: np.ndarray, coefs: np.ndarray | None, keep: float, seed: int) -> PixelSet:
    """Terms of a random ``keep`` fraction of an image's pixels (per-image LS if coefs is None)."""
    terms = analyse(image, fit_ls(image) if coefs is None else coefs)
    n = terms.pixels.shape[0]
    idx = np.random.default_rng(seed).permutation(n)[: max(1, int(round(n * keep)))]
    return PixelSet(
        terms.features[idx].astype(np.int16),
        terms.base_q4[idx].astype(np.int16),
        terms.pixels[idx].astype(np.uint8),
    )


def _pixels_job(args):
    image, coefs, keep, seed = args
    return image_pixels(image, coefs, keep, seed)


def build_pixels(images: list[np.ndarray], coefs: np.ndarray | None, keep: float, seed: int, jobs: int = 2) -> PixelSet:
    jobs_args = [(im, coefs, keep, seed + i) for i, im in enumerate(images)]
    with ProcessPoolExecutor(jobs) as pool:
        return PixelSet.concat(list(pool.map(_pixels_job, jobs_args, chunksize=4)))


def pooled_ls(images: list[np.ndarray]) -> np.ndarray:
    """One set of LS coefficients fitted to all pixels of ``images`` (the model's default)."""
    total = None
    for im in images:
        normal = ls_normal_equations(im)
        total = normal if total is None else [(a + c, b + d) for (a, b), (c, d) in zip(total, normal)]
    return solve_ls(total)


def _batch(data: PixelSet, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(data.features[idx].astype(np.float32)) / (1 << ACT_FRAC)
    return x, torch.from_numpy(data.base[idx].astype(np.float32)), torch.from_numpy(data.target[idx].astype(np.float32))


@torch.no_grad()
def evaluate(model: MixtureMLP, data: PixelSet, batch: int = 65536) -> float:
    """Float-model NLL in bits per subpixel over all of ``data``."""
    total = 0.0
    for a in range(0, len(data), batch):
        x, base, target = _batch(data, np.arange(a, min(a + batch, len(data))))
        total += nll_bits(model(x), base, target).sum().item()
    return total / (3 * len(data))


def fit(
    model: MixtureMLP,
    train: PixelSet,
    val: PixelSet,
    minutes: float,
    checkpoint: Path,
    lr: float = 2e-3,
    batch: int = 8192,
    seed: int = 0,
    eval_every_s: float = 120.0,
    log=print,
) -> list[dict]:
    """Adam with a cosine schedule over a wall-time budget; returns the learning curve.

    Resumes from ``checkpoint`` if it exists (model, optimizer, elapsed time, curve).
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    elapsed, curve, step = 0.0, [], 0
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        elapsed, curve, step = state["elapsed"], state["curve"], state["step"]
        rng = np.random.default_rng(seed + step)
        log(f"resumed at step {step}, {elapsed / 60:.1f} min")
    budget = minutes * 60
    start = time.time() - elapsed
    last_eval, running = time.time(), None
    if not curve:
        curve.append({"minutes": 0.0, "step": 0, "val_bpsp": evaluate(model, val)})
        log(f"start: val {curve[-1]['val_bpsp']:.4f} bpsp")
    bar = tqdm(total=round(budget), initial=round(elapsed), unit="s", desc="training", disable=None)
    while (elapsed := time.time() - start) < budget:
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * elapsed / budget))
        x, base, target = _batch(train, rng.integers(0, len(train), batch))
        loss = nll_bits(model(x), base, target).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 20 == 0:
            bar.update(round(elapsed) - bar.n)
            bar.set_postfix(step=step, bpsp=f"{running:.4f}")
        if time.time() - last_eval > eval_every_s or time.time() - start >= budget:
            last_eval = time.time()
            curve.append({"minutes": round(elapsed / 60, 2), "step": step, "train_bpsp": round(running, 4), "val_bpsp": evaluate(model, val)})
            log(f"{elapsed / 60:6.1f} min  step {step:7d}  train {running:.4f}  val {curve[-1]['val_bpsp']:.4f} bpsp")
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "elapsed": elapsed, "curve": curve, "step": step}, checkpoint)
    bar.close()
    return curve


def export(model: MixtureMLP, default_coefs: np.ndarray) -> IntegerModel:
    """Quantize a trained float model into the integer model the codec runs."""
    layers = list(model.hidden) + [model.out]
    weights, biases, fracs = [], [], []
    steps = np.repeat(np.array(OUTPUT_STEPS, np.float64), model.components)
    for i, layer in enumerate(layers):
        w = layer.weight.detach().double().numpy().T  # (in, out)
        b = layer.bias.detach().double().numpy()
        if i == len(layers) - 1:
            w, b = w * steps, b * steps
        frac = int(min(WEIGHT_BITS, math.floor(math.log2((2**WEIGHT_BITS - 1) / max(np.abs(w).max(), 1e-9)))))
        weights.append(np.round(w * 2.0**frac))
        biases.append(np.round(b * 2.0 ** (frac + ACT_FRAC)))
        fracs.append(frac)
    mlp = IntegerMLP(weights, biases, fracs, model.components)
    return IntegerModel(mlp, Tables.build(), np.asarray(default_coefs, np.int64))


def load_training_images(paths: list[str]) -> tuple[list[np.ndarray], list[np.ndarray], list[str], list[str]]:
    """(train images, validation images, train names, validation names) from folders/.npy files."""
    names, images = load_images(paths)
    train_names, val_names = split(names)
    by_name = dict(zip(names, images))
    return [by_name[n] for n in train_names], [by_name[n] for n in val_names], train_names, val_names


def train_main(
    paths: list[str],
    out: Path,
    minutes: float,
    hidden: tuple[int, ...] = (128, 128),
    components: int = 6,
    keep: float = 0.5,
    per_image_ls: bool = True,
    init: Path | None = None,
    lr: float = 2e-3,
    seed: int = 0,
    threads: int = 2,
    eval_every_s: float = 300.0,
    log=print,
) -> dict:
    """Full pipeline: data, fit, export to ``out`` (.npz) plus ``out.with_suffix('.json')`` report."""
    torch.set_num_threads(threads)
    t0 = time.time()
    train_imgs, val_imgs, train_names, val_names = load_training_images(paths)
    log(f"{len(train_imgs)} training images, {len(val_imgs)} validation images")
    default = pooled_ls(train_imgs[:: max(1, len(train_imgs) // 50)])
    coefs = None if per_image_ls else default
    jobs = os.cpu_count() or 1
    train = build_pixels(train_imgs, coefs, keep, seed, jobs=jobs)
    val = build_pixels(val_imgs, coefs, 1.0, seed + 10**6, jobs=jobs)
    log(f"{len(train):,} training pixels, {len(val):,} validation pixels ({time.time() - t0:.0f} s)")
    model = MixtureMLP(N_FEATURES, hidden, components)
    if init is not None:
        model.load_state_dict(torch.load(init, weights_only=False)["model"])
    checkpoint = out.with_suffix(".ckpt")
    curve = fit(model, train, val, minutes, checkpoint, lr=lr, seed=seed, eval_every_s=eval_every_s, log=log)
    intmodel = export(model, default)
    np.savez_compressed(out, **intmodel.arrays())
    report = {
        "architecture": {"features": N_FEATURES, "hidden": list(hidden), "components": components, "ls_coefs": LS_TOTAL},
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_images": len(train_imgs),
        "val_images": val_names,
        "train_pixels": len(train),
        "per_image_ls": per_image_ls,
        "minutes": minutes,
        "steps": curve[-1]["step"],
        "wall_s": round(time.time() - t0),
        "curve": curve,
        "val_bpsp_float": curve[-1]["val_bpsp"],
    }
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    return report


def publish(npz: Path, name: str, command: str, report: dict, val_paths: list[str] | None = None,
            weights: Path = Path("weights")) -> dict:
    """Copy an exported model into ``weights/`` and write its manifest entry.

    The entry records how the model was made (``command``, ``report``) and, measured here,
    real-file and NLL bpsp of the integer model on the validation images of ``val_paths``.
    """
    from .codec import Codec
    from .imageio import read_image
    from .zoo import ZooModel

    weights.mkdir(exist_ok=True)
    target = weights / f"{name}.npz"
    target.write_bytes(Path(npz).read_bytes())
    sha = hashlib.sha256(target.read_bytes()).hexdigest()
    entry = {"file": target.name, "sha256": sha, "command": command,
             **{k: v for k, v in report.items() if k not in ("val_images",)}}
    if val_paths:
        codec = Codec(ZooModel(name, sha, IntegerModel.load(target)))
        t0 = time.time()
        stats = [codec.encode(read_image(p))[1] for p in val_paths]
        sub = sum(s.subpixels for s in stats)
        entry["validation"] = {
            "images": len(val_paths),
            "bpsp": round(sum(8 * s.file_bytes for s in stats) / sub, 4),
            "nll_bpsp": round(sum(s.nll_bits for s in stats) / sub, 4),
            "encode_s": round(time.time() - t0, 1),
        }
    manifest_path = weights / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest[name] = entry
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return entry
