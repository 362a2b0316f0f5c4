"""Pixel-exact round trips of random, structured and real images of awkward sizes."""

import numpy as np
import pytest

from neuralzip.core.container import Header

SIZES = [(1, 1), (1, 7), (7, 1), (5, 9), (33, 17), (64, 64)]


def _structured(h, w):
    y, x = np.mgrid[:h, :w]
    return np.stack([(x * 255 // max(w - 1, 1)), (y * 7) % 256, ((x // 3 + y // 3) % 2) * 255], -1).astype(np.uint8)


@pytest.mark.parametrize("h,w", SIZES)
@pytest.mark.parametrize("kind", ["random", "structured", "flat"])
def test_round_trip(codec, h, w, kind):
    rng = np.random.default_rng(h * 100 + w)
    image = {
        "random": lambda: rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        "structured": lambda: _structured(h, w),
        "flat": lambda: np.full((h, w, 3), (0, 255, 17), np.uint8),
    }[kind]()
    data, stats = codec.encode(image)
    assert np.array_equal(codec.decode(data), image)
    assert stats.file_bytes == len(data)


def test_photo_crop_round_trip_and_real_bits_match_nll(codec, sample):
    data, stats = codec.encode(sample)
    assert np.array_equal(codec.decode(data), sample)
    payload_bits = 8 * Header.unpack(data)[0].payload_length
    assert payload_bits < stats.nll_bits * 1.003 + 64  # ANS within 0.3 % of -log2 p
    assert stats.bpsp < 5.0  # a trained model, far below 8 bits per subpixel


def test_extreme_values_round_trip(codec):
    image = np.zeros((16, 16, 3), np.uint8)
    image[::2, ::3] = 255
    image[5, 5] = (0, 255, 0)
    data, _ = codec.encode(image)
    assert np.array_equal(codec.decode(data), image)


def test_large_image_uses_per_image_ls_and_round_trips(codec, urban_crop):
    image = np.tile(urban_crop, (3, 2, 1))  # 192x192 >= IMAGE_LS_MIN_PIXELS
    data, _ = codec.encode(image)
    assert Header.unpack(data)[0].coefs is not None
    assert np.array_equal(codec.decode(data), image)
