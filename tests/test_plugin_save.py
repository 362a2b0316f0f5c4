"""Issue 21: ``Image.open("x.png").save("y.nz")`` (the Pillow plugin) codes what ``neuralzip
compress x.png`` codes, or refuses what it refuses, in the same words. Pillow decodes the
pixels before the plugin runs, losing the raw mode that says a PNG was 16-bit or a keyed
grey 2- or 4-bit; the plugin reads the file's header again. Real files on disk."""

import io
import struct

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from test_colour_keys import png

import neuralzip
from neuralzip import api
from neuralzip.cli import main
from neuralzip.core.codec import UnsupportedImage

RNG = np.random.default_rng(21)
SIZE = (12, 10)


def _samples(bits: int, channels: int = 1) -> np.ndarray:
    return RNG.integers(0, 1 << bits, (*SIZE, channels))


def _keyed_grey(bits: int, interlace: bool = False) -> bytes:
    """Grey keyed on a value of its pixels other than 0 (which reads the same unscaled)."""
    samples = _samples(bits)
    samples[0, 0] = key = (1 << bits) - 2
    return png(samples, bits, 0, trns=struct.pack(">H", key), interlace=interlace)


def _palette(bits: int, trns: bool) -> bytes:
    entries = 1 << bits
    alphas = bytes([0, 128] + [255] * (entries - 2)) if trns and entries > 2 else bytes([0]) if trns else None
    return png(_samples(bits), bits, 3, plte=RNG.integers(0, 256, (entries, 3)), trns=alphas)


CODED = {  # name: file bytes, each coded alike by both paths
    **{f"grey{b}": png(_samples(b), b, 0) for b in (2, 4, 8)},
    **{f"grey{b}-keyed": _keyed_grey(b) for b in (2, 4, 8)},
    **{f"grey{b}-keyed-interlaced": _keyed_grey(b, True) for b in (2, 4)},
    **{f"palette{b}": _palette(b, False) for b in (1, 2, 4, 8)},
    **{f"palette{b}-trns": _palette(b, True) for b in (1, 2, 4, 8)},
    "rgb8": png(_samples(8, 3), 8, 2),
}
REFUSED = {  # name: (suffix, file bytes, what both paths say)
    **{
        f"{name}16": (".png", png(_samples(16, n), 16, t), f"16-bit {name.upper()} image")
        for name, t, n in [("rgb", 2, 3), ("rgba", 6, 4), ("la", 4, 2)]
    },
    "rgb16-keyed": (".png", png(_samples(16, 3), 16, 2, trns=b"\0\1\0\2\0\3"), "16-bit RGB image"),
    "ppm16": (".ppm", b"P6 10 12 65535\n" + _samples(16, 3).astype(">u2").tobytes(), "16-bit RGB image"),
    "grey16": (".png", png(_samples(16), 16, 0), "unsupported image mode 'I;16'"),
    "grey1": (".png", png(_samples(1), 1, 0), "unsupported image mode '1'"),
}


def _compress(path) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["compress", str(path), "-q"])
    return r.exit_code, r.output


@pytest.mark.parametrize("name", sorted(CODED))
def test_the_plugin_codes_what_compress_codes(tmp_path, name):
    path = tmp_path / f"{name}.png"
    path.write_bytes(CODED[name])
    assert _compress(path)[0] == 0
    cli = path.with_suffix(".nz").read_bytes()
    Image.open(path).save(tmp_path / "plugin.nz")
    plugin = (tmp_path / "plugin.nz").read_bytes()
    assert np.array_equal(neuralzip.decompress(plugin), neuralzip.decompress(cli))
    assert np.array_equal(neuralzip.decompress(plugin), api.read_image(path))
    assert plugin == cli
    with Image.open(tmp_path / "plugin.nz") as back:  # and back through the plugin, pixel for pixel
        assert np.array_equal(np.asarray(back), api.read_image(path))


def test_a_keyed_4_bit_grey_comes_back_with_its_alpha(tmp_path):
    samples = _samples(4)[:, :, 0]
    key = int(samples[1, 1])
    path = tmp_path / "ftbbn0g04.png"
    path.write_bytes(png(samples, 4, 0, trns=struct.pack(">H", key), interlace=True))
    Image.open(path).save(tmp_path / "x.nz")
    with Image.open(tmp_path / "x.nz") as back:
        assert back.mode == "LA"
        out = np.asarray(back)
    assert np.array_equal(out[:, :, 0], samples * 17) and np.array_equal(out[:, :, 1], np.where(samples == key, 0, 255))


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_the_plugin_refuses_what_compress_refuses(tmp_path, name):
    suffix, data, message = REFUSED[name]
    path = tmp_path / f"{name}{suffix}"
    path.write_bytes(data)
    code, output = _compress(path)
    with pytest.raises(UnsupportedImage) as error:
        Image.open(path).save(tmp_path / "plugin.nz")
    assert code == 1 and message in output and output.strip() == f"neuralzip: error: {path}: {error.value}"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no .nz from either


def test_an_image_read_from_a_stream_is_refused_where_its_depth_is_unknown(tmp_path):
    """Pillow reads no path again: a PNG read from a stream is refused, even an 8-bit one;
    a JPEG (8 bits a sample at most) is coded."""
    for data in (REFUSED["rgb16"][1], CODED["rgb8"]):
        with pytest.raises(UnsupportedImage, match="PNG image read from a stream") as error:
            Image.open(io.BytesIO(data)).save(tmp_path / "x.nz")
        assert "\n" not in str(error.value)
    assert not (tmp_path / "x.nz").exists()
    jpeg = io.BytesIO()
    Image.fromarray(_samples(8, 3).astype(np.uint8)).save(jpeg, "JPEG")
    with Image.open(jpeg) as image:
        image.save(tmp_path / "x.nz")
        assert np.array_equal(neuralzip.decompress((tmp_path / "x.nz").read_bytes()), np.asarray(image))


def test_an_image_whose_file_is_gone_is_refused(tmp_path):
    path = tmp_path / "gone.png"
    path.write_bytes(CODED["rgb8"])
    image = Image.open(path)
    image.load()
    path.unlink()
    with pytest.raises(UnsupportedImage, match="cannot open .*gone.png again to check its bit depth"):
        image.save(tmp_path / "x.nz")


def test_images_made_in_memory_are_coded_as_they_are(tmp_path):
    with Image.open(io.BytesIO(CODED["grey4-keyed"])) as keyed:
        pixels = np.asarray(keyed.convert("RGB"))
    Image.fromarray(pixels).save(tmp_path / "x.nz")
    assert np.array_equal(neuralzip.decompress((tmp_path / "x.nz").read_bytes()), pixels)
