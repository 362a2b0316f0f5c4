"""Golden files: committed .nz files must keep decoding to the same pixels, and encoding
the same images must keep producing the same bytes (any change bumps the format version
and regenerates them with tests/golden/regenerate.py)."""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from neuralzip import decompress
from neuralzip.core.container import Header

HERE = Path(__file__).resolve().parent / "golden"
MANIFEST = json.loads((HERE / "golden.json").read_text())
sys.path.insert(0, str(HERE))
from regenerate import METADATA, golden_images  # noqa: E402


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_golden_file_decodes_to_recorded_pixels(name):
    entry = MANIFEST[name]
    data = (HERE / f"{name}.nz").read_bytes()
    assert hashlib.md5(data).hexdigest() == entry["nz_md5"]
    image = decompress(data)
    assert list(image.shape) == entry["shape"]
    assert Header.unpack(data)[0].metadata == METADATA.get(name)
    assert hashlib.md5(image.tobytes()).hexdigest() == entry["pixels_md5"]


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_encoder_reproduces_golden_bytes(name):
    from neuralzip.core.codec import Codec

    model, image = golden_images()[name]
    data, _ = Codec.named(model).encode(image, metadata=METADATA.get(name))
    assert hashlib.md5(data).hexdigest() == MANIFEST[name]["nz_md5"]
    assert np.array_equal(decompress(data), image)
