"""Colour keys (PNG tRNS) at every bit depth and colour type, as in libpng's PngSuite
(``tbbn0g04``, ``ftbbn0g04``, ``tbrn2c08``, ``tp1n3p08``, ...): PNGs written here chunk by
chunk, 32x32, plain and Adam7-interlaced. A keyed image comes back as the LA or RGBA that
Pillow's ``convert`` gives (pixels of the key colour transparent, the others opaque), or
is refused in one line.

Pillow opens 2- and 4-bit grey as L with samples scaled to 0..255 (x 85, x 17) but keeps
the tRNS key in the file's units, so its own ``convert("LA")`` misses the key there; for
those the reference is ``convert`` of the same pixels with the key scaled alike."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import neuralzip
from neuralzip import api
from neuralzip.core.codec import UnsupportedImage

SIZE = 32
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _scanlines(samples: np.ndarray, bits: int) -> bytes:
    """Filter-0 scanlines of ``samples`` (H, W, C) at ``bits`` per sample, packed MSB first."""
    out = b""
    for row in samples:
        flat = row.reshape(-1).astype(np.int64)
        if bits == 16:
            packed = flat.astype(">u2").tobytes()
        elif bits == 8:
            packed = flat.astype(np.uint8).tobytes()
        else:
            per = 8 // bits
            flat = np.concatenate([flat, np.zeros(-len(flat) % per, np.int64)]).reshape(-1, per)
            byte = np.zeros(len(flat), np.int64)
            for k in range(per):
                byte = (byte << bits) | flat[:, k]
            packed = byte.astype(np.uint8).tobytes()
        out += b"\0" + packed
    return out


def png(samples, bits, colour_type, *, trns=None, plte=None, interlace=False) -> bytes:
    """A PNG of ``samples`` ((H, W) or (H, W, C) raw samples), with tRNS body ``trns``."""
    samples = np.asarray(samples)
    if samples.ndim == 2:
        samples = samples[:, :, None]
    height, width = samples.shape[:2]
    if interlace:
        passes = (samples[y0::dy, x0::dx] for x0, y0, dx, dy in ADAM7)
        raw = b"".join(_scanlines(p, bits) for p in passes if p.size)
    else:
        raw = _scanlines(samples, bits)
    header = struct.pack(">IIBBBBB", width, height, bits, colour_type, 0, 0, int(interlace))
    chunks = [_chunk(b"IHDR", header)]
    if plte is not None:
        chunks.append(_chunk(b"PLTE", np.asarray(plte, np.uint8).tobytes()))
    if trns is not None:
        chunks.append(_chunk(b"tRNS", trns))
    chunks += [_chunk(b"IDAT", zlib.compress(raw)), _chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def _coded(data: bytes) -> np.ndarray:
    """What neuralzip codes for the PNG ``data``, checked to round-trip three ways: the
    opened image, the array, and the file through ``read_image``."""
    pixels = api.read_image(io.BytesIO(data))
    with _open(data) as image:
        assert np.array_equal(neuralzip.decompress(neuralzip.compress(image)), pixels)
    assert np.array_equal(neuralzip.decompress(neuralzip.compress(pixels)), pixels)
    return pixels


def _grey_samples(bits: int, seed: int) -> np.ndarray:
    top = (1 << bits) - 1
    return np.random.default_rng(seed).integers(0, top + 1, (SIZE, SIZE))


def _one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text and text
    return text


# -- grey, 2, 4 and 8 bits (PngSuite tbbn0g04, ftbbn0g04, tbwn0g16's 8-bit kin) --------------
@pytest.mark.parametrize("interlace", [False, True], ids=["plain", "interlaced"])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_grey_key_comes_back_as_la(bits, interlace):
    top = (1 << bits) - 1
    samples = _grey_samples(bits, bits)
    key = int(samples[3, 5])
    data = png(samples, bits, 0, trns=struct.pack(">H", key), interlace=interlace)
    out = _coded(data)
    grey = (samples * (255 // top)).astype(np.uint8)
    assert out.shape == (SIZE, SIZE, 2)
    assert np.array_equal(out[:, :, 0], grey)
    assert np.array_equal(out[:, :, 1], np.where(samples == key, 0, 255))
    with _open(data) as image:
        assert image.mode == "L" and image.info["transparency"] == key  # Pillow: the key unscaled
        assert np.array_equal(np.asarray(image), grey)
        if bits == 8:
            assert np.array_equal(out, np.asarray(image.convert("LA")))
    reference = Image.fromarray(grey)
    reference.info["transparency"] = key * (255 // top)
    assert np.array_equal(out, np.asarray(reference.convert("LA")))


@pytest.mark.parametrize("interlace", [False, True], ids=["plain", "interlaced"])
def test_ftbbn0g04_like(interlace):
    """4-bit grey, key 0 on a black border and key-coloured pixels inside, as PngSuite's
    (f)tbbn0g04: the keyed pixels, and only they, transparent."""
    samples = _grey_samples(4, 40)
    samples[samples == 0] = 1
    samples[:4], samples[:, :4] = 0, 0
    key_inside = samples[10:20, 10:20] == 7
    data = png(samples, 4, 0, trns=struct.pack(">H", 7), interlace=interlace)
    out = _coded(data)
    assert out.shape == (SIZE, SIZE, 2)
    assert np.array_equal(out[:, :, 1] == 0, samples == 7) and key_inside.any()
    assert np.array_equal(out[:, :, 0], samples * 17)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_grey_key_no_pixel_has_stays_grey(bits):
    samples = _grey_samples(bits, 7)
    key = int(samples[0, 0])
    samples[samples == key] = (key + 1) % (1 << bits)
    out = _coded(png(samples, bits, 0, trns=struct.pack(">H", key), interlace=True))
    assert out.shape == (SIZE, SIZE) and np.array_equal(out, samples * (255 // ((1 << bits) - 1)))


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_grey_key_bits_above_the_depth_are_ignored(bits):
    """A key with bits above the depth set (out of spec): as libpng, and Pillow at 8 bits,
    only its low ``bits`` count."""
    samples = _grey_samples(bits, 11)
    key = int(samples[1, 1])
    data = png(samples, bits, 0, trns=struct.pack(">H", 0x100 | key))
    out = _coded(data)
    assert np.array_equal(out[:, :, 1], np.where(samples == key, 0, 255))
    if bits == 8:
        with _open(data) as image:
            assert np.array_equal(out, np.asarray(image.convert("LA")))


def test_the_callers_image_is_left_as_it_was():
    samples = _grey_samples(4, 3)
    with _open(png(samples, 4, 0, trns=struct.pack(">H", int(samples[0, 0])))) as image:
        info = dict(image.info)
        assert api.to_array(image).shape == (SIZE, SIZE, 2)
        assert image.info == info and np.array_equal(np.asarray(image), samples * 17)


# -- grey, 1 and 16 bits: refused in one line, keyed or not ----------------------------------
@pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "unkeyed"])
@pytest.mark.parametrize("bits,mode", [(1, "1"), (16, "I;16")])
def test_grey_1_and_16_bit_are_refused(bits, mode, keyed):
    samples = _grey_samples(bits, 5)
    data = png(samples, bits, 0, trns=struct.pack(">H", int(samples[0, 0])) if keyed else None)
    for source in (io.BytesIO(data), _open(data)):
        with pytest.raises(UnsupportedImage) as error:
            neuralzip.compress(source if isinstance(source, Image.Image) else api.read_image(source))
        assert f"unsupported image mode '{mode}'" in _one_line(error)


# -- RGB, 8 bits (tbrn2c08), and 16 bits: refused ----------------------------------------------
@pytest.mark.parametrize("interlace", [False, True], ids=["plain", "interlaced"])
def test_rgb_key_comes_back_as_rgba(interlace):
    samples = np.random.default_rng(8).integers(0, 4, (SIZE, SIZE, 3)) * 85  # repeats the key
    key = tuple(int(v) for v in samples[2, 2])
    data = png(samples, 8, 2, trns=struct.pack(">HHH", *key), interlace=interlace)
    out = _coded(data)
    with _open(data) as image:
        assert np.array_equal(out, np.asarray(image.convert("RGBA")))
    assert np.array_equal(out[:, :, :3], samples)
    assert np.array_equal(out[:, :, 3], np.where((samples == key).all(axis=2), 0, 255))
    assert (out[:, :, 3] == 0).sum() > 1


@pytest.mark.parametrize("interlace", [False, True], ids=["plain", "interlaced"])
def test_rgb_16_bit_key_is_refused(interlace):
    samples = np.random.default_rng(16).integers(0, 65536, (SIZE, SIZE, 3))
    data = png(samples, 16, 2, trns=struct.pack(">HHH", *samples[0, 0]), interlace=interlace)
    with pytest.raises(UnsupportedImage) as error:
        api.read_image(io.BytesIO(data))
    assert "16-bit RGB image" in _one_line(error)
    with _open(data) as image, pytest.raises(UnsupportedImage, match="16-bit RGB image"):
        neuralzip.compress(image)


# -- palette, 1, 2, 4 and 8 bits (tp0n1g08's kin, tp1n3p08, tbbn3p08) --------------------------
@pytest.mark.parametrize("interlace", [False, True], ids=["plain", "interlaced"])
@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_palette_key_comes_back_as_rgba(bits, interlace):
    entries = 1 << bits
    rng = np.random.default_rng(100 + bits)
    palette = rng.integers(0, 256, (entries, 3))
    alphas = np.full(entries, 255)
    alphas[0], alphas[entries - 1] = 0, 128  # one fully, one half transparent entry
    indices = rng.integers(0, entries, (SIZE, SIZE))
    data = png(indices, bits, 3, plte=palette, trns=bytes(alphas.astype(np.uint8)), interlace=interlace)
    out = _coded(data)
    with _open(data) as image:
        assert np.array_equal(out, np.asarray(image.convert("RGBA")))
    assert np.array_equal(out[:, :, :3], palette[indices]) and np.array_equal(out[:, :, 3], alphas[indices])


def test_cli_round_trip_of_a_4_bit_keyed_grey_png(tmp_path):
    from click.testing import CliRunner

    from neuralzip.cli import main

    samples = _grey_samples(4, 9)
    key = int(samples[0, 0])
    path = tmp_path / "ftbbn0g04.png"
    path.write_bytes(png(samples, 4, 0, trns=struct.pack(">H", key), interlace=True))
    assert CliRunner().invoke(main, ["compress", str(path)]).exit_code == 0
    path.unlink()
    assert CliRunner().invoke(main, ["decompress", str(path.with_suffix(".nz"))]).exit_code == 0
    with Image.open(path) as back:
        assert back.mode == "LA"
        out = np.asarray(back)
    assert np.array_equal(out[:, :, 0], samples * 17) and np.array_equal(out[:, :, 1], np.where(samples == key, 0, 255))
