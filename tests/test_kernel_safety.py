"""The compiled kernel refuses misuse instead of computing garbage or crashing: calls out of
order, a second thread on one kernel, buffers of the wrong type, tables and weights that
break the bounds its exactness rests on, and objects that were never initialised."""

import platform
import threading

import numpy as np
import pytest

from neuralzip import zoo
from neuralzip.core import _kernel
from neuralzip.core.kernel import ImageKernel, image_kernel, kernel_arguments
from neuralzip.core.units import STAGE


@pytest.fixture()
def model(codec):
    return codec.zoo_model.model


def _decoder(model, size=(16, 24)):
    planes = np.zeros((*size, 3), np.uint8)
    return image_kernel(planes, model.default_coefs, 3, model, threads=2)


def test_decoder_calls_out_of_order_are_refused(model):
    kernel = _decoder(model)
    tables = np.empty((kernel.max_step_size(), STAGE))
    with pytest.raises(RuntimeError, match="out of order"):  # no step begun
        kernel.advance(np.zeros(0, np.int32), tables)
    n = kernel.begin_step(0, tables)
    symbols = np.zeros(n, np.int32)
    for _ in range(6):  # two stages of each of the three channels
        kernel.advance(symbols, tables)
    with pytest.raises(RuntimeError, match="out of order"):  # the step is complete
        kernel.advance(symbols, tables)


def test_decoder_buffers_are_checked(model):
    kernel = _decoder(model)
    tables = np.empty((kernel.max_step_size(), STAGE))
    with pytest.raises(ValueError, match="too small"):
        kernel.begin_step(kernel.num_steps() // 2, tables[:1])
    n = kernel.begin_step(kernel.num_steps() // 2, tables)
    assert n > 1
    with pytest.raises(ValueError, match="symbol out of range"):
        kernel.advance(np.full(n, STAGE, np.int32), tables)
    with pytest.raises(ValueError, match="too small"):
        kernel.advance(np.zeros(n, np.int32), tables[:1])
    with pytest.raises(ValueError):  # one symbol per pixel of the step
        kernel.advance(np.zeros(n + 1, np.int32), tables)
    kernel.advance(np.zeros(n, np.int32), tables)  # the refusals left the step where it was


def test_encoding_needs_the_residuals_first(model, sample):
    kernel = image_kernel(np.array(sample), model.default_coefs, 3, model)
    symbols, tables = np.empty(1 << 16, np.int32), np.empty((1 << 16, STAGE))
    with pytest.raises(RuntimeError, match="compute_residuals"):
        kernel.encode_steps(0, 10, symbols, tables)
    kernel.compute_residuals()
    kernel.encode_steps(0, 10, symbols, tables)


def test_a_second_thread_on_one_kernel_is_refused(model):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (384, 384, 3), dtype=np.uint8)
    kernel = image_kernel(image, model.default_coefs, 3, model, threads=2)
    kernel.compute_residuals()
    steps = kernel.num_steps()
    symbols, tables = np.empty(6 * 384 * 384, np.int32), np.empty((6 * 384 * 384, STAGE))
    step_tables = np.empty((kernel.max_step_size(), STAGE))
    started, refused = threading.Event(), []

    def encode():
        started.set()
        kernel.encode_steps(0, steps, symbols, tables)

    worker = threading.Thread(target=encode)
    worker.start()
    started.wait()
    while worker.is_alive():
        try:
            kernel.begin_step(0, step_tables)
        except RuntimeError as exc:
            refused.append(str(exc))
    worker.join()
    assert refused and "in use by another thread" in refused[0]
    again = np.empty_like(symbols), np.empty_like(tables)
    kernel.encode_steps(0, steps, *again)  # the kernel is whole afterwards: the same tables again
    assert np.array_equal(again[0], symbols) and np.array_equal(again[1], tables)


def test_uninitialised_and_reinitialised_kernels_are_refused(model):
    bare = ImageKernel.__new__(ImageKernel)
    for call in (bare.num_steps, bare.max_step_size, bare.compute_residuals):
        with pytest.raises(RuntimeError, match="not initialised"):
            call()
    kernel = _decoder(model)
    with pytest.raises(RuntimeError, match="once"):
        kernel.__init__(weights=None, biases=None, fracs=None, components=1, sigmoid=None, inv_scale=None,
                        weight=None, coefs=model.default_coefs, pixels=np.zeros((2, 2, 3), np.uint8),
                        colour_channels=3, threads=1)


def _arguments(model, **changes):
    args = kernel_arguments(np.zeros((4, 4, 3), np.uint8), model.default_coefs, 3, model, threads=1)
    args.update(changes)
    return args


def test_buffers_of_the_wrong_type_are_refused(model):
    ImageKernel(**_arguments(model))  # the right types
    bad = {
        "weights": [np.ascontiguousarray(w, np.int64) for w in model.mlp.weights],
        "biases": [np.ascontiguousarray(b, np.float64) for b in model.mlp.biases],
        "sigmoid": model.tables.sigmoid.astype(np.float64),
        "coefs": np.asarray(model.default_coefs, np.float64),
        "pixels": np.zeros((4, 4, 3), np.int8),
    }
    for name, value in bad.items():
        with pytest.raises(ValueError):
            ImageKernel(**_arguments(model, **{name: value}))


def test_weights_and_tables_outside_their_bounds_are_refused(model):
    model = zoo.load("photo", bytes.fromhex("265c3c51")).model  # float64 arithmetic (int16: test_int16.py)
    big = [np.array(w, order="C") for w in model.mlp.weights]
    big[1][0, 0] = 2.0**45  # a sum could leave exact float64
    fractional = [np.array(w, order="C") for w in model.mlp.weights]
    fractional[0][3, 3] += 0.5
    sigmoid = model.tables.sigmoid.copy()
    sigmoid[100] = sigmoid[101] + 1  # not monotone
    inv = model.tables.inv_scale.copy()
    inv[0] = 0
    weight = model.tables.weight.copy()
    weight[3] = -1
    coefs = np.asarray(model.default_coefs, np.int64).copy()
    coefs[0] = 40000  # residual planes are int16
    for name, value in (("weights", big), ("weights", fractional), ("sigmoid", sigmoid), ("inv_scale", inv),
                        ("weight", weight), ("coefs", coefs)):
        with pytest.raises(ValueError):
            ImageKernel(**_arguments(model, **{name: value}))


def test_the_instruction_set_paths_are_listed():
    baseline = {"x86_64": "x86-64", "amd64": "x86-64", "aarch64": "aarch64", "arm64": "aarch64"}
    assert _kernel.ISA_PATHS[0] == baseline.get(platform.machine().lower(), "x86-64")
    assert _kernel.ISA in _kernel.ISA_PATHS


def test_the_kernel_holds_the_units_of_units_py(monkeypatch):
    """Every constant and layout the kernel shares with units.py (neighbour offsets, LS
    design sizes, table ranges) is compared at import: an edit on one side alone fails."""
    from neuralzip.core import kernel, units

    assert kernel._kernel_disagrees() == []
    monkeypatch.setattr(units, "WIDE_RESIDUALS", (1, 4, 8, 14))
    monkeypatch.setattr(units, "NEIGHBOURS", units.NEIGHBOURS[::-1])
    assert sorted(kernel._kernel_disagrees()) == ["NEIGHBOURS", "WIDE_RESIDUALS"]
