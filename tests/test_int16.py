"""int16 arithmetic (format version 5): int16 weights and activations, int32 sums, a shift
per output. Every instruction-set path (the plain C loops, SSE2, AVX2, AVX-512) gives the
numpy reference's integers on any int16 inputs, extremes included; the bounds that make
that so are checked at load; and files name the arithmetic through the format version."""

from dataclasses import replace

import numpy as np
import pytest
import reference

from neuralzip import zoo
from neuralzip.core import _kernel
from neuralzip.core.codec import Codec, DecodeError
from neuralzip.core.container import Header
from neuralzip.core.fields import FormatError
from neuralzip.core.kernel import image_kernel
from neuralzip.core.units import INT16_MAX
from neuralzip.core.versions import REGISTERED_MODELS
from neuralzip.training.quantize import to_int16

PATHS = ["scalar", *_kernel.ISA_PATHS]


@pytest.fixture(scope="module")
def int16_codec():
    from conftest import _int16_photo

    return Codec(_int16_photo())


@pytest.fixture()
def isa():
    """Restores the instruction-set path picked at import after a test forces others."""
    yield _kernel.set_isa
    _kernel.set_isa(_kernel.ISA)


def _extreme_inputs(n_features: int, limit: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    x = rng.integers(-limit, limit + 1, (600, n_features))
    x[:100] = rng.choice([-limit, limit], (100, n_features))  # every input at an end of its range
    x[100:150] = limit
    x[150:200] = -limit
    x[200:250] = rng.integers(-3, 4, (50, n_features))
    return x.astype(np.int32)


def _kernel_outputs(model, features: np.ndarray) -> np.ndarray:
    kernel = image_kernel(np.zeros((2, 2, 3), np.uint8), model.default_coefs, 3, model, threads=1)
    out = np.empty((len(features), 12 * model.mlp.components), np.int64)
    kernel.model_outputs(features, out)
    return out.reshape(len(features), 12, -1)


@pytest.mark.parametrize("path", PATHS)
def test_every_path_gives_the_reference_outputs_at_the_extremes(int16_codec, isa, path):
    model = int16_codec.zoo_model.model
    features = _extreme_inputs(model.mlp.weights[0].shape[0], INT16_MAX)
    want = reference.mlp_outputs(model.mlp, features)
    isa(path)
    assert np.array_equal(_kernel_outputs(model, features), want)


@pytest.mark.parametrize("path", PATHS)
def test_every_path_gives_the_float64_reference_too(isa, path):
    model = zoo.load("photo", bytes.fromhex("265c3c51")).model  # registered model 3, version 4 files
    assert model.mlp.arithmetic == "float64"
    features = _extreme_inputs(model.mlp.weights[0].shape[0], 20000)
    isa(path)
    assert np.array_equal(_kernel_outputs(model, features), reference.mlp_outputs(model.mlp, features))


@pytest.mark.parametrize("path", PATHS)
def test_every_path_decodes_a_photo_to_the_same_tables(int16_codec, sample, isa, path):
    data = int16_codec.encode(sample)[0]
    want = []
    int16_codec.decode(data, record=want)
    isa(path)
    got = []
    assert np.array_equal(int16_codec.decode(data, record=got), sample)
    assert all(np.array_equal(a, b) for a, b in zip(got, want)) and len(got) == len(want)


def test_the_quantized_model_keeps_every_bound(int16_codec):
    mlp = int16_codec.zoo_model.model.mlp
    assert mlp.arithmetic == "int16"
    for w, b, shift in zip(mlp.weights, mlp.biases, mlp.fracs):
        assert np.abs(w).max() <= INT16_MAX
        assert (np.abs(w).sum(axis=0) * INT16_MAX + np.abs(b)).max() < 2**31
        assert shift.shape == b.shape and 0 <= shift.min() and shift.max() <= 30
    with pytest.raises(ValueError, match="already"):
        to_int16(int16_codec.zoo_model.model)


def test_weights_beyond_the_int32_bound_are_refused(int16_codec):
    model = int16_codec.zoo_model.model
    weights = [w.copy() for w in model.mlp.weights]
    weights[1][:, 3] = 20000  # 128 * 20000 * 32767 > 2**31
    with pytest.raises(ValueError, match="int32"):
        replace(model.mlp, weights=weights)
    arguments = dict(
        weights=[np.ascontiguousarray(w, np.int16) for w in weights],
        biases=[np.ascontiguousarray(b, np.int32) for b in model.mlp.biases],
        fracs=[np.ascontiguousarray(f, np.int32) for f in model.mlp.fracs], components=model.mlp.components,
        sigmoid=model.tables.sigmoid, inv_scale=model.tables.inv_scale, weight=model.tables.weight,
        coefs=np.asarray(model.default_coefs, np.int64), pixels=np.zeros((2, 2, 3), np.uint8), colour_channels=3,
        threads=1, context=model.context, int16=True,
    )
    with pytest.raises(ValueError, match="int32"):  # the kernel checks it again by itself
        _kernel.ImageKernel(**arguments)
    arguments["weights"][1][0, 0] = -32768  # pmaddwd's one overflow: refused
    arguments["weights"][1][:, 3] = 0
    with pytest.raises(ValueError, match="-32767"):
        _kernel.ImageKernel(**arguments)


@pytest.fixture(scope="module")
def photo_noisy(sample):
    noise = np.random.default_rng(0).integers(-6, 7, (160, 128, 3))
    return np.clip(sample[:, :128].astype(np.int64) + noise, 0, 255).astype(np.uint8)


def test_an_adaptation_that_would_overflow_is_refused(int16_codec, photo_noisy):
    data = int16_codec.encode(photo_noisy)[0]
    header, offset = Header.unpack(data)
    assert header.adaptation is not None and header.version == 5
    assert np.array_equal(int16_codec.decode(data), photo_noisy)
    header.adaptation.output_gains[:] = 255  # doubles the output weights: within the bound, other tables
    with pytest.raises(DecodeError, match="checksum|corrupted"):
        int16_codec.decode(header.pack() + data[offset:])
    header, offset = Header.unpack(data)
    header.adaptation.bias_offsets[-1][:] = 1 << 30  # far past the int32 sums
    with pytest.raises(DecodeError, match="overflow"):
        int16_codec.decode(header.pack() + data[offset:])


def test_files_name_their_arithmetic_by_version(int16_codec, sample):
    data = int16_codec.encode(sample)[0]
    header = Header.unpack(data)[0]
    assert header.version == 5 and REGISTERED_MODELS[header.model_number][1] == int16_codec.zoo_model.tag
    with pytest.raises(FormatError, match="not a model of format version 4"):
        Header.unpack(data[:2] + b"\x04" + data[3:])
    with pytest.raises(FormatError, match="not a model of format version 5"):  # model 3 is float64, version 4
        Header.unpack(data[:5] + b"\x03" + data[6:])
