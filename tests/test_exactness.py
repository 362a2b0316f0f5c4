"""The decoder's tables equal the encoder's bit for bit: whole-image pass versus one
diagonal at a time, any BLAS thread count, any batch split."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from neuralzip.analysis import analyse
from neuralzip.codec import decoding_order
from neuralzip.context import fit_ls


def _encoder_tables(codec, rgb, colour_channels):
    h, w, _ = rgb.shape
    coefs = codec.choose_coefs(rgb, colour_channels)[0]
    symbols, freqs, _ = codec.frequency_tables(rgb, coefs, colour_channels)
    return [f for _, f in decoding_order(symbols, freqs, h, w)]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("grey", [False, True])
def test_diagonal_decoder_tables_equal_full_image_encoder_tables(codec, sample, threads, grey):
    rgb = sample[:, :120]  # 19,200 pixels: per-image LS coefficients
    if grey:  # coded as one channel: the context holds it as three copies
        rgb = np.repeat(rgb[:, :, 1:2], 3, axis=2)
    colour_channels = 1 if grey else 3
    image = rgb[:, :, 0] if grey else rgb
    with threadpool_limits(threads):
        expected = _encoder_tables(codec, rgb, colour_channels)
        data, _ = codec.encode(image)
        recorded = []
        decoded = codec.decode(data, record=recorded)
    assert np.array_equal(decoded, image)
    per_step = 2 * colour_channels  # coarse and fine table of each coded channel
    got = [np.concatenate(recorded[i : i + per_step]) for i in range(0, len(recorded), per_step)]
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert np.array_equal(a, b)


def test_integer_model_is_independent_of_batch_split_and_threads(codec, sample):
    feats = analyse(sample, fit_ls(sample)).features
    with threadpool_limits(2):
        whole = codec.mlp(feats)
    with threadpool_limits(1):
        for split in (1, 7, 140, 4096):
            parts = np.concatenate([codec.mlp(feats[a : a + split]) for a in range(0, len(feats), split)])
            assert np.array_equal(parts, whole)


def test_decoding_with_one_or_two_threads_gives_the_same_pixels(codec, urban_crop):
    data, _ = codec.encode(urban_crop)
    for threads in (1, 2):
        with threadpool_limits(threads):
            assert np.array_equal(codec.decode(data), urban_crop)
