"""Image modes in the codec: L, LA, RGB, RGBA round trips, grey coded as one channel, the
alpha block."""

import numpy as np
import pytest

from neuralzip.core import codec as codec_module
from neuralzip.core.alpha import decode_alpha, encode_alpha
from neuralzip.core.codec import UnsupportedImage
from neuralzip.core.container import MODES, Header
from neuralzip.core.fields import FormatError


@pytest.fixture(scope="module")
def colour(urban_crop):
    return urban_crop[:24, :40]


@pytest.fixture(scope="module")
def grey(colour):
    return (colour.astype(np.int64) @ [299, 587, 114] // 1000).astype(np.uint8)


@pytest.fixture(scope="module")
def soft_alpha(colour):
    """A plane with edges and a gradient: stored deflated."""
    alpha = np.zeros(colour.shape[:2], np.uint8)
    alpha[4:20, 6:30] = 255
    alpha[:, 30:] = np.arange(10, dtype=np.uint8) * 25
    return alpha


def _images(colour, grey, soft_alpha):
    opaque = np.full(grey.shape, 255, np.uint8)
    return {
        "RGB": colour,
        "L": grey,
        "RGBA": np.dstack([colour, soft_alpha]),
        "LA": np.dstack([grey, opaque]),
    }


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA"])
def test_round_trip_keeps_mode_and_pixels(codec, colour, grey, soft_alpha, mode):
    image = _images(colour, grey, soft_alpha)[mode]
    data, stats = codec.encode(image)
    assert Header.unpack(data)[0].image_mode.name == mode
    decoded = codec.decode(data)
    assert decoded.dtype == np.uint8 and decoded.shape == image.shape
    assert np.array_equal(decoded, image)
    assert stats.subpixels == image.size


def test_one_channel_grey_comes_back_two_dimensional(codec, grey):
    assert np.array_equal(codec.decode(codec.encode(grey[:, :, None])[0]), grey)


def test_grey_is_coded_as_one_channel(codec, grey):
    """Two coded stages per pixel, and a smaller file than three coded copies."""
    data, stats = codec.encode(grey)
    recorded = []
    codec.decode(data, record=recorded)
    assert sum(len(t) for t in recorded) == 2 * grey.size
    assert stats.model_subpixels == grey.size
    as_rgb, _ = codec.encode(np.repeat(grey[:, :, None], 3, axis=2))
    assert len(data) < len(as_rgb)


def test_grey_per_image_ls_carries_only_the_grey_coefficients(codec, grey, monkeypatch):
    monkeypatch.setattr(codec_module, "IMAGE_LS_MIN_PIXELS", 1)  # per-image LS on a small image
    data, _ = codec.encode(grey)
    header = Header.unpack(data)[0]
    assert header.coefs is not None and header.coefs.shape == (MODES[1].ls_coefs,) == (18,)
    assert np.array_equal(codec.decode(data), grey)


def test_opaque_alpha_costs_three_bytes(codec, colour):
    rgba = np.dstack([colour, np.full(colour.shape[:2], 255, np.uint8)])
    assert len(codec.encode(rgba)[0]) == len(codec.encode(colour)[0]) + 3


@pytest.mark.parametrize("alpha", [
    np.full((3, 5), 7, np.uint8),
    np.arange(15, dtype=np.uint8).reshape(3, 5) * 17,
    np.array([[0, 255, 0, 255, 1]], np.uint8),
])
def test_alpha_block_round_trip(alpha):
    block = encode_alpha(alpha)
    assert np.array_equal(decode_alpha(block, *alpha.shape), alpha)


@pytest.mark.parametrize("block", [
    b"\x00", b"\x00\x01\x02", b"\x02\x00", b"\x01", b"\x01not zlib",
])
def test_malformed_alpha_blocks_are_refused(block):
    with pytest.raises(FormatError, match="alpha"):
        decode_alpha(block, 3, 5)


def test_deflated_alpha_of_the_wrong_size_is_refused():
    block = encode_alpha(np.arange(15, dtype=np.uint8).reshape(3, 5))
    for height, width in [(3, 4), (4, 5), (1, 1)]:
        with pytest.raises(FormatError, match="alpha"):
            decode_alpha(block, height, width)


@pytest.mark.parametrize("image,text", [
    (np.zeros((4, 4, 3), np.uint16), "uint16"),
    (np.zeros((4, 4, 5), np.uint8), "shape"),
    (np.zeros((4,), np.uint8), "shape"),
    (np.zeros((0, 4, 3), np.uint8), "empty"),
])
def test_uncodable_arrays_are_refused(codec, image, text):
    with pytest.raises(UnsupportedImage, match=text):
        codec.encode(image)
