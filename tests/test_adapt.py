"""Per-image adaptation (format version 3, flags bit 4): bias offsets of the last hidden
layer and the output layer that the encoder tunes to each image and stores; the decoder
adds them to the integer model exactly."""

import numpy as np
import pytest
import reference

import neuralzip
from neuralzip.core import adapt
from neuralzip.core.codec import Codec, DecodeError
from neuralzip.core.container import FormatError, Header, pack_bias_offsets, unpack_bias_offsets, _Reader


@pytest.fixture(scope="module")
def photo(sample) -> np.ndarray:
    """A 160x128 crop (over adapt.MIN_PIXELS) with sensor-like noise the model was not
    trained on: adaptation pays (the clean crop is judged not worth its header bytes)."""
    noise = np.random.default_rng(0).integers(-6, 7, (160, 128, 3))
    return np.clip(sample[:, :128].astype(np.int64) + noise, 0, 255).astype(np.uint8)


def test_offsets_shift_activations_and_outputs_exactly(codec):
    model = codec.zoo_model.model
    rng = np.random.default_rng(0)
    features = rng.integers(-2000, 2000, (500, model.mlp.weights[0].shape[0]))
    outputs = rng.integers(-127, 128, model.mlp.biases[-1].shape)
    before = reference.mlp_outputs(model.mlp, features).reshape(len(features), -1)
    after = reference.mlp_outputs(model.with_bias_offsets([None, None, outputs]).mlp, features)
    assert np.array_equal(after.reshape(len(features), -1), before + outputs)
    # a hidden offset of d moves that unit's activation by d / 256 before its clamp: with
    # the next layer's weights w, the outputs move as adding d * w to the next sums would
    hidden = np.zeros(model.mlp.biases[1].shape, np.int64)
    hidden[5] = 300
    shifted = model.with_bias_offsets([None, hidden, None])
    assert not np.array_equal(reference.mlp_outputs(shifted.mlp, features), reference.mlp_outputs(model.mlp, features))
    with pytest.raises(ValueError, match="bias offsets"):
        model.with_bias_offsets([None, None, outputs[:-1]])
    with pytest.raises(ValueError, match="layers"):
        model.with_bias_offsets([None, outputs])


def test_the_offset_block_round_trips():
    eights = np.array([0, -8, 8, 296, -16384, 16384])
    offsets = [None, eights, np.arange(-36, 36), eights + 1]
    block = pack_bias_offsets(offsets)
    back = unpack_bias_offsets(_Reader(block + b"rest"))
    assert back[0] is None and all(np.array_equal(a, b) for a, b in zip(back[1:], offsets[1:]))
    assert len(pack_bias_offsets([np.full(128, 8 * 63)])) == 1 + 2 + 1 + 128  # multiples of 8: a byte each
    for bad in (b"\x00", b"\x11", b"\x01\x80\x20", b"\x01\x02\x00\x01", b"\x01\x01\x09\x00"):
        with pytest.raises(FormatError):  # no layers, too many; too many units; short; scale over 8
            unpack_bias_offsets(_Reader(bad))


@pytest.mark.parametrize("grey", [False, True])
def test_adapted_files_are_smaller_and_decode_exactly(photo, sample, grey):
    image = np.ascontiguousarray(sample[:, :, 1]) if grey else photo  # grey: the whole 240x160 photo
    adapted, plain = Codec.named("photo").encode(image)[0], Codec.named("photo", adapt=False).encode(image)[0]
    offsets = Header.unpack(adapted)[0].bias_offsets
    assert offsets is not None and Header.unpack(plain)[0].bias_offsets is None
    assert [None if o is None else len(o) for o in offsets] == [None, 128, 72]
    assert len(adapted) < len(plain)
    assert np.array_equal(neuralzip.decompress(adapted), image)
    assert Codec.named("photo").encode(image)[0] == adapted  # the same choice again on this machine


def test_small_images_and_offsets_that_do_not_pay_are_left_out(urban_crop, sample):
    assert urban_crop.shape[0] * urban_crop.shape[1] < adapt.MIN_PIXELS
    assert Header.unpack(neuralzip.compress(urban_crop))[0].bias_offsets is None
    clean = np.ascontiguousarray(sample[:, :100])  # the photo the model fits: not worth the header bytes
    assert Header.unpack(neuralzip.compress(clean))[0].bias_offsets is None


def test_the_sample_of_a_large_image_is_tiles_with_their_context(photo):
    big = np.ascontiguousarray(np.tile(photo, (3, 3, 1)))  # 480x384: over adapt.SAMPLE_PIXELS
    terms = adapt.sample_terms(big, Codec.named("photo").choose_coefs(big, 3)[0])
    tiles = -(-adapt.SAMPLE_PIXELS // adapt.TILE**2)
    assert len(terms.pixels) == tiles * adapt.TILE**2 and terms.features.shape == (len(terms.pixels), 75)


def _with_offsets(data: bytes, offsets) -> bytes:
    header, offset = Header.unpack(data)
    header.bias_offsets = offsets
    return header.pack() + data[offset:]


def test_damaged_offsets_are_refused(photo):
    data = neuralzip.compress(photo)
    offsets = Header.unpack(data)[0].bias_offsets
    with pytest.raises(DecodeError, match="bias offsets for layer 2"):  # not the model's unit count
        neuralzip.decompress(_with_offsets(data, [None, offsets[1], offsets[2][:-1]]))
    with pytest.raises(DecodeError, match="layers"):
        neuralzip.decompress(_with_offsets(data, offsets[1:]))
    for extreme in (1 << 30, -(1 << 30)):  # the largest a file holds: sums stay exact, tables stay valid
        for layer in (1, 2):
            crafted = [None, offsets[1], offsets[2]]
            crafted[layer] = np.full_like(offsets[layer], extreme)
            with pytest.raises(DecodeError):
                neuralzip.decompress(_with_offsets(data, crafted))
    changed = [None, offsets[1], offsets[2].copy()]
    changed[2][7] += 1
    with pytest.raises(DecodeError):  # other tables: the payload no longer decodes to the pixels
        neuralzip.decompress(_with_offsets(data, changed))
    assert data[3] & 0x10
    with pytest.raises(FormatError, match="unknown header flags"):  # version 2 has no offsets
        Header.unpack(data[:2] + b"\x02" + data[3:])


def test_fast_skips_the_adaptation(tmp_path, photo):
    from click.testing import CliRunner
    from PIL import Image

    from neuralzip.cli import main

    Image.fromarray(photo).save(tmp_path / "p.png")
    for flags, adapted in (([], True), (["--fast"], False)):
        result = CliRunner().invoke(main, ["compress", str(tmp_path / "p.png"), "-f", "-q", *flags])
        assert result.exit_code == 0, result.output
        assert (Header.unpack((tmp_path / "p.nz").read_bytes())[0].bias_offsets is not None) == adapted
    assert Header.unpack(neuralzip.compress(photo, fast=True))[0].bias_offsets is None
