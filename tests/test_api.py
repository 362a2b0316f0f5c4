"""The Python API and the Pillow plugin: every mode round-trips to the same mode and pixels."""

import numpy as np
import pytest
from PIL import Image

import neuralzip
from neuralzip.zoo import ModelNotFound


@pytest.fixture(scope="module")
def pictures(urban_crop):
    """A PIL image of each coded mode, 32x20, with a non-trivial alpha."""
    rgb = Image.fromarray(urban_crop[:20, :32])
    alpha = Image.fromarray(np.tile(np.array([0, 64, 255, 255], np.uint8), (20, 8)))
    rgba, la = rgb.copy(), rgb.convert("L")
    rgba.putalpha(alpha)
    la.putalpha(alpha)
    return {"RGB": rgb, "L": rgb.convert("L"), "RGBA": rgba, "LA": la}


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA"])
def test_numpy_round_trip(pictures, mode):
    pixels = np.asarray(pictures[mode])
    back = neuralzip.decompress(neuralzip.compress(pixels))
    assert back.dtype == np.uint8 and back.shape == pixels.shape and np.array_equal(back, pixels)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA"])
def test_pil_save_and_open(tmp_path, pictures, mode):
    path = tmp_path / "x.nz"
    neuralzip.save(path, pictures[mode])
    opened = neuralzip.open(path)
    assert opened.mode == mode and np.array_equal(np.asarray(opened), np.asarray(pictures[mode]))
    assert [p.name for p in tmp_path.iterdir()] == ["x.nz"]  # no temporary file left


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA"])
def test_pillow_plugin_round_trip(tmp_path, pictures, mode):
    path = tmp_path / "x.nz"
    pictures[mode].save(path)  # format from the .nz extension
    assert path.read_bytes()[:2] == b"NZ"
    with Image.open(path) as opened:
        assert (opened.format, opened.mode, opened.size) == ("NEURALZIP", mode, pictures[mode].size)
        assert np.array_equal(np.asarray(opened), np.asarray(pictures[mode]))


def test_pillow_plugin_passes_the_model_option(tmp_path, pictures):
    with pytest.raises(ModelNotFound, match="no-such-model"):
        pictures["L"].save(tmp_path / "x.nz", model="no-such-model")
    assert not (tmp_path / "x.nz").exists()


def test_pillow_open_of_a_damaged_file_says_why(tmp_path, pictures):
    path = tmp_path / "x.nz"
    neuralzip.save(path, pictures["RGB"])
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(neuralzip.FormatError, match="truncated"):
        Image.open(path)


def test_palette_images_are_coded_as_what_they_show(tmp_path, pictures):
    opaque = pictures["RGB"].quantize(16)
    assert np.array_equal(neuralzip.decompress(neuralzip.compress(opaque)), np.asarray(opaque.convert("RGB")))
    see_through = opaque.copy()
    see_through.info["transparency"] = 0
    back = neuralzip.decompress(neuralzip.compress(see_through))
    assert back.shape[2] == 4 and np.array_equal(back, np.asarray(see_through.convert("RGBA")))


@pytest.mark.parametrize("mode", ["1", "I;16", "I", "F", "CMYK", "YCbCr"])
def test_other_modes_are_refused_by_name(tmp_path, mode):
    image = Image.new(mode, (4, 3))
    with pytest.raises(neuralzip.UnsupportedImage, match=f"mode '{mode}'"):
        neuralzip.compress(image)
    with pytest.raises(neuralzip.UnsupportedImage, match=f"mode '{mode}'"):
        image.save(tmp_path / "x.nz")
    assert not (tmp_path / "x.nz").exists()


def test_grey_with_a_channel_axis_comes_back_two_dimensional(pictures):
    grey = np.asarray(pictures["L"])
    assert np.array_equal(neuralzip.decompress(neuralzip.compress(grey[:, :, None])), grey)


def test_unknown_model_is_named():
    with pytest.raises(ModelNotFound, match=r"unknown model .nope. \(available: .*photo"):
        neuralzip.compress(np.zeros((2, 2), np.uint8), model="nope")
