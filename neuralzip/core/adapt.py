"""Per-image adaptation at encode time: the model's last two bias vectors, tuned to the image.

The shipped model learnt from a few hundred photographs; each image has its own colours,
noise and sharpness. Before coding, the encoder tunes the biases of the last hidden layer
(128 units) and of the output layer (12·K: each component's mixture logit, mean offset,
log-scale and channel couplings) on a sample of the image's pixels, by a few Adam steps
through the float twin of the model (torch, imported only here), and rounds them to the
integer model's units. The file stores them (FORMAT.md, flags bit 4); the decoder adds
them to the integer model's biases (``IntegerModel.with_bias_offsets``), which shifts
every activation or output by exactly that integer, so both sides still compute
identical integer tables.

Only the encoder runs this: it is float arithmetic, so the offsets it picks may differ
between machines (each file carries its own); decoding never depends on it.
"""

from __future__ import annotations

import numpy as np

from .container import pack_bias_offsets
from .intmodel import IntegerModel

MIN_PIXELS = 16384  # smaller images: the sample is too small to pay for the header bytes
SAMPLE_PIXELS = 1 << 16  # pixels the offsets are tuned on (tiles of larger images)
TILE = 64  # side of a sample tile
MARGIN = 4  # rows above and columns beside a tile analysed for its context, then dropped
STEPS = 40  # Adam steps ...
BATCH = 8192  # ... of this many sample pixels each
LEARNING_RATES = (0.05, 1.0)  # last hidden layer (activation levels), outputs (their units)
OFFSET_LIMIT = 1 << 14  # largest |offset| a file holds, in the stored units


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


def choose_bias_offsets(model: IntegerModel, image: np.ndarray, coefs: np.ndarray,
                        colour_channels: int) -> list[np.ndarray | None] | None:
    """Per-layer bias offsets (``IntegerModel.with_bias_offsets``: None for the layers
    left alone, int64 arrays for the last hidden layer and the output layer) for a uint8
    (H, W, 3) image coded with LS ``coefs`` and ``colour_channels`` coded channels; or
    None where the image is too small or they would not pay for their header bytes:
    tuned on 3/4 of the sample, judged on the other quarter."""
    height, width, _ = image.shape
    if height * width < MIN_PIXELS or len(model.mlp.weights) < 2:
        return None
    import torch

    from ..training.float_model import MixtureMLP, _floor_ste, _round_ste, nll_bits
    from ..training.train import float_state

    terms = sample_terms(image, coefs)
    mlp = model.mlp
    net = MixtureMLP(mlp.weights[0].shape[0], tuple(w.shape[1] for w in mlp.weights[:-1]), mlp.components)
    net.load_state_dict(float_state(model))
    *fixed, last_hidden = net.hidden
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same arithmetic whatever the machine's core count
    try:
        with torch.no_grad():
            hidden = torch.tensor(terms.features, dtype=torch.float32) / 256
            for layer in fixed:
                hidden = torch.floor(torch.relu(layer(hidden)).clamp(max=128.0) * 256) / 256
            before_last = last_hidden(hidden)  # the last hidden layer's sums, before its bias offsets
        base = torch.tensor(terms.base_q4, dtype=torch.float32)
        target = torch.tensor(terms.pixels, dtype=torch.float32)

        def bits(offsets: list[torch.Tensor], rows: slice | torch.Tensor = slice(None)) -> torch.Tensor:
            activations = _floor_ste(torch.relu(before_last[rows] + offsets[0]).clamp(max=128.0) * 256) / 256
            out = _round_ste(net.out(activations) * net.steps + offsets[1]).view(-1, 12, mlp.components)
            return nll_bits(out, base[rows], target[rows])[:, :colour_channels].sum()

        offsets = [torch.zeros(before_last.shape[1], requires_grad=True),
                   torch.zeros(net.steps.shape[0], requires_grad=True)]
        moments, powers = [0.0, 0.0], [0.0, 0.0]
        order = torch.randperm(len(target), generator=torch.Generator().manual_seed(0))
        held_out, order = order[: len(order) // 4], order[len(order) // 4 :]  # judges the result
        batches = order.split(BATCH)
        for step in range(1, STEPS + 1):  # Adam, written out (torch.optim's first use costs seconds)
            grads = torch.autograd.grad(bits(offsets, batches[step % len(batches)]), offsets)
            with torch.no_grad():
                for i, (offset, grad, rate) in enumerate(zip(offsets, grads, LEARNING_RATES)):
                    moments[i] = 0.9 * moments[i] + 0.1 * grad
                    powers[i] = 0.999 * powers[i] + 0.001 * grad * grad
                    offset -= rate * (moments[i] / (1 - 0.9**step)) / ((powers[i] / (1 - 0.999**step)).sqrt() + 1e-8)
        with torch.no_grad():
            stored = [torch.round(offsets[0] * 256).clamp(-OFFSET_LIMIT, OFFSET_LIMIT),  # 2**-8 levels
                      torch.round(offsets[1]).clamp(-OFFSET_LIMIT, OFFSET_LIMIT)]
            chosen = [stored[0] / 256, stored[1]]
            saved = (bits([torch.zeros_like(c) for c in chosen], held_out) - bits(chosen, held_out)).item()
    finally:
        torch.set_num_threads(threads)
    values = [value.numpy().astype(np.int64) for value in stored]
    chosen_offsets = [None] * len(fixed) + values
    if saved * height * width / len(held_out) <= 8 * len(pack_bias_offsets(chosen_offsets)):
        return None
    return chosen_offsets
