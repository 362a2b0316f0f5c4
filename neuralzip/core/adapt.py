"""Per-image adaptation at encode time: the model's last layers, tuned to the image.

The shipped model learnt from a few hundred photographs; each image has its own colours,
noise and sharpness. Before coding, the encoder tunes, on a sample of the image's pixels,
the biases of the last hidden layer (128 units) and of the output layer (12·K: each
component's mixture logit, mean offset, log-scale and channel couplings) and a gain on
each output's weights, by a few Adam steps on the model's likelihood (numpy, gradients by
hand), and rounds them to the integer model's units. The file stores them (FORMAT.md,
flags bit 4); the decoder applies them to the integer model
(``IntegerModel.with_bias_offsets``, ``with_output_gains``) in integer arithmetic, so
both sides still compute identical integer tables.

Only the encoder runs this, and what it picks goes into the file: so its arithmetic is
deterministic (exact integer products, then the compiled ``_adapt`` module's fixed-order
float64 with its own exp and log), and the same image gives the same bytes on every
machine, BLAS and thread count. Decoding never depends on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from . import _adapt
from .adaptation_block import Adaptation
from .intmodel import GAIN_LIMIT, IntegerModel
from .kernel import default_threads
from .mixture import MIXTURE
from .terms import ImageTerms, analyse
from .units import ACT_FRAC

if any(MIXTURE.constants().get(name) != value for name, value in _adapt.CONSTANTS.items()):  # a stale build
    raise ImportError("neuralzip.core._adapt was built from other sources: rebuild it with `pip install -e .`")

MIN_PIXELS = 16384  # smaller images: the sample is too small to pay for the header bytes
TILE = 64  # side of a sample tile
MARGINS = {1: 4, 2: 8}  # per context: rows above and columns beside a tile analysed for its context, then dropped


SAMPLE_SHARE = 64  # images over 64 * sample pixels are sampled at 1 pixel in 64 ...
MAX_SAMPLE = 1 << 17  # ... up to this many


@dataclass(frozen=True)
class Search:
    """How much work the encoder spends on the adaptation (``effort.EFFORTS`` picks one):
    ``steps`` Adam steps of ``batch`` pixels of a sample of about ``sample`` pixels
    (``sample_for``: more of a large image)."""

    steps: int
    batch: int
    sample: int

    def sample_for(self, pixels: int) -> int:
        """Pixels to sample of an image of ``pixels`` pixels: all of an image of up to twice
        ``sample``, else ``sample``, or 1 in SAMPLE_SHARE of a larger image up to MAX_SAMPLE.
        The steps stay the same; more tiles
        of a large image make the tuning and its judge see more of its variety (the 12 MP
        mosaic of photos in benchmarks/speed.py, which 2**15 pixels misjudged)."""
        if pixels <= 2 * self.sample:  # all of it: little more to analyse than the sample
            return pixels
        return max(self.sample, min(pixels // SAMPLE_SHARE, MAX_SAMPLE))


# per variable: last hidden layer's bias offsets (units of 2**-8 activation), output bias
# offsets (the outputs' units), output gains (1/256 of the weights)
LEARNING_RATES = (12.8, 1.0, 2.56)
STORED_STEPS = (8, 1, 1)  # stored values are multiples of these: 1/32 activation level (a byte each)
OFFSET_LIMIT = 1 << 14  # largest |offset| chosen, in 2**-8 activation levels or output units


def sample_terms(image: np.ndarray, coefs: np.ndarray, context: int, pixels: int) -> ImageTerms:
    """Model inputs of ``context`` and targets (``terms.ImageTerms``) of about
    ``pixels`` pixels of a uint8 (H, W, 3) image: all of them, or TILE x TILE tiles at
    fixed pseudo-random places, each analysed with the context's margin around it."""
    height, width, _ = image.shape
    if height * width <= pixels:
        return analyse(image, coefs, context)
    margin = MARGINS[context]
    th, tw = min(TILE, height), min(TILE, width)
    rng = np.random.default_rng(0)  # PCG64: the same places on every machine
    parts = []
    for _ in range(-(-pixels // (th * tw))):
        r0, c0 = int(rng.integers(0, height - th + 1)), int(rng.integers(0, width - tw + 1))
        top, left = max(r0 - margin, 0), max(c0 - margin, 0)
        crop = image[top : r0 + th, left : min(c0 + tw + margin, width)]
        terms = analyse(crop, coefs, context)
        keep = np.zeros(crop.shape[:2], bool)
        keep[r0 - top :, c0 - left : c0 - left + tw] = True
        parts.append([getattr(terms, f)[keep.reshape(-1)] for f in ("features", "base_q4", "residuals_q4", "pixels")])
    return ImageTerms(*(np.concatenate(column) for column in zip(*parts)))


def choose_adaptation(
    model: IntegerModel, image: np.ndarray, coefs: np.ndarray, colour_channels: int, search: Search
) -> Adaptation | None:
    """The adaptation of ``model`` to a uint8 (H, W, 3) image coded with LS ``coefs`` and
    ``colour_channels`` coded channels: bias offsets of the last hidden layer and of the
    output layer, and output gains; or None where the image is too small or they would
    not pay for their header bytes: tuned on 3/4 of the sample and judged on the other
    quarter, or, where the sample is the whole image, tuned on it and judged by its own gain.

    A function of its inputs alone: the same choice on every machine and thread count."""
    height, width, _ = image.shape
    mlp = model.mlp
    if height * width < MIN_PIXELS or len(mlp.weights) < 2:
        return None
    terms = sample_terms(image, coefs, model.context, search.sample_for(height * width))
    head = _Head(mlp, terms.features, terms.base_q4, terms.pixels, colour_channels)
    order = np.random.default_rng(0).permutation(len(terms.pixels))
    if len(order) == height * width:  # the sample is the image: what it saves there is what the file saves
        held_out = order
    else:
        held_out, order = order[: len(order) // 4], order[len(order) // 4 :]
    batches = [order[i : i + search.batch] for i in range(0, len(order), search.batch)]
    variables = [np.zeros(mlp.biases[-2].shape), np.zeros(mlp.biases[-1].shape), np.zeros(mlp.biases[-1].shape)]
    moments = [np.zeros_like(v) for v in variables]
    powers = [np.zeros_like(v) for v in variables]
    decay1 = decay2 = 1.0  # 0.9**step and 0.999**step by products: no libm pow
    for step in range(1, search.steps + 1):  # Adam, in elementwise IEEE operations only
        grads = head.gradients(variables, batches[step % len(batches)])
        decay1, decay2 = decay1 * 0.9, decay2 * 0.999
        for variable, grad, moment, power, rate in zip(variables, grads, moments, powers, LEARNING_RATES):
            moment += 0.1 * (grad - moment)
            power += 0.001 * (grad * grad - power)
            variable -= rate * (moment / (1 - decay1)) / (np.sqrt(power / (1 - decay2)) + 1e-8)
    limits = (OFFSET_LIMIT, OFFSET_LIMIT, GAIN_LIMIT)
    chosen = [
        np.clip(np.round(v / step) * step, -limit, limit).astype(np.int64)
        for v, step, limit in zip(variables, STORED_STEPS, limits)
    ]
    saved = head.bits([np.zeros_like(c) for c in chosen], held_out) - head.bits(chosen, held_out)
    adaptation = Adaptation([None] * (len(mlp.weights) - 2) + chosen[:2], chosen[2])
    if saved * height * width / len(held_out) <= 8 * len(adaptation.pack()):
        return None
    return adaptation


_ROWS = 8192  # sample pixels a _Head runs its first layers on at a time


class _Head:
    """The model's last two layers and its mixture likelihood over a pixel sample, with the
    adaptation as the only variables: the last hidden layer's bias offsets (units of 2**-8
    activation), the outputs' (their own units) and the output gains (1/256).

    The layers before the last hidden one run exactly as the integer model runs them
    (float64 products of integers below 2**53: exact in any order, so BLAS may compute
    them); the rest runs in the compiled ``_adapt`` module, whose float arithmetic has a
    fixed order and no libm, so its bits are the same on every machine. Forward it computes
    what the integer model does (floors, clamps and rounding of the outputs; the logistic
    in float instead of lookup tables); backward, the roundings pass gradients through
    unchanged (straight-through), as in training.
    """

    def __init__(self, mlp, features: np.ndarray, base_q4: np.ndarray, pixels: np.ndarray, channels: int):
        self.before = np.empty((len(features), mlp.weights[-2].shape[1]), np.float32)
        with threadpool_limits(default_threads(), "blas"):  # integer products below 2**53: exact in any order
            for a in range(0, len(features), _ROWS):  # by rows: float64 temporaries of _ROWS rows at most
                h = features[a : a + _ROWS].astype(np.float64)
                for w, b, frac in zip(mlp.weights[:-2], mlp.biases[:-2], mlp.fracs[:-2]):
                    h = np.clip(np.floor((h @ w + b) / 2.0 ** np.asarray(frac)), 0, mlp.act_max)
                before = np.floor((h @ mlp.weights[-2] + mlp.biases[-2]) / 2.0 ** np.asarray(mlp.fracs[-2]))  # 2**-8
                # beyond these the clamp to 0..ACT_MAX decides, whatever the offsets: exact in float32
                self.before[a : a + _ROWS] = np.clip(before, -(1 << 20), 1 << 20)
        out_scale = 2.0 ** (np.asarray(mlp.fracs[-1]) + ACT_FRAC)
        self.act_max = mlp.act_max
        self.weights = np.ascontiguousarray(mlp.weights[-1] / out_scale, np.float32)
        self.weights_t = np.ascontiguousarray(self.weights.T)
        self.bias = np.ascontiguousarray(mlp.biases[-1] / out_scale)
        self.components, self.channels = mlp.components, channels
        self.threads = default_threads()  # the same bits for any count
        self.base, self.pixels = (np.ascontiguousarray(a, np.int32) for a in (base_q4, pixels))

    def _run(self, variables: list[np.ndarray], rows: np.ndarray, grad: np.ndarray | None) -> float:
        return _adapt.head_bits(
            self.before,
            self.weights,
            self.weights_t,
            self.bias,
            self.base,
            self.pixels,
            np.ascontiguousarray(rows, np.int64),
            hidden_offsets=np.ascontiguousarray(variables[0], np.float64),
            output_offsets=np.ascontiguousarray(variables[1], np.float64),
            gains=np.ascontiguousarray(variables[2], np.float64),
            components=self.components,
            channels=self.channels,
            act_max=self.act_max,
            threads=self.threads,
            grad=grad,
        )

    def bits(self, variables: list[np.ndarray], rows: np.ndarray) -> float:
        """Code length, in bits, of the coded channels of the sample's pixels ``rows``."""
        return self._run(variables, rows, None)

    def gradients(self, variables: list[np.ndarray], rows: np.ndarray) -> list[np.ndarray]:
        """d(bits of ``rows``) / d(variables): hidden offsets, output offsets, output gains."""
        grad = np.empty(sum(len(v) for v in variables))
        self._run(variables, rows, grad)
        return np.split(grad, np.cumsum([len(v) for v in variables])[:-1])
