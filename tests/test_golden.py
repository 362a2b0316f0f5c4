"""Golden files: every committed .nz file must keep decoding to the same pixels, and the
current encoder must keep producing the bytes of the files it wrote (a bitstream change
bumps the format version and adds files with tests/golden/regenerate.py; the older ones
stay, frozen, as files earlier releases wrote)."""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from neuralzip import decompress
from neuralzip.core.container import Header
from neuralzip.core.versions import FORMAT_VERSION

HERE = Path(__file__).resolve().parent / "golden"
MANIFEST = json.loads((HERE / "golden.json").read_text())
CURRENT = sorted(name for name, entry in MANIFEST.items() if not entry["frozen"])
sys.path.insert(0, str(HERE))
from regenerate import METADATA, golden_codec, golden_images  # noqa: E402


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_golden_file_decodes_to_recorded_pixels(name):
    entry = MANIFEST[name]
    data = (HERE / f"{name}.nz").read_bytes()
    assert hashlib.md5(data).hexdigest() == entry["nz_md5"]
    assert Header.unpack(data)[0].version == entry["format_version"]
    image = decompress(data)
    assert list(image.shape) == entry["shape"]
    assert Header.unpack(data)[0].metadata == METADATA.get(entry["source"])
    assert hashlib.md5(image.tobytes()).hexdigest() == entry["pixels_md5"]


@pytest.mark.parametrize("name", CURRENT)
def test_encoder_reproduces_golden_bytes(name):
    """Everything the encoder does is pinned, the per-image adaptation included (its
    arithmetic has a fixed order: tests/test_same_bytes.py runs this in every setting)."""

    entry = MANIFEST[name]
    model, image = golden_images()[entry["source"]]
    data, _ = golden_codec(model).encode(image, metadata=METADATA.get(entry["source"]))
    assert hashlib.md5(data).hexdigest() == entry["nz_md5"]
    assert np.array_equal(decompress(data), image)


def test_every_source_has_a_current_file_and_every_version_a_file():
    assert {MANIFEST[name]["source"] for name in CURRENT} == set(golden_images())
    assert {entry["format_version"] for entry in MANIFEST.values()} == set(range(1, FORMAT_VERSION + 1))
