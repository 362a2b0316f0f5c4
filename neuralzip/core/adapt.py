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

Only the encoder runs this: it is float arithmetic, so what it picks may differ between
machines (each file carries its own); decoding never depends on it.
"""

from __future__ import annotations

import numpy as np

from .container import Adaptation
from .intmodel import GAIN_LIMIT, IntegerModel
from .units import ACT_FRAC, ACT_MAX, LOGIT_STEP, LOGSCALE_MAX, LOGSCALE_MIN, LOGSCALE_STEP

MIN_PIXELS = 16384  # smaller images: the sample is too small to pay for the header bytes
SAMPLE_PIXELS = 1 << 16  # pixels the offsets are tuned on (tiles of larger images)
TILE = 64  # side of a sample tile
MARGINS = {1: 4, 2: 8}  # per context: rows above and columns beside a tile analysed for its context, then dropped
STEPS = 40  # Adam steps ...
BATCH = 8192  # ... of this many sample pixels each
# per variable: last hidden layer's bias offsets (units of 2**-8 activation), output bias
# offsets (the outputs' units), output gains (1/256 of the weights)
LEARNING_RATES = (12.8, 1.0, 2.56)
STORED_STEPS = (8, 1, 1)  # stored values are multiples of these: 1/32 activation level (a byte each)
OFFSET_LIMIT = 1 << 14  # largest |offset| chosen, in 2**-8 activation levels or output units


def sample_terms(image: np.ndarray, coefs: np.ndarray, context: int = 1):
    """Model inputs of ``context`` and targets (``training.data.ImageTerms``) of about
    SAMPLE_PIXELS pixels of a uint8 (H, W, 3) image: all of them, or TILE x TILE tiles at
    fixed pseudo-random places, each analysed with the context's margin around it."""
    from ..training.data import ImageTerms, analyse

    height, width, _ = image.shape
    if height * width <= SAMPLE_PIXELS:
        return analyse(image, coefs, context)
    margin = MARGINS[context]
    th, tw = min(TILE, height), min(TILE, width)
    rng = np.random.default_rng(0)  # PCG64: the same places on every machine
    parts = []
    for _ in range(-(-SAMPLE_PIXELS // (th * tw))):
        r0, c0 = int(rng.integers(0, height - th + 1)), int(rng.integers(0, width - tw + 1))
        top, left = max(r0 - margin, 0), max(c0 - margin, 0)
        crop = image[top : r0 + th, left : min(c0 + tw + margin, width)]
        terms = analyse(crop, coefs, context)
        keep = np.zeros(crop.shape[:2], bool)
        keep[r0 - top :, c0 - left : c0 - left + tw] = True
        parts.append([getattr(terms, f)[keep.reshape(-1)] for f in ("features", "base_q4", "residuals_q4", "pixels")])
    return ImageTerms(*(np.concatenate(column) for column in zip(*parts)))


def choose_adaptation(model: IntegerModel, image: np.ndarray, coefs: np.ndarray,
                      colour_channels: int) -> Adaptation | None:
    """The adaptation of ``model`` to a uint8 (H, W, 3) image coded with LS ``coefs`` and
    ``colour_channels`` coded channels: bias offsets of the last hidden layer and of the
    output layer, and output gains; or None where the image is too small or they would
    not pay for their header bytes: tuned on 3/4 of the sample, judged on the other quarter."""
    height, width, _ = image.shape
    mlp = model.mlp
    if height * width < MIN_PIXELS or len(mlp.weights) < 2:
        return None
    terms = sample_terms(image, coefs, model.context)
    head = _Head(mlp, terms.features, terms.base_q4, terms.pixels, colour_channels)
    order = np.random.default_rng(0).permutation(len(terms.pixels))
    held_out, order = order[: len(order) // 4], order[len(order) // 4 :]  # judges the result
    batches = [order[i : i + BATCH] for i in range(0, len(order), BATCH)]
    variables = [np.zeros(mlp.biases[-2].shape), np.zeros(mlp.biases[-1].shape), np.zeros(mlp.biases[-1].shape)]
    moments = [np.zeros_like(v) for v in variables]
    powers = [np.zeros_like(v) for v in variables]
    for step in range(1, STEPS + 1):  # Adam
        grads = head.gradients(variables, batches[step % len(batches)])
        for variable, grad, moment, power, rate in zip(variables, grads, moments, powers, LEARNING_RATES):
            moment += 0.1 * (grad - moment)
            power += 0.001 * (grad * grad - power)
            variable -= rate * (moment / (1 - 0.9**step)) / (np.sqrt(power / (1 - 0.999**step)) + 1e-8)
    limits = (OFFSET_LIMIT, OFFSET_LIMIT, GAIN_LIMIT)
    chosen = [np.clip(np.round(v / step) * step, -limit, limit).astype(np.int64)
              for v, step, limit in zip(variables, STORED_STEPS, limits)]
    saved = head.bits([np.zeros_like(c) for c in chosen], held_out) - head.bits(chosen, held_out)
    adaptation = Adaptation([None] * (len(mlp.weights) - 2) + chosen[:2], chosen[2])
    if saved * height * width / len(held_out) <= 8 * len(adaptation.pack()):
        return None
    return adaptation


class _Head:
    """The model's last two layers and its mixture likelihood over a pixel sample, in numpy
    (float32 products, float64 likelihood), with the adaptation as the only variables: the
    last hidden layer's bias offsets (units of 2**-8 activation), the outputs' (their own
    units) and the output gains (1/256).

    Forward, it computes what the integer model does (floors, clamps and rounding of the
    outputs; the logistic in float instead of lookup tables); backward, the roundings
    pass gradients through unchanged (straight-through), as in training.
    """

    def __init__(self, mlp, features: np.ndarray, base_q4: np.ndarray, pixels: np.ndarray, channels: int):
        h = features.astype(np.float32)  # float32 products: an estimate, twice as fast as float64
        for w, b, frac in zip(mlp.weights[:-2], mlp.biases[:-2], mlp.fracs[:-2]):
            h = np.clip(np.floor((h @ (w / 2.0**frac).astype(np.float32) + np.float32(b / 2.0**frac))), 0, ACT_MAX)
        last_w, last_b = mlp.weights[-2] / 2.0 ** mlp.fracs[-2], mlp.biases[-2] / 2.0 ** mlp.fracs[-2]
        self.before_last = np.floor(h @ last_w.astype(np.float32) + last_b.astype(np.float32))  # 2**-8 units
        self.out_weights = (mlp.weights[-1] / 2.0 ** (mlp.fracs[-1] + ACT_FRAC)).astype(np.float32)
        self.out_bias = (mlp.biases[-1] / 2.0 ** (mlp.fracs[-1] + ACT_FRAC)).astype(np.float32)
        self.components, self.channels = mlp.components, channels
        self.base, self.pixels = base_q4.astype(np.float64), pixels.astype(np.float64)

    def _forward(self, variables: list[np.ndarray], rows) -> tuple:
        pre = self.before_last[rows] + variables[0].astype(np.float32)
        hidden = np.clip(pre, 0, ACT_MAX)
        weighted = hidden @ self.out_weights
        out = np.round(weighted * (1 + variables[2] / 256) + self.out_bias) + variables[1]
        return pre, weighted, out.reshape(len(pre), 12, self.components)

    def bits(self, variables: list[np.ndarray], rows) -> float:
        """Code length, in bits, of the coded channels of the pixels ``rows``."""
        return float(self._mixture(self._forward(variables, rows)[2], rows)[0].sum())

    def gradients(self, variables: list[np.ndarray], rows) -> list[np.ndarray]:
        """d(bits of ``rows``) / d(variables): hidden offsets, output offsets, output gains."""
        pre, weighted, out = self._forward(variables, rows)
        d_out = self._mixture(out, rows)[1].reshape(len(pre), -1).astype(np.float32)
        scaled = (d_out * (1 + variables[2] / 256)).astype(np.float32)
        d_hidden = (scaled @ self.out_weights.T) * ((pre > 0) & (pre < ACT_MAX))
        return [d_hidden.sum(0), d_out.sum(0), (d_out * weighted).sum(0) / 256]

    def _mixture(self, out: np.ndarray, rows) -> tuple[np.ndarray, np.ndarray]:
        """(bits (n, channels), d bits / d out (n, 12, K)) of the discretized logistic
        mixtures of ``out`` (n, 12, K) integer units, channels coupled as in the kernel."""
        base, pixels = self.base[rows], self.pixels[rows]
        n, k = len(out), self.components
        grad = np.zeros_like(out)
        logits = out[:, 0:3] / LOGIT_STEP
        log_scale = np.clip(out[:, 6:9], LOGSCALE_MIN, LOGSCALE_MAX) / LOGSCALE_STEP
        in_range = (out[:, 6:9] >= LOGSCALE_MIN) & (out[:, 6:9] <= LOGSCALE_MAX)
        residual = 16 * pixels - base  # q4, with the pixel's actual earlier channels
        coupled = [np.zeros((n, 1)),
                   np.floor((out[:, 9] * residual[:, :1] + 128) / 256),
                   np.floor((out[:, 10] * residual[:, :1] + out[:, 11] * residual[:, 1:2] + 128) / 256)]
        bits = np.zeros((n, self.channels))
        for ch in range(self.channels):
            mean = (base[:, ch : ch + 1] + out[:, 3 + ch] + coupled[ch]) / 16
            inv = np.exp(-log_scale[:, ch])
            value = pixels[:, ch : ch + 1]
            upper_t, lower_t = (value + 0.5 - mean) * inv, (value - 0.5 - mean) * inv
            upper = np.where(value >= 255, 1.0, _sigmoid(upper_t))
            lower = np.where(value <= 0, 0.0, _sigmoid(lower_t))
            mass = np.maximum(upper - lower, 1e-10)
            log_weight = logits[:, ch] - _logsumexp(logits[:, ch])
            joint = np.log(mass) + log_weight
            total = _logsumexp(joint)
            bits[:, ch] = -total[:, 0] / np.log(2)
            posterior = np.exp(joint - total)  # each component's share of the pixel's probability
            dens_u = np.where(value >= 255, 0.0, upper * (1 - upper))
            dens_l = np.where(value <= 0, 0.0, lower * (1 - lower))
            live = upper - lower > 1e-10
            d_mean = np.where(live, (dens_l - dens_u) * inv / mass, 0.0)  # d log mass / d mean
            d_logscale = np.where(live, (-upper_t * dens_u + lower_t * dens_l) / mass, 0.0)
            scale = -posterior / np.log(2)  # d bits / d log mass_k
            grad[:, ch] = -(posterior - np.exp(log_weight)) / np.log(2) / LOGIT_STEP
            grad[:, 3 + ch] = scale * d_mean / 16
            grad[:, 6 + ch] = scale * d_logscale * in_range[:, ch] / LOGSCALE_STEP
            if ch == 1:  # G's means move with alpha * R's residual / 256 (q4)
                grad[:, 9] += scale * d_mean / 16 * residual[:, :1] / 256
            if ch == 2:  # B's with (beta * R's + gamma * G's residual) / 256
                grad[:, 10] += scale * d_mean / 16 * residual[:, :1] / 256
                grad[:, 11] += scale * d_mean / 16 * residual[:, 1:2] / 256
        return bits, grad


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))


def _logsumexp(x: np.ndarray) -> np.ndarray:
    top = x.max(axis=1, keepdims=True)
    return top + np.log(np.exp(x - top).sum(axis=1, keepdims=True))
