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
from typing import Any, cast

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from ..atomic import atomic_output
from ..core.context import solve_ls
from ..core.intmodel import IntegerMLP, IntegerModel
from ..core.ls import fit_ls, ls_normal_equations
from ..core.mixture import MIXTURE
from ..core.tables import Tables
from ..core.terms import analyse
from ..core.units import ACT_FRAC, DEFAULT_CONTEXT, LS_TOTAL, n_features
from ..images import load_images
from .float_model import ACT_MAX, MixtureMLP, nll_bits

WEIGHT_BITS = 20  # exported weights are integers below 2**20 in magnitude
NARROW_SAMPLE = 1 << 16  # training pixels, spread over the images, that rank the units kept by narrow()


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
class PixelTensors:
    """A ``PixelSet`` as torch tensors on the training device (shared with numpy on the CPU),
    so that batches are gathered where the model runs."""

    features: torch.Tensor
    base: torch.Tensor
    target: torch.Tensor

    @classmethod
    def on(cls, data: PixelSet, device: torch.device) -> PixelTensors:
        return cls(*(torch.from_numpy(getattr(data, f)).to(device) for f in ("features", "base", "target")))

    def __len__(self) -> int:
        return self.target.shape[0]

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(inputs float (n, n_features) in units of 1, base float (n, 3) q4, target float (n, 3)) of rows ``idx``."""
        return self.features[idx].float() / (1 << ACT_FRAC), self.base[idx].float(), self.target[idx].float()


@dataclass(frozen=True)
class Settings:
    """A training stretch's choices besides its data and output (the ``neuralzip train`` options)."""

    minutes: float = 30.0
    hidden: tuple[int, ...] = (128, 128)
    components: int = 6
    keep: float = 0.5
    per_image_ls: bool = True
    init: Path | None = None
    lr: float = 2e-3
    batch: int = 8192
    seed: int = 0
    threads: int = 2
    eval_every_s: float = 300.0
    context: int = DEFAULT_CONTEXT
    device: str = "cpu"
    command: str = ""  # the command line that started this stretch, kept in the training's history

    @classmethod
    def of_options(cls, hidden: str, global_ls: bool, init: str | None, eval_every: float, **options: Any) -> Settings:
        """The settings that ``neuralzip train``'s options give (``--hidden 128,128``,
        ``--global-ls``, ``--init``, ``--eval-every``; the others by their own names)."""
        return cls(
            hidden=tuple(int(h) for h in hidden.split(",")),
            per_image_ls=not global_ls,
            init=Path(init) if init else None,
            eval_every_s=eval_every,
            **options,
        )


@dataclass
class History:
    """A training's learning curve (one point per evaluation) and its stretches (one record
    per run that trained it: command, device, steps, minutes, wall time, validation before
    and after), kept in the checkpoint across resumed runs."""

    curve: list[dict]
    stretches: list[dict]


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
    def device_name(self) -> str | None:
        """The GPU's name where this process trains on one, else None."""
        return torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else None

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


def start_ranks(single_device: str = "cpu") -> Ranks:
    """Join the process group when torchrun started this process (``RANK``, ``WORLD_SIZE``
    and ``LOCAL_RANK`` set): NCCL on GPU ``LOCAL_RANK`` where CUDA is available, else gloo.
    A single process trains on ``single_device``."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return Ranks(device=torch.device(single_device))
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
    total = ls_normal_equations(images[0])
    for im in images[1:]:
        total = [(a + c, b + d) for (a, b), (c, d) in zip(total, ls_normal_equations(im))]
    return solve_ls(total)


@torch.no_grad()
def evaluate(model: MixtureMLP, data: PixelTensors, batch: int = 65536) -> float:
    """Float-model NLL in bits per subpixel over all of ``data``."""
    total = 0.0
    for a in range(0, len(data), batch):
        x, base, target = data.batch(torch.arange(a, min(a + batch, len(data)), device=data.target.device))
        total += nll_bits(model(x), base, target).sum().item()
    return total / (3 * len(data))


@dataclass
class Progress:
    """Where a training stands, as its checkpoint keeps it beside the model and optimizer:
    optimisation time so far (s), steps, and its history (``History``)."""

    elapsed: float = 0.0
    step: int = 0
    history: History = field(default_factory=lambda: History([], []))

    @classmethod
    def resume(cls, checkpoint: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, ranks: Ranks) -> Progress:
        """The progress in ``checkpoint`` (rank 0's, to every rank), loading its model and
        optimizer states; a fresh one where there is no checkpoint."""
        found = ranks.main and checkpoint.exists()
        state = ranks.from_rank0(torch.load(checkpoint, weights_only=False, map_location="cpu") if found else None)
        if state is None:
            return cls()
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        return cls(state["elapsed"], state["step"], History(state["curve"], state.get("stretches", [])))

    def save(self, checkpoint: Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
        with atomic_output(checkpoint, overwrite=True) as tmp:
            torch.save(
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "elapsed": self.elapsed,
                    "curve": self.history.curve,
                    "stretches": self.history.stretches,
                    "step": self.step,
                },
                tmp,
            )

    def begin_stretch(self, command: str, ranks: Ranks) -> None:
        """Record this run as the history's next stretch (its end is filled in at each point)."""
        self.history.stretches.append(
            {
                "command": command,
                "device": ranks.device_name or ranks.device.type,
                "processes": ranks.world,
                "from_step": self.step,
                "from_minutes": round(self.elapsed / 60, 2),
                "val_before": self.history.curve[-1]["val_bpsp"],
            }
        )

    def add_point(self, train_bpsp: float, val_bpsp: float, pixels_per_s: float, wall_s: float) -> None:
        """A point of the learning curve at the current step, which also ends this stretch so far."""
        point = {"minutes": round(self.elapsed / 60, 2), "step": self.step, "train_bpsp": round(train_bpsp, 4)}
        self.history.curve.append({**point, "val_bpsp": val_bpsp, "pixels_per_s": round(pixels_per_s)})
        self.history.stretches[-1].update(
            to_step=self.step, to_minutes=point["minutes"], val_after=val_bpsp, wall_s=round(wall_s)
        )


def fit(
    model: MixtureMLP,
    train: PixelTensors,
    val: PixelTensors | None,
    checkpoint: Path,
    settings: Settings,
    log=print,
    ranks: Ranks | None = None,
    started: float | None = None,
) -> History:
    """Adam with a cosine schedule over ``settings.minutes`` of wall time (peak rate
    ``settings.lr``, ``settings.batch`` pixels a step, validation and checkpoint every
    ``settings.eval_every_s``); returns the training's history, this run (``settings.command``,
    begun at ``started`` by ``time.time()``, data preparation included) its last stretch.

    Resumes from ``checkpoint`` if it exists (``Progress``). With ``ranks`` of a torchrun
    job, trains data-parallel: ``train`` is this rank's own pixels, batches are drawn with a
    rank-seeded generator, and rank 0 alone evaluates on ``val`` (None elsewhere), logs and
    writes the checkpoint. Curve points after the start also give this run's training
    speed, ``pixels_per_s`` (all ranks together).
    """
    ranks = ranks or Ranks()
    seed, batch, lr = settings.seed, settings.batch, settings.lr
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    progress = Progress.resume(checkpoint, model, opt, ranks)
    if progress.step:
        log(f"resumed at step {progress.step}, {progress.elapsed / 60:.1f} min")
    # rank 0 draws the batches one process would
    rng = np.random.default_rng(seed + progress.step if ranks.rank == 0 else [seed + progress.step, ranks.rank])
    trained: torch.nn.Module = model
    if ranks.distributed:
        trained = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[ranks.device.index] if ranks.device.type == "cuda" else None
        )
    curve = progress.history.curve
    if not curve and val is not None:  # rank 0
        curve.append({"minutes": 0.0, "step": 0, "val_bpsp": evaluate(model, val)})
        log(f"start: val {curve[-1]['val_bpsp']:.4f} bpsp")
    if ranks.main:
        progress.begin_stretch(settings.command, ranks)
    run_started = time.time() if started is None else started
    budget, start = settings.minutes * 60, time.time() - progress.elapsed
    first_step, t_first, last_eval = progress.step, time.time(), time.time()
    running: torch.Tensor | None = None

    def add_point() -> None:  # rank 0: evaluate, log, checkpoint
        assert running is not None and val is not None
        speed = (progress.step - first_step) * batch * ranks.world / max(time.time() - t_first, 1e-9)
        progress.elapsed = time.time() - start
        progress.add_point(float(running), evaluate(model, val), speed, time.time() - run_started)
        log(
            f"{progress.elapsed / 60:6.1f} min  step {progress.step:7d}  train {float(running):.4f}  "
            f"val {curve[-1]['val_bpsp']:.4f} bpsp  ({speed:,.0f} pixels/s)"
        )
        progress.save(checkpoint, model, opt)

    quiet = None if ranks.main else True  # None: tqdm shows itself on a terminal only
    bar = tqdm(total=round(budget), initial=round(progress.elapsed), unit="s", desc="training", disable=quiet)
    # every rank follows rank 0's clock: the same learning rates, and the same last step
    while (elapsed := ranks.follow_rank0(time.time() - start)) < budget:
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * elapsed / budget))
        x, base, target = train.batch(torch.from_numpy(rng.integers(0, len(train), batch)).to(ranks.device))
        loss = nll_bits(trained(x), base, target).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        progress.step += 1
        # kept on the device: no step waits for the GPU, only the progress bar every 20th
        running = loss.detach() if running is None else 0.98 * running + 0.02 * loss.detach()
        if progress.step % 20 == 0:
            bar.update(round(elapsed) - bar.n)
            bar.set_postfix(step=progress.step, bpsp=f"{float(running):.4f}")
        if ranks.main and time.time() - last_eval > settings.eval_every_s:
            last_eval = time.time()
            add_point()
    if ranks.main and running is not None and curve[-1]["step"] != progress.step:  # the end of the budget
        add_point()
    bar.close()
    return progress.history


def export(model: MixtureMLP, default_coefs: np.ndarray, context: int = DEFAULT_CONTEXT) -> IntegerModel:
    """Quantize a trained float model into the integer model the codec runs."""
    layers = [cast(torch.nn.Linear, layer) for layer in model.hidden] + [model.out]
    weights, biases, fracs = [], [], []
    steps = np.repeat(np.array(MIXTURE.steps, np.float64), model.components)
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
    steps = np.repeat(np.array(MIXTURE.steps, np.float64), mlp.components)
    names = [f"hidden.{i}" for i in range(len(mlp.weights) - 1)] + ["out"]
    state = {"steps": torch.tensor(MIXTURE.steps, dtype=torch.float32).repeat_interleave(mlp.components)}
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


def hidden_layers(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of the hidden layers of a ``MixtureMLP`` state dict, in order ("hidden.0", ...)."""
    return sorted(k[: -len(".weight")] for k in state if k.startswith("hidden.") and k.endswith(".weight"))


def widen(state: dict[str, torch.Tensor], hidden: tuple[int, ...], seed: int = 0) -> dict[str, torch.Tensor]:
    """``state`` of a ``MixtureMLP`` with hidden layers grown to the widths ``hidden``,
    computing exactly what it did: each new unit gets small random input weights and zero
    weights into the next layer. The weights out of new units learn from the first step,
    all other new weights from the second."""
    names = hidden_layers(state)
    if len(names) != len(hidden):
        raise ValueError(f"a model of {len(names)} hidden layers cannot grow into {len(hidden)}")
    grown = dict(state)
    generator = torch.Generator().manual_seed(seed)
    n_in = state[f"{names[0]}.weight"].shape[1]
    for name, width in zip(names + ["out"], list(hidden) + [state["out.weight"].shape[0]]):
        w, b = state[f"{name}.weight"], state[f"{name}.bias"]
        if width < w.shape[0]:
            raise ValueError(f"{name} has {w.shape[0]} units: it cannot shrink to {width}")
        new_w = torch.zeros(width, n_in)
        new_w[: w.shape[0], : w.shape[1]] = w  # old units read no new input
        if width > w.shape[0]:
            new_w[w.shape[0] :] = torch.randn(width - w.shape[0], n_in, generator=generator) * (0.1 / math.sqrt(n_in))
        grown[f"{name}.weight"], grown[f"{name}.bias"] = new_w, torch.cat([b, torch.zeros(width - b.shape[0])])
        n_in = width
    return grown


@torch.no_grad()
def narrow(
    state: dict[str, torch.Tensor], hidden: tuple[int, ...], components: int, x: torch.Tensor
) -> dict[str, torch.Tensor]:
    """``state`` of a ``MixtureMLP`` pruned to hidden widths ``hidden`` and ``components``
    mixture components, to start a smaller model near the larger one's function. On the
    inputs ``x`` (n, n_features, in units of 1), each layer keeps the units whose mean
    |activation| times the norm of their weights into the next layer is largest, and folds the
    mean output of the dropped ones into the next layer's biases; the output keeps the
    components of largest mean mixture weight (the softmax renormalises over them)."""
    names = hidden_layers(state)
    if len(names) != len(hidden):
        raise ValueError(f"a model of {len(names)} hidden layers cannot narrow into {len(hidden)}")
    old_k = state["out.weight"].shape[0] // MIXTURE.rows
    if not 1 <= components <= old_k:
        raise ValueError(f"a model of {old_k} components cannot narrow to {components}")
    big = MixtureMLP(x.shape[1], tuple(state[f"{n}.weight"].shape[0] for n in names), old_k)
    big.load_state_dict(state)
    logits = MIXTURE.logits.value(MIXTURE.logits.of(big(x)))  # (n, channels, K), nats
    keep_k = torch.softmax(logits, dim=2).mean(dim=(0, 1)).argsort(descending=True)[:components].sort().values
    rows = (torch.arange(MIXTURE.rows)[:, None] * old_k + keep_k[None, :]).reshape(-1)  # row r, component i: r * K + i
    out = dict(state)
    out["out.weight"], out["out.bias"] = state["out.weight"][rows], state["out.bias"][rows]
    out["steps"] = torch.tensor(MIXTURE.steps, dtype=torch.float32).repeat_interleave(components)
    h = x
    for layer, (name, width) in enumerate(zip(names, hidden)):
        w, b = out[f"{name}.weight"], out[f"{name}.bias"]
        h = torch.relu(h @ w.T + b).clamp(max=ACT_MAX)
        following = names[layer + 1] if layer + 1 < len(names) else "out"
        w_next = out[f"{following}.weight"]
        keep = (h.abs().mean(dim=0) * w_next.norm(dim=0)).argsort(descending=True)[:width].sort().values
        dropped = torch.ones(w.shape[0], dtype=torch.bool)
        dropped[keep] = False
        out[f"{following}.bias"] = out[f"{following}.bias"] + w_next[:, dropped] @ h[:, dropped].mean(dim=0)
        out[f"{following}.weight"] = w_next[:, keep]
        out[f"{name}.weight"], out[f"{name}.bias"] = w[keep], b[keep]
        h = h[:, keep]
    return out


def load_training_images(
    paths: list[str], val_paths: list[str] | None = None
) -> tuple[list[np.ndarray], list[np.ndarray], list[str], list[str]]:
    """(train images, validation images, train names, validation names) from folders/.npy
    files: validation carved from ``paths`` (``split``), or all of ``val_paths`` where given."""
    names, images = load_images(paths)
    if val_paths:
        val_names, val_images = load_images(val_paths)
        return images, val_images, names, val_names
    train_names, val_names = split(names)
    by_name = dict(zip(names, images))
    return [by_name[n] for n in train_names], [by_name[n] for n in val_names], train_names, val_names


def train_main(paths: list[str], out: Path, settings: Settings, val_paths: list[str] | None = None, log=print) -> dict:
    """Full pipeline: data, fit, export to ``out`` (.npz) plus ``out.with_suffix('.json')`` report.

    Validation is carved from ``paths`` unless ``val_paths`` names it. Started by torchrun,
    every process runs this (see the module docstring): rank 0 writes the files, every rank
    returns rank 0's report, and the other ranks print nothing on stdout. The report lists
    every rank's weights digest (``rank_weights_sha256``).
    """
    ranks = start_ranks(settings.device)
    try:
        return _train(paths, val_paths, out, settings, log, ranks)
    finally:
        if ranks.distributed:
            # every rank past its last collective before any leaves the group: a rank that
            # tears gloo down while its peer still talks to it aborts ("terminate called")
            with contextlib.suppress(RuntimeError):
                dist.barrier()
            dist.destroy_process_group()


def initial_model(settings: Settings, sample: PixelSet | None = None) -> MixtureMLP:
    """The model a stretch starts from: a new one of ``settings``' shape, or ``settings.init``
    (a shipped or exported integer model, or a training checkpoint) grown to ``settings.hidden``,
    or where it has more units or components, narrowed to them (``narrow``, on the features
    of ``sample``)."""
    model = MixtureMLP(n_features(settings.context), settings.hidden, settings.components)
    init = settings.init
    if init is not None:
        state = (
            float_state(IntegerModel.load(init), settings.context)
            if Path(init).suffix == ".npz"
            else torch.load(init, weights_only=False, map_location="cpu")["model"]
        )
        widths = [state[f"{name}.weight"].shape[0] for name in hidden_layers(state)]  # widen() refuses another depth
        smaller = any(w > h for w, h in zip(widths, settings.hidden))
        if smaller or state["out.weight"].shape[0] > MIXTURE.rows * settings.components:
            if sample is None:
                raise ValueError("narrowing a model needs a sample of pixels")
            every = max(1, len(sample) // NARROW_SAMPLE)
            x = torch.from_numpy(sample.features[::every]).float() / (1 << ACT_FRAC)
            state = narrow(state, tuple(min(w, h) for w, h in zip(widths, settings.hidden)), settings.components, x)
        model.load_state_dict(widen(state, settings.hidden, settings.seed))
    return model


def _train(paths: list[str], val_paths: list[str] | None, out: Path, settings: Settings, log, ranks: Ranks) -> dict:
    if not ranks.main:
        log = lambda *_: None  # noqa: E731
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - e.g. the command line's closing line
    torch.set_num_threads(settings.threads)
    t0 = time.time()
    train_imgs, val_imgs, train_names, val_names = load_training_images(paths, val_paths)
    log(
        f"{len(train_imgs)} training images, {len(val_imgs)} validation images"
        + (f", {ranks.world} processes on {ranks.device.type}" if ranks.distributed else f" on {ranks.device.type}")
    )
    default = pooled_ls(train_imgs[:: max(1, len(train_imgs) // 50)])
    coefs = None if settings.per_image_ls else default
    jobs = max(1, (os.cpu_count() or 1) // ranks.local_world)
    seed, context = settings.seed, settings.context
    # each rank keeps its own random pixels of every image (rank 0 those of one process)
    pixels = build_pixels(train_imgs, coefs, settings.keep, seed + ranks.rank * 10**9, jobs=jobs, context=context)
    val = build_pixels(val_imgs, coefs, 1.0, seed + 10**6, jobs=jobs, context=context) if ranks.main else None
    log(
        f"{len(pixels):,} training pixels{' per process' if ranks.world > 1 else ''}, "
        f"{len(val) if val is not None else 0:,} validation pixels ({time.time() - t0:.0f} s)"
    )
    model = initial_model(settings, pixels).to(ranks.device)
    history = fit(
        model,
        PixelTensors.on(pixels, ranks.device),
        PixelTensors.on(val, ranks.device) if val is not None else None,
        out.with_suffix(".ckpt"),
        settings,
        log=log,
        ranks=ranks,
        started=t0,
    )
    curve = history.curve
    digests = ranks.gather(weights_digest(model))
    if not ranks.main:
        return ranks.from_rank0(None)
    intmodel = export(model, default, context)
    arrays: dict[str, Any] = intmodel.arrays()  # Any: numpy's stub takes ** for allow_pickle too
    np.savez_compressed(out, **arrays)
    report = {
        "architecture": {
            "context": context,
            "features": n_features(context),
            "hidden": list(settings.hidden),
            "components": settings.components,
            "ls_coefs": LS_TOTAL,
        },
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_images": len(train_imgs),
        "val_images": val_names,
        "train_pixels": len(pixels),
        "per_image_ls": settings.per_image_ls,
        "minutes": settings.minutes,
        "batch": settings.batch,
        "lr": settings.lr,
        "steps": curve[-1]["step"],
        "processes": ranks.world,
        "device": ranks.device.type,
        "device_name": ranks.device_name,
        "pixels_per_s": curve[-1].get("pixels_per_s"),
        "rank_weights_sha256": digests,
        "wall_s": round(time.time() - t0),
        "curve": curve,
        "stretches": history.stretches,
        "val_bpsp_float": curve[-1]["val_bpsp"],
    }
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    return ranks.from_rank0(report)
