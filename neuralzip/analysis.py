"""Whole-image analysis shared by the encoder and training: the per-image LS fit and
every pixel's model inputs, computed by the compiled kernel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .context import LS_SIZES, LS_TOTAL, N_FEATURES, solve_ls
from .kernel import image_kernel


@dataclass
class ImageTerms:
    """Model inputs and targets of all H*W pixels of one image, in raster order.

    features: int16 (n, 75) fixed point (2**-8); base_q4: int64 (n, 3) LS predictions with
    the pixel's actual earlier channels; residuals_q4: int64 (n, 3) = 16 * pixel - base;
    pixels: int64 (n, 3).
    """

    features: np.ndarray
    base_q4: np.ndarray
    residuals_q4: np.ndarray
    pixels: np.ndarray


def _rgb(image: np.ndarray) -> np.ndarray:
    """A C-contiguous uint8 (H, W, 3) copy the kernel may hold."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    return np.array(image, order="C")


def analyse(image: np.ndarray, coefs: np.ndarray) -> ImageTerms:
    """Terms of a uint8 (H, W, 3) image under LS coefficients ``coefs``."""
    pixels = _rgb(image)
    kernel = image_kernel(pixels, coefs, colour_channels=3)
    kernel.compute_residuals()
    n = pixels.shape[0] * pixels.shape[1]
    features = np.empty((n, N_FEATURES), np.int16)
    base = np.empty((n, 3), np.int16)
    kernel.terms(features, base)
    flat = pixels.reshape(n, 3).astype(np.int64)
    base = base.astype(np.int64)
    return ImageTerms(features, base, 16 * flat - base, flat)


def ls_normal_equations(image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per channel (A^T A, A^T y) of the LS design over all pixels of a uint8 (H, W, 3)
    image, float64 (exact: integer sums below 2**53)."""
    kernel = image_kernel(_rgb(image), np.zeros(LS_TOTAL, np.int64), colour_channels=3)
    flat = np.empty(sum(m * m + m for m in LS_SIZES))
    kernel.ls_normal_equations(flat)
    out, at = [], 0
    for m in LS_SIZES:
        out.append((flat[at : at + m * m].reshape(m, m), flat[at + m * m : at + m * m + m]))
        at += m * m + m
    return out


def fit_ls(image: np.ndarray) -> np.ndarray:
    """Per-image LS coefficients of a uint8 (H, W, 3) image: int64 (LS_TOTAL,), 2**-12 units.

    Runs at encode time only: its float result is rounded and stored in the file.
    """
    return solve_ls(ls_normal_equations(image))
