"""Training: images -> per-pixel integer terms -> float MixtureMLP -> exported integer model.

Training samples random pixels of all training images at once (the model reads a fixed
causal window, so pixels are independent samples given their context). The validation
split is carved deterministically from the training folders (``split``); Kodak and the
CIFAR-10 test set are never read here.

Under ``torchrun --nproc_per_node=N -m neuralzip train ...`` training is data-parallel
(``DistributedDataParallel``): NCCL with one GPU per process where CUDA is available, else
gloo on the CPU. Each process samples its own pixels (seeded by its rank), gradients are
averaged, and every process follows rank 0's clock (learning-rate schedule and end of the
budget), so all hold identical weights; only rank 0 evaluates, logs and writes the
checkpoint, the export and the report. Resuming works as in one process (rank 0 reads the
checkpoint and sends it to the others).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from ..atomic import atomic_output
from ..core.context import solve_ls
from ..core.intmodel import IntegerMLP, IntegerModel
from ..core.ls import fit_ls, ls_normal_equations
from ..core.tables import Tables
from ..core.terms import analyse
from ..core.units import ACT_FRAC, DEFAULT_CONTEXT, LS_TOTAL, OUTPUT_STEPS, n_features
from ..images import load_images
from .float_model import MixtureMLP, nll_bits

WEIGHT_BITS = 20  # exported weights are integers below 2**20 in magnitude


@dataclass
class PixelSet:
    """Training terms of many pixels: features int16 (n, n_features), base int16 (n, 3), target uint8 (n, 3)."""

    features: np.ndarray
    base: np.ndarray
    target: np.ndarray

    @classmethod
    def concat(cls, parts: list[PixelSet]) -> PixelSet:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("features", "base", "target")))

    def __len__(self) -> int:
        return self.target.shape[0]


@dataclass
class Ranks:
    """This process's place in a torchrun job (rank 0 of 1 without torchrun) and its device."""

    rank: int = 0
    world: int = 1
    local_world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return dist.is_available() and dist.is_initialized()

    def follow_rank0(self, value: float) -> float:
        """Rank 0's ``value`` in every process (the clock that schedules all of them)."""
        if not self.distributed:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.broadcast(t, 0)
        return float(t.item())

    def from_rank0(self, obj):
        """Rank 0's ``obj`` (any picklable object) in every process."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, 0, device=self.device)
        return box[0]

    def gather(self, obj) -> list:
        """``obj`` of every rank, in rank order."""
        if not self.distributed:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out


def start_ranks() -> Ranks:
    """Join the process group when torchrun started this process (``RANK``, ``WORLD_SIZE``
    and ``LOCAL_RANK`` set): NCCL on GPU ``LOCAL_RANK`` where CUDA is available, else gloo."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return Ranks()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_WORLD_SIZE", 1)), device)


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of a model's parameters and buffers, bit for bit."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def split(names: list[str], every: int = 12) -> tuple[list[str], list[str]]:
    """Deterministic (train, validation) split by a hash of the file name: ~1/every held out
    (at least one image when there are two or more)."""
    val = [n for n in names if int(hashlib.sha256(Path(n).name.encode()).hexdigest(), 16) % every == 0]
    if not val and len(names) > 1:
        val = names[-1:]
    return [n for n in names if n not in val], val


def image_pixels(
    image: np.ndarray, coefs: np.ndarray | None, keep: float, seed: int, context: int = DEFAULT_CONTEXT
) -> PixelSet:
    """Terms of a random ``keep`` fraction of an image's pixels (per-image LS if coefs is None)."""
    terms = analyse(image, fit_ls(image) if coefs is None else coefs, context)
    n = terms.pixels.shape[0]
    idx = np.random.default_rng(seed).permutation(n)[: max(1, int(round(n * keep)))]
    return PixelSet(
        terms.features[idx].astype(np.int16),
        terms.base_q4[idx].astype(np.int16),
        terms.pixels[idx].astype(np.uint8),
    )


def _pixels_job(args):
    return image_pixels(*args)


def build_pixels(
    images: list[np.ndarray],
    coefs: np.ndarray | None,
    keep: float,
    seed: int,
    jobs: int = 2,
    context: int = DEFAULT_CONTEXT,
) -> PixelSet:
    jobs_args = [(im, coefs, keep, seed + i, context) for i, im in enumerate(images)]
    with ProcessPoolExecutor(jobs) as pool:
        return PixelSet.concat(list(pool.map(_pixels_job, jobs_args, chunksize=4)))


def pooled_ls(images: list[np.ndarray]) -> np.ndarray:
    """One set of LS coefficients fitted to all pixels of ``images`` (the model's default)."""
    total = None
    for im in images:
        normal = ls_normal_equations(im)
        total = normal if total is None else [(a + c, b + d) for (a, b), (c, d) in zip(total, normal)]
    return solve_ls(total)


def _batch(
    data: PixelSet, idx: np.ndarray, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(data.features[idx].astype(np.float32)) / (1 << ACT_FRAC)
    tensors = (
        x,
        torch.from_numpy(data.base[idx].astype(np.float32)),
        torch.from_numpy(data.target[idx].astype(np.float32)),
    )
    return tensors if device is None or device.type == "cpu" else tuple(t.to(device) for t in tensors)


@torch.no_grad()
def evaluate(model: MixtureMLP, data: PixelSet, batch: int = 65536) -> float:
    """Float-model NLL in bits per subpixel over all of ``data``."""
    total = 0.0
    device = next(model.parameters()).device
    for a in range(0, len(data), batch):
        x, base, target = _batch(data, np.arange(a, min(a + batch, len(data))), device)
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
    ranks: Ranks | None = None,
) -> list[dict]:
    """Adam with a cosine schedule over a wall-time budget; returns the learning curve.

    Resumes from ``checkpoint`` if it exists (model, optimizer, elapsed time, curve).
    With ``ranks`` of a torchrun job, trains data-parallel: ``train`` is this rank's own
    pixels, batches are drawn with a rank-seeded generator, and rank 0 alone evaluates on
    ``val`` (None elsewhere), logs and writes the checkpoint. Curve points after the start
    also give this run's training speed, ``pixels_per_s`` (all ranks together).
    """
    ranks = ranks or Ranks()
    torch.manual_seed(seed)

    def batch_rng(offset: int) -> np.random.Generator:  # rank 0 draws what one process would
        return np.random.default_rng(seed + offset if ranks.rank == 0 else [seed + offset, ranks.rank])

    rng = batch_rng(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    elapsed, curve, step = 0.0, [], 0
    state = ranks.from_rank0(
        torch.load(checkpoint, weights_only=False, map_location="cpu") if ranks.main and checkpoint.exists() else None
    )
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        elapsed, curve, step = state["elapsed"], state["curve"], state["step"]
        rng = batch_rng(step)
        log(f"resumed at step {step}, {elapsed / 60:.1f} min")
    trained = model
    if ranks.distributed:
        trained = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[ranks.device.index] if ranks.device.type == "cuda" else None
        )

    def save_point(elapsed: float) -> None:
        speed = (step - first_step) * batch * ranks.world / max(time.time() - t_first, 1e-9)
        curve.append(
            {
                "minutes": round(elapsed / 60, 2),
                "step": step,
                "train_bpsp": round(running, 4),
                "val_bpsp": evaluate(model, val),
                "pixels_per_s": round(speed),
            }
        )
        log(
            f"{elapsed / 60:6.1f} min  step {step:7d}  train {running:.4f}  val {curve[-1]['val_bpsp']:.4f} bpsp"
            f"  ({speed:,.0f} pixels/s)"
        )
        with atomic_output(checkpoint, overwrite=True) as tmp:
            torch.save(
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "elapsed": elapsed,
                    "curve": curve,
                    "step": step,
                },
                tmp,
            )

    budget = minutes * 60
    start = time.time() - elapsed
    last_eval, running = time.time(), None
    if not curve and ranks.main:
        curve.append({"minutes": 0.0, "step": 0, "val_bpsp": evaluate(model, val)})
        log(f"start: val {curve[-1]['val_bpsp']:.4f} bpsp")
    bar = tqdm(
        total=round(budget), initial=round(elapsed), unit="s", desc="training", disable=None if ranks.main else True
    )
    first_step, t_first = step, time.time()
    # every rank follows rank 0's clock: the same learning rates, and the same last step
    while (elapsed := ranks.follow_rank0(time.time() - start)) < budget:
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * elapsed / budget))
        x, base, target = _batch(train, rng.integers(0, len(train), batch), ranks.device)
        loss = nll_bits(trained(x), base, target).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 20 == 0:
            bar.update(round(elapsed) - bar.n)
            bar.set_postfix(step=step, bpsp=f"{running:.4f}")
        if ranks.main and time.time() - last_eval > eval_every_s:
            last_eval = time.time()
            save_point(time.time() - start)
    if ranks.main and running is not None and curve[-1]["step"] != step:  # the end of the budget
        save_point(time.time() - start)
    bar.close()
    return curve


def export(model: MixtureMLP, default_coefs: np.ndarray, context: int = DEFAULT_CONTEXT) -> IntegerModel:
    """Quantize a trained float model into the integer model the codec runs."""
    layers = list(model.hidden) + [model.out]
    weights, biases, fracs = [], [], []
    steps = np.repeat(np.array(OUTPUT_STEPS, np.float64), model.components)
    for i, layer in enumerate(layers):
        w = layer.weight.detach().cpu().double().numpy().T  # (in, out)
        b = layer.bias.detach().cpu().double().numpy()
        if i == len(layers) - 1:
            w, b = w * steps, b * steps
        frac = int(min(WEIGHT_BITS, math.floor(math.log2((2**WEIGHT_BITS - 1) / max(np.abs(w).max(), 1e-9)))))
        weights.append(np.round(w * 2.0**frac))
        biases.append(np.round(b * 2.0 ** (frac + ACT_FRAC)))
        fracs.append(frac)
    mlp = IntegerMLP(weights, biases, fracs, model.components)
    return IntegerModel(mlp, Tables.build(), np.asarray(default_coefs, np.int64), context)


def float_state(intmodel: IntegerModel, context: int | None = None) -> dict[str, torch.Tensor]:
    """A ``MixtureMLP`` state dict that exports back to ``intmodel`` (inverse of ``export``):
    to fine-tune a shipped model. With a wider ``context`` than the model's, the new inputs
    get zero weights, so the float model starts as exactly the shipped one."""
    mlp = intmodel.mlp
    steps = np.repeat(np.array(OUTPUT_STEPS, np.float64), mlp.components)
    names = [f"hidden.{i}" for i in range(len(mlp.weights) - 1)] + ["out"]
    state = {"steps": torch.tensor(OUTPUT_STEPS, dtype=torch.float32).repeat_interleave(mlp.components)}
    for i, (name, w, b, frac) in enumerate(zip(names, mlp.weights, mlp.biases, mlp.fracs)):
        w, b = w / 2.0**frac, b / 2.0 ** (frac + ACT_FRAC)
        if i == len(names) - 1:
            w, b = w / steps, b / steps
        state[f"{name}.weight"] = torch.tensor(w.T, dtype=torch.float32)
        state[f"{name}.bias"] = torch.tensor(b, dtype=torch.float32)
    if context is not None and context != intmodel.context:
        if context < intmodel.context:
            raise ValueError(f"a context {intmodel.context} model cannot start a context {context} one")
        first = state[f"{names[0]}.weight"]
        grown = torch.zeros(first.shape[0], n_features(context))
        grown[:, : first.shape[1]] = first  # each context's inputs start with the previous one's
        state[f"{names[0]}.weight"] = grown
    return state


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
    context: int = DEFAULT_CONTEXT,
) -> dict:
    """Full pipeline: data, fit, export to ``out`` (.npz) plus ``out.with_suffix('.json')`` report.

    Started by torchrun, every process runs this (see the module docstring): rank 0 writes
    the files, every rank returns rank 0's report, and the other ranks print nothing on
    stdout. The report lists every rank's weights digest (``rank_weights_sha256``).
    """
    ranks = start_ranks()
    try:
        return _train(
            paths,
            out,
            minutes,
            hidden,
            components,
            keep,
            per_image_ls,
            init,
            lr,
            seed,
            threads,
            eval_every_s,
            log,
            ranks,
            context,
        )
    finally:
        if ranks.distributed:
            # every rank past its last collective before any leaves the group: a rank that
            # tears gloo down while its peer still talks to it aborts ("terminate called")
            with contextlib.suppress(RuntimeError):
                dist.barrier()
            dist.destroy_process_group()


def _train(
    paths,
    out,
    minutes,
    hidden,
    components,
    keep,
    per_image_ls,
    init,
    lr,
    seed,
    threads,
    eval_every_s,
    log,
    ranks: Ranks,
    context: int,
) -> dict:
    if not ranks.main:
        log = lambda *_: None  # noqa: E731
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - e.g. the command line's closing line
    torch.set_num_threads(threads)
    t0 = time.time()
    train_imgs, val_imgs, train_names, val_names = load_training_images(paths)
    log(
        f"{len(train_imgs)} training images, {len(val_imgs)} validation images"
        + (f", {ranks.world} processes on {ranks.device.type}" if ranks.distributed else "")
    )
    default = pooled_ls(train_imgs[:: max(1, len(train_imgs) // 50)])
    coefs = None if per_image_ls else default
    jobs = max(1, (os.cpu_count() or 1) // ranks.local_world)
    # each rank keeps its own random pixels of every image (rank 0 those of one process)
    train = build_pixels(train_imgs, coefs, keep, seed + ranks.rank * 10**9, jobs=jobs, context=context)
    val = build_pixels(val_imgs, coefs, 1.0, seed + 10**6, jobs=jobs, context=context) if ranks.main else None
    log(
        f"{len(train):,} training pixels{' per process' if ranks.world > 1 else ''}, "
        f"{len(val) if val is not None else 0:,} validation pixels ({time.time() - t0:.0f} s)"
    )
    model = MixtureMLP(n_features(context), hidden, components)
    if init is not None and Path(init).suffix == ".npz":  # a shipped or exported integer model
        model.load_state_dict(float_state(IntegerModel.load(init), context))
    elif init is not None:
        model.load_state_dict(torch.load(init, weights_only=False, map_location="cpu")["model"])
    model.to(ranks.device)
    checkpoint = out.with_suffix(".ckpt")
    curve = fit(
        model, train, val, minutes, checkpoint, lr=lr, seed=seed, eval_every_s=eval_every_s, log=log, ranks=ranks
    )
    digests = ranks.gather(weights_digest(model))
    if not ranks.main:
        return ranks.from_rank0(None)
    intmodel = export(model, default, context)
    np.savez_compressed(out, **intmodel.arrays())
    report = {
        "architecture": {
            "context": context,
            "features": n_features(context),
            "hidden": list(hidden),
            "components": components,
            "ls_coefs": LS_TOTAL,
        },
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_images": len(train_imgs),
        "val_images": val_names,
        "train_pixels": len(train),
        "per_image_ls": per_image_ls,
        "minutes": minutes,
        "steps": curve[-1]["step"],
        "processes": ranks.world,
        "device": ranks.device.type,
        "pixels_per_s": curve[-1].get("pixels_per_s"),
        "rank_weights_sha256": digests,
        "wall_s": round(time.time() - t0),
        "curve": curve,
        "val_bpsp_float": curve[-1]["val_bpsp"],
    }
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    return ranks.from_rank0(report)
