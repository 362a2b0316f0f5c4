"""The per-image least-squares predictor: its normal equations over every pixel (the
compiled kernel sums them) and the fit, rounded to the integers the file stores."""

from __future__ import annotations

import numpy as np

from .context import solve_ls
from .kernel import image_kernel
from .units import LS_SIZES, LS_TOTAL


def rgb_copy(image: np.ndarray) -> np.ndarray:
    """A C-contiguous uint8 (H, W, 3) copy the kernel may hold."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    return np.array(image, order="C")


def ls_normal_equations(image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per channel (A^T A, A^T y) of the LS design over all pixels of a uint8 (H, W, 3)
    image, float64 (exact: integer sums below 2**53)."""
    kernel = image_kernel(rgb_copy(image), np.zeros(LS_TOTAL, np.int64), colour_channels=3)
    flat = np.empty(sum(m * m + m for m in LS_SIZES))
    kernel.ls_normal_equations(flat)
    out, at = [], 0
    for m in LS_SIZES:
        out.append((flat[at : at + m * m].reshape(m, m), flat[at + m * m : at + m * m + m]))
        at += m * m + m
    return out


def fit_ls(image: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
    """Per-image LS coefficients of a uint8 (H, W, 3) image: int64 (LS_TOTAL,), 2**-12 units,
    where the image leaves them free (flat areas) pulled towards ``prior`` (see ``solve_ls``).

    Runs at encode time only: its float result is rounded and stored in the file.
    """
    return solve_ls(ls_normal_equations(image), prior=prior)
