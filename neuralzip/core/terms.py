"""Every pixel's model inputs and targets (``ImageTerms``) of an image: what training
learns from and what the encoder's per-image adaptation (``adapt.py``) tunes on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .kernel import image_kernel
from .ls import rgb_copy
from .units import DEFAULT_CONTEXT, n_features


@dataclass
class ImageTerms:
    """Model inputs and targets of all H*W pixels of one image, in raster order.

    features: int16 (n, n_features(context)) fixed point (2**-8); base_q4: int64 (n, 3) LS predictions with
    the pixel's actual earlier channels; residuals_q4: int64 (n, 3) = 16 * pixel - base;
    pixels: int64 (n, 3).
    """

    features: np.ndarray
    base_q4: np.ndarray
    residuals_q4: np.ndarray
    pixels: np.ndarray


def analyse(image: np.ndarray, coefs: np.ndarray, context: int = DEFAULT_CONTEXT) -> ImageTerms:
    """Terms of a uint8 (H, W, 3) image under LS coefficients ``coefs``, with the inputs of
    ``context`` (``units.CONTEXTS``)."""
    pixels = rgb_copy(image)
    kernel = image_kernel(pixels, coefs, colour_channels=3, context=context)
    kernel.compute_residuals()
    n = pixels.shape[0] * pixels.shape[1]
    features = np.empty((n, n_features(context)), np.int16)
    base = np.empty((n, 3), np.int16)
    kernel.terms(features, base)
    flat = pixels.reshape(n, 3).astype(np.int64)
    base = base.astype(np.int64)
    return ImageTerms(features, base, 16 * flat - base, flat)
