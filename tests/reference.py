"""numpy reference of the integer pipeline: a transcription of the compiled kernel
(``neuralzip/core/_kernel.c``) in whole-array numpy, kept in the tests to check the kernel
against, value for value. Units: ``neuralzip.core.units``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuralzip.core.context import num_steps, solve_ls
from neuralzip.core.intmodel import IntegerMLP
from neuralzip.core.tables import Tables
from neuralzip.core.units import (
    ACT_FRAC, ACT_MAX, CONTEXTS, CUR_G, CUR_R, INV_BITS, LOGIT_RANGE, LOGSCALE_MAX, LOGSCALE_MIN, LS_BIAS_INPUT,
    LS_CROSS_INPUTS, LS_FRAC, LS_SIZES, LS_TOTAL, N_, NE_, NEIGHBOURS, NW_, Q4, SKEW, STAGE, T_FRAC,
    T_MAX, W_, WIDE_NEIGHBOURS, WIDE_RESIDUALS, feature_shifts, n_features,
)


def wavefront(height: int, width: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rows, cols) int64 arrays of each decode step, in decoding order."""
    rows, cols = np.divmod(np.arange(height * width, dtype=np.int64), width)
    key = SKEW * rows + cols
    order = np.argsort(key, kind="stable")
    bounds = np.searchsorted(key[order], np.arange(num_steps(height, width) + 1))
    return [
        (rows[order[a:b]], cols[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:])
    ]


def round_shift(x: np.ndarray, bits: int) -> np.ndarray:
    """Integer ``round(x / 2**bits)`` with ties toward +inf, for int64 arrays."""
    return (x + (1 << (bits - 1))) >> bits


def clamp(x: np.ndarray, lo, hi) -> np.ndarray:
    """``min(max(x, lo), hi)``; much faster than np.clip on small arrays."""
    return np.minimum(np.maximum(x, lo), hi)


def _med(w: np.ndarray, n: np.ndarray, nw: np.ndarray) -> np.ndarray:
    """Median edge detector (LOCO-I) of int arrays."""
    return np.where(
        nw >= np.maximum(w, n),
        np.minimum(w, n),
        np.where(nw <= np.minimum(w, n), np.maximum(w, n), w + n - nw),
    )


class Context:
    """Integer context of one image; pixels and LS residuals are filled in as they decode.

    ``pixels``: int64 (H, W, 3), 0..255 where known. ``residuals``: int64 (H, W, 3), pixel
    minus its LS prediction in q4 units where known. ``coefs``: int64 (LS_TOTAL,) LS
    coefficients in units of 2**-LS_FRAC, laid out R, G, B with sizes ``LS_SIZES``.
    """

    def __init__(self, height: int, width: int, coefs: np.ndarray):
        self.height, self.width = height, width
        self.pixels = np.zeros((height, width, 3), np.int64)
        self.residuals = np.zeros((height, width, 3), np.int64)
        coefs = np.asarray(coefs, np.int64)
        if coefs.shape != (LS_TOTAL,):
            raise ValueError(f"expected {LS_TOTAL} LS coefficients, got {coefs.shape}")
        self.coefs = np.split(coefs, np.cumsum(LS_SIZES)[:-1])

    @classmethod
    def from_image(cls, image: np.ndarray, coefs: np.ndarray) -> "Context":
        """Context of a fully known uint8 (H, W, 3) image, residuals included."""
        height, width, _ = image.shape
        ctx = cls(height, width, coefs)
        ctx.pixels[:] = image
        rows, cols = np.divmod(np.arange(height * width, dtype=np.int64), width)
        nb = ctx.neighbours(ctx.pixels, rows, cols, fill=128)
        for ch in range(3):
            known = ctx.ls_known(ch, nb, rows, cols)
            pred = ctx.ls_complete(ch, known, ctx.pixels[rows, cols])
            ctx.residuals[rows, cols, ch] = Q4 * ctx.pixels[rows, cols, ch] - pred
        return ctx

    # -- causal neighbourhood -------------------------------------------------------------
    def neighbours(
        self, plane: np.ndarray, rows: np.ndarray, cols: np.ndarray, fill: int,
        offsets: np.ndarray = NEIGHBOURS,
    ) -> np.ndarray:
        """Values of ``plane`` (H, W, C) at the causal ``offsets`` (m, 2) (default the 17
        neighbours): (n, m, C) int64.

        Rows above the image clamp to row 0 and columns clamp into the image; a position
        that is still not decoded before (r, c) takes the W pixel, else the N pixel, else
        ``fill``.
        """
        height, width = self.height, self.width
        flat = plane.reshape(height * width, -1)
        r2 = np.maximum(rows[:, None] + offsets[None, :, 0], 0)
        c2 = clamp(cols[:, None] + offsets[None, :, 1], 0, width - 1)
        causal = SKEW * r2 + c2 < (SKEW * rows + cols)[:, None]
        out = flat[r2 * width + c2]
        bad_pixel, bad_neighbour = np.nonzero(~causal)  # only near the image's borders
        if bad_pixel.size:
            r, c = rows[bad_pixel], cols[bad_pixel]
            fallback = np.full((bad_pixel.size, flat.shape[1]), fill, np.int64)
            fallback[r > 0] = flat[(r[r > 0] - 1) * width + c[r > 0]]
            fallback[c > 0] = flat[r[c > 0] * width + c[c > 0] - 1]
            out[bad_pixel, bad_neighbour] = fallback
        return out

    # -- least-squares prediction -----------------------------------------------------------
    def ls_inputs(
        self, ch: int, nb: np.ndarray, rows: np.ndarray, cols: np.ndarray, current: np.ndarray
    ) -> np.ndarray:
        """LS design row of channel ``ch``: (n, LS_SIZES[ch]) int64.

        ``nb``: (n, 17, 3) pixel neighbours; ``current``: (n, 3) current pixel (only
        channels before ``ch`` are read).
        """
        cols_ = [nb[:, :, ch], np.full((rows.size, 1), LS_BIAS_INPUT, np.int64)]
        for src, idx in LS_CROSS_INPUTS[ch]:
            cols_.append((current[:, src] if idx < 0 else nb[:, idx, src])[:, None])
        return np.concatenate(cols_, axis=1)

    def ls_known(self, ch: int, nb: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Part of channel ``ch``'s LS prediction (units 2**-12) not using the current pixel."""
        zeros = np.zeros((rows.size, 3), np.int64)
        return self.ls_inputs(ch, nb, rows, cols, zeros) @ self.coefs[ch]

    def ls_complete(self, ch: int, known: np.ndarray, current: np.ndarray) -> np.ndarray:
        """LS prediction of channel ``ch`` in q4 units, clamped to [0, 255*16]."""
        total = known.copy()
        if ch >= 1:
            total += self.coefs[ch][CUR_R] * current[:, 0]
        if ch == 2:
            total += self.coefs[ch][CUR_G] * current[:, 1]
        return clamp(round_shift(total, LS_FRAC - 4), 0, 255 * Q4)

    def cross_coefs(self) -> tuple[int, int, int]:
        """(c_GR, c_BR, c_BG): LS weights of the current pixel's earlier channels."""
        return (
            int(self.coefs[1][CUR_R]),
            int(self.coefs[2][CUR_R]),
            int(self.coefs[2][CUR_G]),
        )

    # -- model features -------------------------------------------------------------------
    def features(self, rows: np.ndarray, cols: np.ndarray, context: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Model inputs of ``context`` of the pixels at (rows, cols), all causal.

        Returns ``(features, known)``: features int64 (n, n_features(context)); known int64 (n, 3)
        LS prediction parts without the current pixel (see ``ls_known``).
        """
        n = rows.size
        nb = self.neighbours(self.pixels, rows, cols, fill=128)
        res = self.neighbours(self.residuals, rows, cols, fill=0)
        med = _med(nb[:, W_], nb[:, N_], nb[:, NW_])  # (n, 3)
        known = np.stack([self.ls_known(ch, nb, rows, cols) for ch in range(3)], axis=1)
        # prior predictions: earlier channels of the current pixel replaced by their priors
        prior = np.zeros((n, 3), np.int64)
        prior_px = np.zeros((n, 3), np.int64)  # q4 priors used as "current" values
        for ch in range(3):
            total = known[:, ch].copy()
            if ch >= 1:
                total += round_shift(self.coefs[ch][CUR_R] * prior_px[:, 0], 4)
            if ch == 2:
                total += round_shift(self.coefs[ch][CUR_G] * prior_px[:, 1], 4)
            prior[:, ch] = clamp(round_shift(total, LS_FRAC - 4), 0, 255 * Q4)
            prior_px[:, ch] = prior[:, ch]
        feats = np.empty((n, n_features(context)), np.int64)
        feats[:, :51] = (nb - med[:, None, :]).transpose(0, 2, 1).reshape(n, 51)
        feats[:, 51:54] = med - 128
        feats[:, 54:57] = prior - Q4 * med
        feats[:, 57:60] = self.cross_coefs()
        feats[:, 60:72] = res[:, [W_, N_, NW_, NE_], :].transpose(0, 2, 1).reshape(n, 12)
        feats[:, 72] = rows == 0
        feats[:, 73] = cols == 0
        feats[:, 74] = cols == self.width - 1
        if context >= 2:
            wide = self.neighbours(self.pixels, rows, cols, fill=128, offsets=WIDE_NEIGHBOURS)
            feats[:, 75:99] = (wide - med[:, None, :]).transpose(0, 2, 1).reshape(n, 24)
            feats[:, 99:111] = res[:, list(WIDE_RESIDUALS), :].transpose(0, 2, 1).reshape(n, 12)
            feats[:, 111:114] = np.abs(res).sum(axis=1)
        return feats, known


def ls_normal_equations(image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per channel (A^T A, A^T y) of the LS design over all pixels of a uint8 (H, W, 3) image."""
    height, width, _ = image.shape
    ctx = Context(height, width, np.zeros(LS_TOTAL, np.int64))
    ctx.pixels[:] = image
    rows, cols = np.divmod(np.arange(height * width, dtype=np.int64), width)
    nb = ctx.neighbours(ctx.pixels, rows, cols, fill=128)
    current = ctx.pixels[rows, cols]
    out = []
    for ch in range(3):
        a = ctx.ls_inputs(ch, nb, rows, cols, current).astype(np.float64)
        out.append((a.T @ a, a.T @ current[:, ch].astype(np.float64)))
    return out


def fit_ls(image: np.ndarray) -> np.ndarray:
    """Per-image LS coefficients of a uint8 (H, W, 3) image: int64 (LS_TOTAL,), 2**-12 units.

    Runs at encode time only: its float result is rounded and stored in the file.
    """
    return solve_ls(ls_normal_equations(image))


def quantize_features(features: np.ndarray) -> np.ndarray:
    """Integer features (n, F) of a context -> fixed point with 8 fractional bits, int64 (n, F)."""
    shifts = feature_shifts({n_features(c): c for c in CONTEXTS}[features.shape[1]])
    out = np.left_shift(features, np.maximum(shifts, 0))
    for shift in set(shifts[shifts < 0].tolist()):
        out[:, shifts == shift] = round_shift(features[:, shifts == shift], -shift)
    return out


OUT_LIMIT = 1 << 24  # outputs (and mixture means) are clamped to +-2**24 (_kernel.c)


def mlp_outputs(mlp: IntegerMLP, features_fixed: np.ndarray) -> np.ndarray:
    """Fixed-point features (n, F) -> integer outputs int64 (n, 12, K): float64 arithmetic
    in float64 (exact on these integers), int16 arithmetic in int64 (exact: the sums of
    int16 products stay in int32)."""
    last = len(mlp.weights) - 1
    if mlp.arithmetic == "int16":
        h = features_fixed.astype(np.int64)
        for i, (w, b, f) in enumerate(zip(mlp.weights, mlp.biases, mlp.fracs)):
            acc = h @ w.astype(np.int64) + b.astype(np.int64)
            assert np.abs(acc).max(initial=0) < 1 << 31  # the int32 sums of the kernel
            f = np.asarray(f, np.int64)
            h = clamp(acc >> f, 0, mlp.act_max) if i < last else round_shift(acc, f + ACT_FRAC)
        return clamp(h, -OUT_LIMIT, OUT_LIMIT).reshape(-1, 12, mlp.components)
    h = features_fixed.astype(np.float64)
    for i, (w, b, f) in enumerate(zip(mlp.weights, mlp.biases, mlp.fracs)):
        acc = h @ w + b
        if i < last:
            h = clamp(np.floor(acc / float(1 << f)), 0.0, float(ACT_MAX))
        else:
            h = np.floor((acc + float(1 << (f + ACT_FRAC - 1))) / float(1 << (f + ACT_FRAC)))
    return clamp(h.astype(np.int64), -OUT_LIMIT, OUT_LIMIT).reshape(-1, 12, mlp.components)


def channel_mixture(out: np.ndarray, ch: int, base_q4: np.ndarray, residuals_q4: np.ndarray) -> Mixture:
    """Mixture of channel ``ch`` for n pixels.

    ``out``: (n, 12, K) integer model outputs; ``base_q4``: (n,) LS prediction of this
    channel with the pixel's actual earlier channels; ``residuals_q4``: (n, 3) the pixel's
    LS residuals (only channels before ``ch`` are read).
    """
    mean = base_q4[:, None] + out[:, 3 + ch]
    if ch == 1:
        mean = mean + round_shift(out[:, 9] * residuals_q4[:, 0:1], 8)
    elif ch == 2:
        mean = mean + round_shift(out[:, 10] * residuals_q4[:, 0:1] + out[:, 11] * residuals_q4[:, 1:2], 8)
    return Mixture(mean_q4=clamp(mean, -OUT_LIMIT, OUT_LIMIT), logscale_idx=out[:, 6 + ch], logit_q4=out[:, ch])


@dataclass
class Mixture:
    """Integer mixture parameters of n subpixels of one channel, K components each.

    mean_q4, logscale_idx, logit_q4: int64 (n, K).
    """

    mean_q4: np.ndarray
    logscale_idx: np.ndarray
    logit_q4: np.ndarray

    def prepared(self, tables: Tables) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean_q4, inverse scale, weight): int64 (n, K) each."""
        ls = clamp(self.logscale_idx, LOGSCALE_MIN, LOGSCALE_MAX) - LOGSCALE_MIN
        d = np.minimum(self.logit_q4.max(axis=1, keepdims=True) - self.logit_q4, LOGIT_RANGE)
        return self.mean_q4, tables.inv_scale[ls], tables.weight[d]


# position of bin edge j in q4 units; edges 0 and 256 lie beyond the LUT, so every
# component CDF is exactly 0 there and exactly 2**CDF_BITS at 256 (the tails)
_EDGE_Q4 = np.concatenate([[-(1 << 30)], 16 * np.arange(1, 256) - 8, [1 << 30]]).astype(np.int64)


def mixture_cdf(prepared: tuple, tables: Tables, edges: np.ndarray) -> np.ndarray:
    """C(j) at bin edges ``edges`` (int64 (n, E), values 0..256): int64 (n, E)."""
    mean, inv, weight = prepared
    t = _EDGE_Q4[edges][:, None, :] - mean[:, :, None]  # (n, K, E): x - mean in q4
    t *= inv[:, :, None]
    t >>= INV_BITS + 4 - T_FRAC  # (x - mean) / s in units of 2**-T_FRAC
    t += T_MAX << T_FRAC  # LUT index, clamped below
    np.maximum(t, 0, out=t)
    np.minimum(t, 2 * T_MAX << T_FRAC, out=t)
    np.take(tables.sigmoid, t, out=t)
    t += edges[:, None, :]
    return np.einsum("nk,nke->ne", weight, t)


_COARSE = np.arange(0, 257, STAGE, dtype=np.int64)  # 17 bucket edges
_FINE = np.arange(STAGE + 1, dtype=np.int64)


def coarse_frequencies(prepared: tuple, tables: Tables) -> np.ndarray:
    """Stage-1 frequencies of the 16 buckets: int64 (n, 16)."""
    n = prepared[0].shape[0]
    return np.diff(mixture_cdf(prepared, tables, np.broadcast_to(_COARSE, (n, 17))), axis=1)


def fine_frequencies(prepared: tuple, tables: Tables, bucket: np.ndarray) -> np.ndarray:
    """Stage-2 frequencies of the 16 values inside ``bucket`` (int64 (n,)): int64 (n, 16)."""
    edges = STAGE * bucket[:, None] + _FINE[None, :]
    return np.diff(mixture_cdf(prepared, tables, edges), axis=1)


def frequency_tables(model, image: np.ndarray, coefs: np.ndarray, colour_channels: int):
    """Symbols (n, C, 2) and tables (n, C, 2, 16) of every subpixel of a uint8 (H, W, 3)
    image in raster order: the full-image encoder, in numpy."""
    ctx = Context.from_image(image, coefs)
    h, w, _ = image.shape
    rows, cols = np.divmod(np.arange(h * w, dtype=np.int64), w)
    feats, _ = ctx.features(rows, cols, model.context)
    out = mlp_outputs(model.mlp, quantize_features(feats))
    pixels, residuals = ctx.pixels.reshape(-1, 3), ctx.residuals.reshape(-1, 3)
    base = 16 * pixels - residuals
    symbols = np.empty((h * w, colour_channels, 2), np.int64)
    freqs = np.empty((h * w, colour_channels, 2, STAGE), np.int64)
    for ch in range(colour_channels):
        prepared = channel_mixture(out, ch, base[:, ch], residuals).prepared(model.tables)
        values = pixels[:, ch]
        symbols[:, ch, 0], symbols[:, ch, 1] = values // STAGE, values % STAGE
        freqs[:, ch, 0] = coarse_frequencies(prepared, model.tables)
        freqs[:, ch, 1] = fine_frequencies(prepared, model.tables, values // STAGE)
    return symbols, freqs


def decoding_order(symbols: np.ndarray, freqs: np.ndarray, height: int, width: int):
    """Each wavefront step's (symbols (m,), tables (m, 16)) in the order the decoder pulls
    them: coded channel, then stage, then pixel."""
    for rows, cols in wavefront(height, width):
        idx = rows * width + cols
        yield symbols[idx].transpose(1, 2, 0).ravel(), freqs[idx].transpose(1, 2, 0, 3).reshape(-1, STAGE)
