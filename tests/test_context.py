"""Wavefront schedule and causality of the integer context."""

import numpy as np
import pytest
import reference

from neuralzip.core.context import num_steps
from neuralzip.core.ls import fit_ls
from neuralzip.core.terms import analyse
from neuralzip.core.units import SKEW


@pytest.mark.parametrize("h,w", [(1, 1), (1, 7), (7, 1), (5, 9), (512, 768), (768, 512)])
def test_wavefront_covers_every_pixel_once_in_w_plus_s_h_steps(h, w):
    steps = reference.wavefront(h, w)
    assert len(steps) == num_steps(h, w) == w + SKEW * (h - 1)
    flat = np.concatenate([r * w + c for r, c in steps])
    assert np.array_equal(np.sort(flat), np.arange(h * w))
    for t, (r, c) in enumerate(steps):
        assert np.all(SKEW * r + c == t)


def test_768x512_decodes_in_2812_steps():
    assert num_steps(512, 768) == 2812  # not 393,216


def test_features_ignore_pixels_not_yet_decoded(sample):
    """Changing every pixel at or after a pixel's step leaves the kernel's features of it
    unchanged."""
    img = np.ascontiguousarray(sample[:40, :50])
    coefs = fit_ls(img)
    rng = np.random.default_rng(1)
    h, w, _ = img.shape
    for r, c in [(0, 0), (0, 5), (1, 0), (7, 49), (20, 23), (39, 0)]:
        step = SKEW * r + c
        rows, cols = np.divmod(np.arange(h * w), w)
        later = (SKEW * rows + cols >= step).reshape(h, w)
        other = img.copy()
        other[later] = rng.integers(0, 256, (later.sum(), 3))
        a, b = analyse(img, coefs), analyse(other, coefs)
        assert np.array_equal(a.features[r * w + c], b.features[r * w + c])


def test_ls_fit_predicts_better_than_nothing(sample):
    terms = analyse(sample, fit_ls(sample))
    assert np.abs(terms.residuals_q4 / 16).mean() < 0.25 * np.abs(sample - sample.mean()).mean()
