"""Wavefront-causal context: what the model may see of an image before a pixel.

Pixel (r, c) is coded at step ``t = SKEW * r + c`` and may depend only on pixels of
earlier steps (``SKEW * r' + c' < t``), so every pixel of one anti-diagonal decodes in one
batched step: ``W + SKEW * (H - 1)`` steps for an H x W image.

Everything here is integer arithmetic on ``int64`` numpy arrays, so the encoder (all pixels
at once) and the decoder (one diagonal at a time) compute identical values on any machine.

Pipeline of one pixel:

1. ``NEIGHBOURS``: 17 causal positions (3 to the left, rows -1 and -2 at columns -3..+3).
   Positions outside the image or not yet decoded take a causal fallback value.
2. A per-image least-squares (LS) linear predictor per channel, coefficients in units of
   2**-12 (``LS_FRAC``): R from its 17 neighbours; G also from the current R and R's W, N,
   NW, NE; B also from the current R, G and their W, N. Predictions are in units of 1/16
   (``Q4``) of a pixel level.
3. ``features``: 75 integers per pixel fed to the model (see ``FEATURE_SCALES``).
"""

from __future__ import annotations

import numpy as np

SKEW = 4
NEIGHBOURS = np.array(
    [(0, -1), (0, -2), (0, -3)]
    + [(-1, dc) for dc in range(-3, 4)]
    + [(-2, dc) for dc in range(-3, 4)],
    dtype=np.int64,
)
W_, N_, NW_, NE_ = 0, 6, 5, 7  # indices into NEIGHBOURS
LS_FRAC = 12  # LS coefficients are integers in units of 2**-12
LS_BIAS_INPUT = 64  # constant input that carries the LS bias term
Q4 = 16  # predictions and residuals are in units of 1/16 pixel level

# LS inputs beyond a channel's own 17 neighbours and the bias:
# (channel, neighbour index or -1 for the current pixel)
LS_CROSS_INPUTS: tuple[tuple[tuple[int, int], ...], ...] = (
    (),
    ((0, -1), (0, W_), (0, N_), (0, NW_), (0, NE_)),
    ((0, -1), (1, -1), (0, W_), (0, N_), (1, W_), (1, N_)),
)
LS_SIZES = tuple(len(NEIGHBOURS) + 1 + len(x) for x in LS_CROSS_INPUTS)  # (18, 23, 24)
LS_TOTAL = sum(LS_SIZES)
# position, within a channel's coefficient vector, of the current-pixel cross terms
_CUR_R = len(NEIGHBOURS) + 1  # c_GR and c_BR
_CUR_G = len(NEIGHBOURS) + 2  # c_BG

N_FEATURES = 75
# float value of integer feature i = features[:, i] * FEATURE_SCALES[i]
FEATURE_SCALES = np.concatenate(
    [
        np.full(51, 1 / 32),  # neighbours minus MED, 17 per channel
        np.full(3, 1 / 64),  # MED - 128 per channel
        np.full(3, 1 / 128),  # prior LS prediction minus MED (q4) per channel
        np.full(3, 1 / 4096),  # LS coefficients c_GR, c_BR, c_BG
        np.full(12, 1 / 128),  # LS residuals (q4) at W, N, NW, NE per channel
        np.ones(3),  # flags: first row, first column, last column
    ]
).astype(np.float32)
assert FEATURE_SCALES.size == N_FEATURES


def num_steps(height: int, width: int) -> int:
    """Number of decode steps (anti-diagonals) for an image: ``W + SKEW * (H - 1)``."""
    return width + SKEW * (height - 1)


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
        self, plane: np.ndarray, rows: np.ndarray, cols: np.ndarray, fill: int
    ) -> np.ndarray:
        """Values of ``plane`` (H, W, C) at the 17 causal neighbours: (n, 17, C) int64.

        Rows above the image clamp to row 0 and columns clamp into the image; a position
        that is still not decoded before (r, c) takes the W pixel, else the N pixel, else
        ``fill``.
        """
        height, width = self.height, self.width
        flat = plane.reshape(height * width, -1)
        r2 = np.maximum(rows[:, None] + NEIGHBOURS[None, :, 0], 0)
        c2 = clamp(cols[:, None] + NEIGHBOURS[None, :, 1], 0, width - 1)
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
            total += self.coefs[ch][_CUR_R] * current[:, 0]
        if ch == 2:
            total += self.coefs[ch][_CUR_G] * current[:, 1]
        return clamp(round_shift(total, LS_FRAC - 4), 0, 255 * Q4)

    def cross_coefs(self) -> tuple[int, int, int]:
        """(c_GR, c_BR, c_BG): LS weights of the current pixel's earlier channels."""
        return (
            int(self.coefs[1][_CUR_R]),
            int(self.coefs[2][_CUR_R]),
            int(self.coefs[2][_CUR_G]),
        )

    # -- model features -------------------------------------------------------------------
    def features(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model inputs of the pixels at (rows, cols), all causal.

        Returns ``(features, known)``: features int64 (n, N_FEATURES); known int64 (n, 3)
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
                total += round_shift(self.coefs[ch][_CUR_R] * prior_px[:, 0], 4)
            if ch == 2:
                total += round_shift(self.coefs[ch][_CUR_G] * prior_px[:, 1], 4)
            prior[:, ch] = clamp(round_shift(total, LS_FRAC - 4), 0, 255 * Q4)
            prior_px[:, ch] = prior[:, ch]
        feats = np.empty((n, N_FEATURES), np.int64)
        feats[:, :51] = (nb - med[:, None, :]).transpose(0, 2, 1).reshape(n, 51)
        feats[:, 51:54] = med - 128
        feats[:, 54:57] = prior - Q4 * med
        feats[:, 57:60] = self.cross_coefs()
        feats[:, 60:72] = res[:, [W_, N_, NW_, NE_], :].transpose(0, 2, 1).reshape(n, 12)
        feats[:, 72] = rows == 0
        feats[:, 73] = cols == 0
        feats[:, 74] = cols == self.width - 1
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


def solve_ls(normal: list[tuple[np.ndarray, np.ndarray]], ridge: float = 1.0) -> np.ndarray:
    """LS coefficients from summed normal equations: int64 (LS_TOTAL,), 2**-12 units."""
    out = []
    for gram, rhs in normal:
        coef = np.linalg.solve(gram + ridge * np.eye(gram.shape[0]), rhs)
        out.append(np.clip(np.round(coef * (1 << LS_FRAC)), -32767, 32767))
    return np.concatenate(out).astype(np.int64)


def complete_coefs(coefs: np.ndarray, colour_channels: int) -> np.ndarray:
    """All LS_TOTAL coefficients (int64, 2**-12 units) of an image with ``colour_channels``
    coded channels, from its first ``sum(LS_SIZES[:colour_channels])`` entries of ``coefs``.

    A grey image (one channel) lives in the context as R = G = B: its G and B predictors
    copy the current R exactly (weight 1 on it, 0 elsewhere), so their residuals are 0.
    """
    coefs = np.asarray(coefs, np.int64)
    if colour_channels == 3:
        return coefs
    full = np.zeros(LS_TOTAL, np.int64)
    full[: LS_SIZES[0]] = coefs[: LS_SIZES[0]]
    full[LS_SIZES[0] + _CUR_R] = full[LS_SIZES[0] + LS_SIZES[1] + _CUR_R] = 1 << LS_FRAC
    return full


def fit_ls(image: np.ndarray) -> np.ndarray:
    """Per-image LS coefficients of a uint8 (H, W, 3) image: int64 (LS_TOTAL,), 2**-12 units.

    Runs at encode time only: its float result is rounded and stored in the file.
    """
    return solve_ls(ls_normal_equations(image))
