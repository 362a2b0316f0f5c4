"""Wavefront-causal context: what the model may see of an image before a pixel.

Pixel (r, c) is coded at step ``t = SKEW * r + c`` and may depend only on pixels of
earlier steps (``SKEW * r' + c' < t``), so every pixel of one anti-diagonal decodes in one
batched step: ``W + SKEW * (H - 1)`` steps for an H x W image.

This module holds the context's definition (units, layout, LS coefficient handling); the
compiled kernel (``_kernel.c``) computes it, in integer arithmetic, so the encoder (all
pixels) and the decoder (one diagonal at a time) get identical values on any machine. A
numpy transcription for tests lives in ``tests/reference.py``.

Pipeline of one pixel:

1. ``NEIGHBOURS``: 17 causal positions (3 to the left, rows -1 and -2 at columns -3..+3).
   Positions outside the image or not yet decoded take a causal fallback value.
2. A per-image least-squares (LS) linear predictor per channel, coefficients in units of
   2**-12 (``LS_FRAC``): R from its 17 neighbours; G also from the current R and R's W, N,
   NW, NE; B also from the current R, G and their W, N. Predictions are in units of 1/16
   (``Q4``) of a pixel level.
3. The model's 75 inputs per pixel (``units.FEATURE_LAYOUT``).

Units and layouts live in ``units.py``.
"""

from __future__ import annotations

import numpy as np

from .units import CUR_R, LS_FRAC, LS_SIZES, LS_TOTAL, SKEW


def num_steps(height: int, width: int) -> int:
    """Number of decode steps (anti-diagonals) for an image: ``W + SKEW * (H - 1)``."""
    return width + SKEW * (height - 1)


def _solve(matrix: list[list[float]], rhs: list[float]) -> list[float]:
    """x with ``matrix @ x == rhs``: Gaussian elimination with partial pivoting (the first
    row of largest magnitude, as LAPACK's ``dgesv``) in plain Python floats, so every
    operation is one IEEE-754 double +, -, * or / in a fixed order (CPython never fuses a
    multiply-add) and the result is the same bits on any CPU, BLAS and thread count.
    Raises ``numpy.linalg.LinAlgError`` on a zero pivot (a singular matrix)."""
    n = len(rhs)
    rows = [[float(v) for v in row] + [float(b)] for row, b in zip(matrix, rhs)]  # augmented
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(rows[r][col]))  # the first of the largest
        if rows[pivot][col] == 0.0:
            raise np.linalg.LinAlgError("Singular matrix")
        rows[col], rows[pivot] = rows[pivot], rows[col]
        top = rows[col]
        tail = top[col + 1 :]
        for r in range(col + 1, n):
            row = rows[r]
            factor = row[col] / top[col]
            if factor != 0.0:
                row[col + 1 :] = [v - factor * t for v, t in zip(row[col + 1 :], tail)]
    x = [0.0] * n
    for i in range(n - 1, -1, -1):
        row, total = rows[i], rows[i][n]
        for k in range(i + 1, n):
            total -= row[k] * x[k]
        x[i] = total / row[i]
    return x


def solve_ls(
    normal: list[tuple[np.ndarray, np.ndarray]], ridge: float = 1.0, prior: np.ndarray | None = None
) -> np.ndarray:
    """LS coefficients from summed normal equations: int64 (LS_TOTAL,), 2**-12 units.

    A ``ridge`` pulls the fit towards ``prior`` (int64 (LS_TOTAL,), 2**-12 units; default
    0): it decides only directions the image leaves undetermined (a flat image's), and
    there the model's own default coefficients are the ones it has seen in training.

    The solve is ``_solve``'s: plain IEEE arithmetic in a fixed order, never BLAS or a
    numpy reduction (whose order and kernels vary with the CPU and thread count), since
    the rounded result is stored in the file: the same image encodes to the same bytes
    on any machine.
    """
    towards: list[float] = [0.0] * LS_TOTAL if prior is None else np.asarray(prior, np.float64).tolist()
    ridge = float(ridge)
    out: list[int] = []
    at = 0
    for gram, rhs in normal:
        matrix = np.asarray(gram, np.float64).tolist()
        right: list[float] = np.asarray(rhs, np.float64).tolist()
        m = len(right)
        for i in range(m):
            matrix[i][i] += ridge
        pulled = [right[i] + ridge * (towards[at + i] / (1 << LS_FRAC)) for i in range(m)]
        for coef in _solve(matrix, pulled):
            out.append(round(min(max(coef * (1 << LS_FRAC), -32767.0), 32767.0)))  # half to even
        at += m
    return np.array(out, np.int64)


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
    full[LS_SIZES[0] + CUR_R] = full[LS_SIZES[0] + LS_SIZES[1] + CUR_R] = 1 << LS_FRAC
    return full
