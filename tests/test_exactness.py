"""The compiled kernel computes exactly what the numpy reference (tests/reference.py) does,
and the decoder rebuilds the encoder's tables bit for bit: whole image versus one diagonal
at a time, any thread count, any chunking of the encoder, any instruction-set path."""

from dataclasses import replace

import numpy as np
import pytest
import reference

from neuralzip import zoo
from neuralzip.core import _kernel
from neuralzip.core import codec as codec_module
from neuralzip.core.codec import Codec, adapted
from neuralzip.core.container import Header
from neuralzip.core.context import complete_coefs
from neuralzip.core.kernel import image_kernel, step_sizes
from neuralzip.core.ls import fit_ls
from neuralzip.core.terms import analyse


def _reference_order(codec, rgb, coefs, colour_channels):
    """(symbols, tables) of every subpixel in decoding order, from the numpy reference."""
    symbols, freqs = reference.frequency_tables(codec.zoo_model.model, rgb, coefs, colour_channels)
    steps = list(reference.decoding_order(symbols, freqs, *rgb.shape[:2]))
    return np.concatenate([s for s, _ in steps]), np.concatenate([f for _, f in steps])


def _kernel_order(codec, rgb, coefs, colour_channels, threads):
    kernel = image_kernel(rgb.copy(), coefs, colour_channels, codec.zoo_model.model, threads)
    kernel.compute_residuals()
    rows = rgb.shape[0] * rgb.shape[1] * colour_channels * 2
    symbols, tables = np.empty(rows, np.int32), np.empty((rows, 16))
    assert kernel.encode_steps(0, kernel.num_steps(), symbols, tables)[0] == rows
    return symbols, tables


@pytest.mark.parametrize("grey", [False, True])
def test_kernel_tables_equal_the_numpy_reference(context_codec, sample, grey):
    codec = context_codec
    rgb = np.ascontiguousarray(sample[:57, :83])
    if grey:  # coded as one channel: the context holds it as three copies
        rgb = np.repeat(rgb[:, :, 1:2], 3, axis=2)
    colour_channels = 1 if grey else 3
    coefs = complete_coefs(fit_ls(rgb), colour_channels)
    want_symbols, want_tables = _reference_order(codec, rgb, coefs, colour_channels)
    for threads in (1, 2, 3):
        symbols, tables = _kernel_order(codec, rgb, coefs, colour_channels, threads)
        assert np.array_equal(symbols, want_symbols)
        assert np.array_equal(tables, want_tables)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (3, 4), (4, 5), (6, 13)])
def test_kernel_matches_the_reference_on_noise_at_every_border(context_codec, shape):
    codec = context_codec
    rng = np.random.default_rng(sum(shape))
    rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    rgb[0, 0] = (0, 255, 0)  # extremes, where the tails take the mass
    coefs = codec.zoo_model.model.default_coefs
    want = _reference_order(codec, rgb, coefs, 3)
    got = _kernel_order(codec, rgb, coefs, 3, threads=2)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


@pytest.fixture()
def split_policy():
    """Restores the decoder's back-off from the two-part first layer after a test sets it."""
    yield _kernel.set_split_policy
    _kernel.set_split_policy(128, 256)


@pytest.mark.parametrize("shape", [(2, 30), (5, 12), (9, 11), (24, 40), (40, 17), (64, 240)])
def test_the_decoder_gives_the_same_tables_in_one_pass_and_in_two_parts(context_codec, sample, shape, split_policy):
    """With a worker, an int16 model's decoder computes layer 0 in two parts: the next
    step's early inputs while the caller pulls symbols, the late ones (W, NE3, MED, ...)
    at its step; one thread decodes in one pass, and so does a decoder whose worker is kept
    off its core, for a while (here forced: one step in two parts, then 3 in one pass).
    Crops of a photo (coded by the model: every step's tables are recorded) at shapes where
    most pixels are near an edge (all inputs late), and one with many inner pixels."""
    rgb = np.ascontiguousarray(sample[: shape[0], : shape[1]])
    data = Codec(context_codec.zoo_model, threads=1).encode(rgb)[0]
    steps = shape[1] + 4 * (shape[0] - 1)
    tables = {}
    runs = (("one pass", 1), ("two parts", 2), ("three threads", 3), ("eight threads", 8), ("backing off", 2))
    for run, threads in runs:
        if run == "backing off":
            split_policy(257, 3)
        tables[run] = []
        decoded = Codec(context_codec.zoo_model, threads=threads).decode(data, record=tables[run])
        assert np.array_equal(decoded, rgb)
        assert len(tables[run]) == 6 * steps  # every step, channel and stage: the model coded it
    for run, _ in runs[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(tables["one pass"], tables[run], strict=True))


def _extreme_mixtures(seed: int):
    """The float64 photo model (whose outputs can reach the clamps) with output biases that
    put every mixture parameter at and past the ends of its range: means to +-2**24 (q4),
    log-scales beyond both table ends, logits whose gaps give weight 0, couplings large."""
    model = zoo.load("photo", bytes.fromhex("265c3c51")).model
    mlp, k = model.mlp, model.mlp.components
    rng = np.random.default_rng(seed)
    unit = 2.0 ** (mlp.fracs[-1] + 8)  # one output unit in the output layer's bias units
    rows = [rng.integers(-400, 401, (3, k)),  # logits (1/16 nat): gaps past LOGIT_RANGE
            rng.choice([-(1 << 25), -(1 << 23), -5000, 0, 5000, 1 << 23, 1 << 25], (3, k)),  # means (q4)
            rng.integers(-260, 300, (3, k)),  # log-scale indices, past both ends
            rng.integers(-(1 << 12), 1 << 12, (3, k))]  # couplings (2**-8)
    bias = mlp.biases[-1] + np.concatenate(rows).reshape(-1) * unit
    return replace(model, mlp=replace(mlp, biases=[*mlp.biases[:-1], bias]))


@pytest.mark.parametrize("path", ["scalar", *_kernel.ISA_PATHS])
def test_every_path_gives_the_reference_tables_at_extreme_mixtures(codec, path):
    """Each compiled table path (plain C, AVX2, AVX-512 gathers in exact float64) against
    the numpy reference, on noise with the pixel extremes and mixtures at every clamp."""
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (7, 11, 3), dtype=np.uint8)
    rgb[0, :3] = [(0, 255, 0), (255, 0, 255), (0, 0, 0)]
    _kernel.set_isa(path)
    try:
        for seed in range(12):
            model = _extreme_mixtures(seed)
            with_model = replace(codec.zoo_model, model=model)
            kernel_codec = Codec(with_model, threads=2)
            want = _reference_order(kernel_codec, rgb, model.default_coefs, 3)
            got = _kernel_order(kernel_codec, rgb, model.default_coefs, 3, threads=2)
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), seed
    finally:
        _kernel.set_isa(_kernel.ISA)


@pytest.mark.parametrize("context", [1, 2])
def test_kernel_features_and_ls_fit_equal_the_reference(sample, context):
    img = np.ascontiguousarray(sample[:40, :50])
    h, w, _ = img.shape
    coefs = fit_ls(img)
    ctx = reference.Context.from_image(img, coefs)
    rows, cols = np.divmod(np.arange(h * w), w)
    feats, _ = ctx.features(rows, cols, context)
    terms = analyse(img, coefs, context)
    assert np.array_equal(terms.features, reference.quantize_features(feats))
    assert np.array_equal(terms.residuals_q4, ctx.residuals.reshape(-1, 3))
    assert np.array_equal(coefs, reference.fit_ls(img))


@pytest.mark.parametrize("grey", [False, True])
def test_decoder_tables_equal_the_reference_encoder_tables(context_codec, sample, grey):
    codec = context_codec
    rgb = np.ascontiguousarray(sample[:, :120])  # 19,200 pixels: per-image LS coefficients
    if grey:
        rgb = np.repeat(rgb[:, :, 1:2], 3, axis=2)
    colour_channels = 1 if grey else 3
    image = rgb[:, :, 0] if grey else rgb
    coefs = codec.choose_coefs(rgb, colour_channels)[0]
    data, _ = codec.encode(image)
    adaptation = Header.unpack(data)[0].adaptation  # the encoder's per-image adaptation, if it chose one
    model = codec.zoo_model.model if adaptation is None else adapted(codec.zoo_model.model, adaptation)
    symbols, freqs = reference.frequency_tables(model, rgb, coefs, colour_channels)
    expected = [f for _, f in reference.decoding_order(symbols, freqs, *rgb.shape[:2])]
    recorded = []
    assert np.array_equal(codec.decode(data, record=recorded), image)
    per_step = 2 * colour_channels  # coarse and fine table of each coded channel
    got = [np.concatenate(recorded[i : i + per_step]) for i in range(0, len(recorded), per_step)]
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert np.array_equal(a, b)


def test_bytes_and_pixels_do_not_depend_on_threads_or_encoder_chunks(codec, urban_crop, monkeypatch):
    one = Codec(codec.zoo_model, threads=1)
    data, _ = one.encode(urban_crop)
    for threads in (2, 3):
        assert Codec(codec.zoo_model, threads=threads).encode(urban_crop)[0] == data
    monkeypatch.setattr(codec_module, "ENCODE_CHUNK_PIXELS", 97)  # many chunks, cut mid-image
    assert one.encode(urban_crop)[0] == data
    for threads in (1, 2):
        assert np.array_equal(Codec(codec.zoo_model, threads=threads).decode(data), urban_crop)


@pytest.mark.parametrize("h,w", [(1, 1), (1, 7), (7, 1), (5, 9), (512, 768), (768, 512)])
def test_kernel_steps_are_the_reference_wavefront(h, w):
    kernel = image_kernel(np.zeros((h, w, 3), np.uint8), np.zeros(65, np.int64), 3)
    assert np.array_equal(step_sizes(kernel), [r.size for r, _ in reference.wavefront(h, w)])
