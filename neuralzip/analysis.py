"""Whole-image analysis shared by the encoder and training: every pixel's model inputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .context import Context
from .intmodel import quantize_features


@dataclass
class ImageTerms:
    """Model inputs and targets of all H*W pixels of one image, in raster order.

    features: int64 (n, 75) fixed point (2**-8); base_q4: int64 (n, 3) LS predictions with
    the pixel's actual earlier channels; residuals_q4: int64 (n, 3) = 16 * pixel - base;
    pixels: int64 (n, 3).
    """

    features: np.ndarray
    base_q4: np.ndarray
    residuals_q4: np.ndarray
    pixels: np.ndarray


def analyse(image: np.ndarray, coefs: np.ndarray) -> ImageTerms:
    """Terms of a uint8 (H, W, 3) image under LS coefficients ``coefs``."""
    height, width, _ = image.shape
    ctx = Context.from_image(image, coefs)
    rows, cols = np.divmod(np.arange(height * width, dtype=np.int64), width)
    feats, _ = ctx.features(rows, cols)
    pixels = ctx.pixels.reshape(-1, 3)
    residuals = ctx.residuals.reshape(-1, 3)
    return ImageTerms(quantize_features(feats), 16 * pixels - residuals, residuals, pixels)
