"""Per-image adaptation (format version 3, flags bit 4): output-bias offsets the encoder
tunes to each image and stores; the decoder adds them to the integer model exactly."""

import numpy as np
import pytest
import reference

import neuralzip
from neuralzip.core import adapt
from neuralzip.core.codec import Codec, DecodeError
from neuralzip.core.container import FormatError, Header


@pytest.fixture(scope="module")
def photo(sample) -> np.ndarray:
    """A 160x128 crop (over adapt.MIN_PIXELS) with sensor-like noise the model was not
    trained on: adaptation pays (the clean crop is judged not worth its header bytes)."""
    noise = np.random.default_rng(0).integers(-6, 7, (160, 128, 3))
    return np.clip(sample[:, :128].astype(np.int64) + noise, 0, 255).astype(np.uint8)


def test_offsets_shift_every_output_exactly(codec):
    model = codec.zoo_model.model
    offsets = np.random.default_rng(0).integers(-127, 128, model.mlp.biases[-1].shape)
    features = np.random.default_rng(1).integers(-2000, 2000, (500, model.mlp.weights[0].shape[0]))
    before = reference.mlp_outputs(model.mlp, features)
    after = reference.mlp_outputs(model.with_output_bias(offsets).mlp, features)
    assert np.array_equal(after.reshape(len(features), -1), before.reshape(len(features), -1) + offsets)
    with pytest.raises(ValueError, match="output offsets"):
        model.with_output_bias(offsets[:-1])


@pytest.mark.parametrize("grey", [False, True])
def test_adapted_files_are_smaller_and_decode_exactly(photo, sample, grey):
    image = np.ascontiguousarray(sample[:, :, 1]) if grey else photo  # grey: the whole 240x160 photo
    adapted, plain = Codec.named("photo").encode(image)[0], Codec.named("photo", adapt=False).encode(image)[0]
    header = Header.unpack(adapted)[0]
    assert header.output_bias is not None and Header.unpack(plain)[0].output_bias is None
    assert len(header.output_bias) == 12 * Codec.named("photo").zoo_model.model.mlp.components
    assert len(adapted) < len(plain)
    assert np.array_equal(neuralzip.decompress(adapted), image)
    assert Codec.named("photo").encode(image)[0] == adapted  # the same choice again on this machine


def test_small_images_and_offsets_that_do_not_pay_are_left_out(urban_crop, sample):
    assert urban_crop.shape[0] * urban_crop.shape[1] < adapt.MIN_PIXELS
    assert Header.unpack(neuralzip.compress(urban_crop))[0].output_bias is None
    clean = np.ascontiguousarray(sample[:, :128])  # the photo the model fits: not worth 72 bytes
    assert Header.unpack(neuralzip.compress(clean))[0].output_bias is None


def test_the_sample_of_a_large_image_is_tiles_with_their_context(photo):
    big = np.ascontiguousarray(np.tile(photo, (3, 3, 1)))  # 480x384: over adapt.SAMPLE_PIXELS
    terms = adapt.sample_terms(big, Codec.named("photo").choose_coefs(big, 3)[0])
    tiles = -(-adapt.SAMPLE_PIXELS // adapt.TILE**2)
    assert len(terms.pixels) == tiles * adapt.TILE**2 and terms.features.shape == (len(terms.pixels), 75)


def _with_offsets(data: bytes, offsets) -> bytes:
    header, offset = Header.unpack(data)
    header.output_bias = offsets
    return header.pack() + data[offset:]


def test_damaged_offsets_are_refused(photo):
    data = neuralzip.compress(photo)
    offsets = Header.unpack(data)[0].output_bias
    with pytest.raises(DecodeError, match="output offsets"):  # not the model's count
        neuralzip.decompress(_with_offsets(data, offsets[:-1]))
    changed = offsets.copy()
    changed[7] += 1 if changed[7] < 127 else -1
    with pytest.raises(DecodeError):  # other tables: the payload no longer decodes to the pixels
        neuralzip.decompress(_with_offsets(data, changed))
    flag_at = 3
    raw = bytearray(data)
    position = data.index(np.asarray(offsets, "i1").tobytes(), 6)
    raw[position] = 0x80  # -128 is not a stored value
    with pytest.raises(FormatError, match="-128"):
        Header.unpack(bytes(raw))
    with pytest.raises(FormatError, match="unknown header flags"):  # version 2 has no offsets
        Header.unpack(data[:2] + b"\x02" + data[3:])
    assert data[flag_at] & 0x10


def test_fast_skips_the_adaptation(tmp_path, photo):
    from click.testing import CliRunner
    from PIL import Image

    from neuralzip.cli import main

    Image.fromarray(photo).save(tmp_path / "p.png")
    for flags, adapted in (([], True), (["--fast"], False)):
        result = CliRunner().invoke(main, ["compress", str(tmp_path / "p.png"), "-f", "-q", *flags])
        assert result.exit_code == 0, result.output
        assert (Header.unpack((tmp_path / "p.nz").read_bytes())[0].output_bias is not None) == adapted
    assert Header.unpack(neuralzip.compress(photo, fast=True))[0].output_bias is None
