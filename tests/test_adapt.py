"""Per-image adaptation (format version 3, flags bit 4): bias offsets of the last hidden
layer and the output layer and output gains that the encoder tunes to each image and
stores; the decoder applies them to the integer model exactly."""

import numpy as np
import pytest
import reference

import neuralzip
from neuralzip import zoo
from neuralzip.core import adapt
from neuralzip.core.adaptation_block import Adaptation
from neuralzip.core.codec import Codec, DecodeError, adapted
from neuralzip.core.container import Header
from neuralzip.core.fields import FormatError, Reader


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


def test_gains_scale_each_outputs_weights_in_integers(codec):
    model = codec.zoo_model.model
    gains = np.random.default_rng(2).integers(-255, 256, model.mlp.biases[-1].shape)
    scaled = model.with_output_gains(gains).mlp.weights[-1]
    weights = model.mlp.weights[-1].astype(np.int64)
    assert np.array_equal(scaled, (weights * (256 + gains) + 128) // 256)
    assert np.array_equal(model.with_output_gains(np.zeros_like(gains)).mlp.weights[-1], model.mlp.weights[-1])
    with pytest.raises(ValueError, match="output gains"):
        model.with_output_gains(np.full_like(gains, 256))


def test_the_adaptation_block_round_trips():
    eights = np.array([0, -8, 8, 296, -16384, 16384])
    adaptation = Adaptation([None, eights, np.arange(-36, 36), eights + 1], np.arange(-5, 5))
    back = Adaptation.unpack(Reader(adaptation.pack() + b"rest"))
    assert back.bias_offsets[0] is None and np.array_equal(back.output_gains, adaptation.output_gains)
    assert all(np.array_equal(a, b) for a, b in zip(back.bias_offsets[1:], adaptation.bias_offsets[1:]))
    assert Adaptation.unpack(Reader(Adaptation([np.ones(3)]).pack())).output_gains is None
    assert len(Adaptation([np.full(128, 8 * 63)]).pack()) == 1 + (2 + 1 + 128) + 1  # multiples of 8: a byte each
    for bad in (b"\x00", b"\x11", b"\x01\x80\x20", b"\x01\x02\x00\x01", b"\x01\x01\x09\x00", b"\x01\x00"):
        with pytest.raises(FormatError):  # no layers, too many; too many values; short; scale over 8; no gains
            Adaptation.unpack(Reader(bad))


@pytest.mark.parametrize("grey", [False, True])
def test_adapted_files_are_smaller_and_decode_exactly(photo, sample, grey):
    # grey: the whole 240x160 photo at twice its contrast (clipped), which the model fits less well
    contrast = np.clip(2 * (sample[:, :, 1].astype(np.int64) - 128) + 128, 0, 255).astype(np.uint8)
    image = contrast if grey else photo
    codec = zoo.codec("photo", effort=4)
    adapted_file, plain = codec.encode(image)[0], _unadapted(image)
    adaptation = Header.unpack(adapted_file)[0].adaptation
    assert adaptation is not None and Header.unpack(plain)[0].adaptation is None
    widths = [len(b) for b in codec.zoo_model.model.mlp.biases]  # photo-wide: 256, 256, 72
    assert [None if o is None else len(o) for o in adaptation.bias_offsets] == [None, *widths[1:]]
    assert len(adaptation.output_gains) == 72
    assert len(adapted_file) < len(plain)
    assert np.array_equal(neuralzip.decompress(adapted_file), image)
    assert zoo.codec("photo", effort=4).encode(image)[0] == adapted_file  # the same choice again


def test_small_images_and_offsets_that_do_not_pay_are_left_out(urban_crop, sample):
    assert urban_crop.shape[0] * urban_crop.shape[1] < adapt.MIN_PIXELS
    assert Header.unpack(neuralzip.compress(urban_crop))[0].adaptation is None
    clean = np.ascontiguousarray(sample[:, :100])  # the photo the model fits: not worth the header bytes
    assert Header.unpack(neuralzip.compress(clean))[0].adaptation is None


def test_the_sample_of_a_large_image_is_tiles_with_their_context(photo):
    big = np.ascontiguousarray(np.tile(photo, (3, 3, 1)))  # 480x384: over a sample of 65,536 pixels
    sample = 1 << 16
    terms = adapt.sample_terms(big, zoo.codec("photo").choose_coefs(big, 3)[0], 1, sample)
    tiles = -(-sample // adapt.TILE**2)
    assert len(terms.pixels) == tiles * adapt.TILE**2 and terms.features.shape == (len(terms.pixels), 75)


def _unadapted(image: np.ndarray) -> bytes:
    """The effort-4 file of ``image`` without the adaptation (every effort level adapts)."""
    from dataclasses import replace

    codec = zoo.codec("photo", effort=4)
    codec.effort = replace(codec.effort, search=None)
    return codec.encode(image)[0]


def _with(data: bytes, adaptation: Adaptation) -> bytes:
    header, offset = Header.unpack(data)
    header.adaptation = adaptation
    return header.pack() + data[offset:]


def test_damaged_adaptations_are_refused(photo):
    data = neuralzip.compress(photo)
    found = Header.unpack(data)[0].adaptation
    offsets, gains = found.bias_offsets, found.output_gains
    with pytest.raises(DecodeError, match="bias offsets for layer 2"):  # not the model's unit count
        neuralzip.decompress(_with(data, Adaptation([None, offsets[1], offsets[2][:-1]], gains)))
    with pytest.raises(DecodeError, match="layers"):
        neuralzip.decompress(_with(data, Adaptation(offsets[1:], gains)))
    with pytest.raises(DecodeError, match="output gains"):
        neuralzip.decompress(_with(data, Adaptation(offsets, gains[:-1])))
    with pytest.raises(DecodeError, match="output gains"):
        neuralzip.decompress(_with(data, Adaptation(offsets, np.full_like(gains, 300))))
    for extreme in (1 << 30, -(1 << 30)):  # the largest a file holds: sums stay exact, tables stay valid
        for layer in (1, 2):
            crafted = [None, offsets[1], offsets[2]]
            crafted[layer] = np.full_like(offsets[layer], extreme)
            with pytest.raises(DecodeError):
                neuralzip.decompress(_with(data, Adaptation(crafted, gains)))
    changed = gains.copy()
    changed[7] += 1 if changed[7] < 255 else -1
    with pytest.raises(DecodeError):  # other tables: the payload no longer decodes to the pixels
        neuralzip.decompress(_with(data, Adaptation(offsets, changed)))
    assert data[3] & 0x10
    with pytest.raises(FormatError, match="unknown header flags"):  # version 2 has no adaptation
        Header.unpack(data[:2] + b"\x02" + data[3:])


def test_the_decoder_applies_what_the_file_says(photo, codec):
    data = codec.encode(photo)[0]
    model = adapted(codec.zoo_model.model, Header.unpack(data)[0].adaptation)
    assert not np.array_equal(model.mlp.weights[-1], codec.zoo_model.model.mlp.weights[-1])
    assert not np.array_equal(model.mlp.biases[-1], codec.zoo_model.model.mlp.biases[-1])


def test_every_model_is_adapted_and_info_says_how(tmp_path, photo):
    from click.testing import CliRunner
    from PIL import Image

    from neuralzip.cli import main

    Image.fromarray(photo).save(tmp_path / "p.png")
    for flags, values in (
        ([], "201 bias offsets, 72 output gains"),  # photo-wide: 129 units in its adapted layer
        (["-e", "2"], "200 bias offsets, 72 output gains"),  # photo
        (["--fast"], "88 bias offsets, 24 output gains"),  # photo-fast
    ):
        result = CliRunner().invoke(main, ["compress", str(tmp_path / "p.png"), "-f", "-q", *flags])
        assert result.exit_code == 0, result.output
        assert Header.unpack((tmp_path / "p.nz").read_bytes())[0].adaptation is not None
        info = CliRunner().invoke(main, ["info", str(tmp_path / "p.nz")]).output
        assert f"adaptation: {values}, " in info, info


def test_the_adaptation_does_not_depend_on_thread_counts(photo):
    from threadpoolctl import threadpool_limits

    data = Codec(zoo.codec("photo").zoo_model, threads=2).encode(photo)[0]
    with threadpool_limits(1):  # numpy's BLAS on one thread, the kernel on one too
        assert Codec(zoo.codec("photo").zoo_model, threads=1).encode(photo)[0] == data
