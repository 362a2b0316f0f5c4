"""Per-image adaptation at encode time: the model's output biases, tuned to the image.

The shipped model learnt from a few hundred photographs; each image has its own colours,
noise and sharpness. Before coding, the encoder tunes the 12·K output-layer biases (one
per mixture logit, mean offset, log-scale and channel coupling of each component) on a
sample of the image's pixels, by a few gradient steps through the float twin of the
model (torch, imported only here), and rounds them to integers in the outputs' own units.
The file stores them (FORMAT.md, flags bit 4); the decoder adds them to the integer
model's last-layer bias (``IntegerModel.with_output_bias``), which shifts every output by
exactly that integer, so both sides still compute identical integer tables.

Only the encoder runs this: it is float arithmetic, so the biases it picks may differ
between machines (each file carries its own); decoding never depends on it.
"""

from __future__ import annotations

import numpy as np

from .intmodel import IntegerModel

MIN_PIXELS = 16384  # smaller images: the sample is too small to pay for the header bytes
SAMPLE_PIXELS = 1 << 16  # pixels the biases are tuned on (tiles of larger images)
TILE = 64  # side of a sample tile
MARGIN = 4  # rows above and columns beside a tile analysed for its context, then dropped
STEPS = 40  # Adam steps ...
BATCH = 8192  # ... of this many sample pixels each
LEARNING_RATE = 1.0  # in output units (1/16 nat, 1/16 level, 1/32 log-scale, 1/256)
BIAS_LIMIT = 127  # stored as int8


def sample_terms(image: np.ndarray, coefs: np.ndarray):
    """Model inputs and targets (``training.data.ImageTerms``) of about SAMPLE_PIXELS pixels
    of a uint8 (H, W, 3) image: all of them, or TILE x TILE tiles at fixed pseudo-random
    places, each analysed with MARGIN context pixels around it."""
    from ..training.data import ImageTerms, analyse

    height, width, _ = image.shape
    if height * width <= SAMPLE_PIXELS:
        return analyse(image, coefs)
    th, tw = min(TILE, height), min(TILE, width)
    rng = np.random.default_rng(0)  # PCG64: the same places on every machine
    parts = []
    for _ in range(-(-SAMPLE_PIXELS // (th * tw))):
        r0, c0 = int(rng.integers(0, height - th + 1)), int(rng.integers(0, width - tw + 1))
        top, left = max(r0 - MARGIN, 0), max(c0 - MARGIN, 0)
        crop = image[top : r0 + th, left : min(c0 + tw + MARGIN, width)]
        terms = analyse(crop, coefs)
        keep = np.zeros(crop.shape[:2], bool)
        keep[r0 - top :, c0 - left : c0 - left + tw] = True
        parts.append([getattr(terms, f)[keep.reshape(-1)] for f in ("features", "base_q4", "residuals_q4", "pixels")])
    return ImageTerms(*(np.concatenate(column) for column in zip(*parts)))


def choose_output_bias(model: IntegerModel, image: np.ndarray, coefs: np.ndarray,
                       colour_channels: int) -> np.ndarray | None:
    """int64 (12·K,) output-bias offsets for a uint8 (H, W, 3) image coded with LS
    ``coefs`` and ``colour_channels`` coded channels, or None where the image is too
    small or they would not pay for their 12·K header bytes: tuned on 3/4 of the sample,
    judged on the other quarter."""
    height, width, _ = image.shape
    if height * width < MIN_PIXELS:
        return None
    import torch

    from ..training.float_model import MixtureMLP, _round_ste, nll_bits
    from ..training.train import float_state

    terms = sample_terms(image, coefs)
    mlp = model.mlp
    net = MixtureMLP(mlp.weights[0].shape[0], tuple(w.shape[1] for w in mlp.weights[:-1]), mlp.components)
    net.load_state_dict(float_state(model))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same arithmetic whatever the machine's core count
    try:
        with torch.no_grad():
            hidden = torch.tensor(terms.features, dtype=torch.float32) / 256
            for layer in net.hidden:
                hidden = torch.floor(torch.relu(layer(hidden)).clamp(max=128.0) * 256) / 256
            outputs = net.out(hidden) * net.steps  # integer units, before rounding
        base = torch.tensor(terms.base_q4, dtype=torch.float32)
        target = torch.tensor(terms.pixels, dtype=torch.float32)

        def bits(offset: torch.Tensor, rows: slice | torch.Tensor = slice(None)) -> torch.Tensor:
            out = _round_ste(outputs[rows] + offset).view(-1, 12, mlp.components)
            return nll_bits(out, base[rows], target[rows])[:, :colour_channels].sum()

        offset, moment, power = torch.zeros(outputs.shape[1], requires_grad=True), 0.0, 0.0
        order = torch.randperm(len(target), generator=torch.Generator().manual_seed(0))
        held_out, order = order[: len(order) // 4], order[len(order) // 4 :]  # judges the result
        batches = order.split(BATCH)
        for step in range(1, STEPS + 1):  # Adam, written out (torch.optim's first use costs seconds)
            rows = batches[step % len(batches)]
            grad, = torch.autograd.grad(bits(offset, rows), offset)
            moment = 0.9 * moment + 0.1 * grad
            power = 0.999 * power + 0.001 * grad * grad
            with torch.no_grad():
                offset -= LEARNING_RATE * (moment / (1 - 0.9**step)) / ((power / (1 - 0.999**step)).sqrt() + 1e-8)
        with torch.no_grad():
            chosen = torch.round(offset).clamp(-BIAS_LIMIT, BIAS_LIMIT)
            saved = (bits(torch.zeros_like(chosen), held_out) - bits(chosen, held_out)).item()
        saved *= height * width / len(held_out)
    finally:
        torch.set_num_threads(threads)
    if saved <= 8 * len(chosen):  # the header bytes they cost
        return None
    return chosen.numpy().astype(np.int64)
