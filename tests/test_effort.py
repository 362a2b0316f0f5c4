"""Effort levels (-e/--effort, ``effort=``): more encoder work for smaller files, a faster
model at level 1 and a wider one at 3-5 (the default 3 included) where they are shipped; an
effort outside 1..5 is refused in one line."""

import io

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import neuralzip
from neuralzip.cli import main
from neuralzip.core.container import Header
from neuralzip.core.effort import DEFAULT_EFFORT, EFFORTS, effort


@pytest.fixture(scope="module")
def noisy(sample) -> np.ndarray:
    noise = np.random.default_rng(3).integers(-6, 7, sample.shape)
    return np.clip(sample.astype(np.int64) + noise, 0, 255).astype(np.uint8)


def test_higher_efforts_search_longer_and_every_file_decodes(noisy):
    sizes = {}
    for level in EFFORTS:
        data = neuralzip.compress(noisy, effort=level)
        assert np.array_equal(neuralzip.decompress(data), noisy)
        sizes[level] = len(data)
        assert (Header.unpack(data)[0].adaptation is None) == (EFFORTS[level].search is None)
    assert sizes[1] > sizes[DEFAULT_EFFORT] >= sizes[max(EFFORTS)]  # level 1: a smaller model
    assert neuralzip.compress(noisy, fast=True) == neuralzip.compress(noisy, effort=1)


def test_the_lowest_effort_codes_with_the_fast_model_where_one_is_shipped(noisy):
    data = neuralzip.compress(noisy, effort=1)
    header = Header.unpack(data)[0]
    assert (header.model_name, header.model_number) == ("photo-fast", 11)  # the file names it: any decoder reads it
    assert np.array_equal(neuralzip.decompress(data), noisy)
    assert Header.unpack(neuralzip.compress(noisy, effort=2))[0].model_name == "photo"
    assert Header.unpack(neuralzip.compress(noisy[:32, :32], "cifar10", effort=1))[0].model_name == "cifar10"


def test_the_default_and_higher_efforts_code_with_the_wide_model_where_one_is_shipped(noisy):
    for level in range(DEFAULT_EFFORT, max(EFFORTS) + 1):
        data = neuralzip.compress(noisy, effort=level)
        header = Header.unpack(data)[0]
        assert (header.model_name, header.model_number) == ("photo-wide", 12)  # the file names it: any decoder reads it
        assert np.array_equal(neuralzip.decompress(data), noisy)
    assert Header.unpack(neuralzip.compress(noisy[:32, :32], "cifar10", effort=5))[0].model_name == "cifar10"
    assert Header.unpack(neuralzip.compress(noisy[:32, :32], "photo-wide", effort=2))[0].model_name == "photo-wide"


def test_efforts_outside_the_range_are_refused(noisy, tmp_path):
    with pytest.raises(ValueError, match="effort 6 is not one of 1..5"):
        neuralzip.compress(noisy, effort=6)
    with pytest.raises(ValueError, match="effort 0"):
        effort(0)
    Image.fromarray(noisy).save(tmp_path / "n.png")
    result = CliRunner().invoke(main, ["compress", str(tmp_path / "n.png"), "-e", "9"])
    assert result.exit_code == 2 and "9 is not in the range 1<=x<=5" in result.output
    assert not (tmp_path / "n.nz").exists()


def test_the_command_and_the_pillow_plugin_take_an_effort(noisy, tmp_path):
    Image.fromarray(noisy).save(tmp_path / "n.png")
    for flags, level in ((["-e", "2"], 2), (["--effort", "5"], 5), (["--fast"], 1), ([], DEFAULT_EFFORT)):
        result = CliRunner().invoke(main, ["compress", str(tmp_path / "n.png"), "-f", "-q", *flags])
        assert result.exit_code == 0, result.output
        assert (tmp_path / "n.nz").read_bytes() == neuralzip.compress(noisy, effort=level)
    buffer = io.BytesIO()
    Image.fromarray(noisy).save(buffer, format="NEURALZIP", effort=2)
    assert buffer.getvalue() == neuralzip.compress(noisy, effort=2)
    assert "--effort" in CliRunner().invoke(main, ["compress", "--help"]).output
