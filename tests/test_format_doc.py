"""FORMAT.md's byte-by-byte example is what the encoder writes and the decoder reads; the
version-1 and version-2 files of the same image, as those versions wrote them, still decode."""

import re
from pathlib import Path

import numpy as np

import neuralzip

FORMAT_MD = Path(__file__).resolve().parent.parent / "FORMAT.md"
IMAGE = np.dstack([np.array([[10, 20, 30], [40, 50, 60]], np.uint8), np.full((2, 3), 255, np.uint8)])
VERSION_1_FILE = bytes.fromhex(  # the same image as the version-1 example gave it: ANS payload
    "4e5a 0100 0305 70686f746f e8adac20 0302 18 0c 362b048c 02 00ff 6753cc26982102d203000000".replace(" ", ""))

VERSION_2_FILE = bytes.fromhex(  # the version-2 example: stored, model by name and hash
    "4e5a 0204 0305 70686f746f e8adac20 0302 18 06 362b048c 02 00ff 0a141e28323c".replace(" ", ""))


def _example_bytes() -> bytes:
    """The bytes of the example table that follows 'Example: the whole ... file', in order."""
    text = FORMAT_MD.read_text()
    table = text[text.index("Example: the whole"):].split("\n\n")[1]
    cells = re.findall(r"^\| `([0-9a-f ]+)` \|", table, flags=re.M)
    return bytes.fromhex("".join(cells))


def test_format_md_example_is_the_encoders_output_and_decodes():
    data = _example_bytes()
    assert len(data) == 22
    assert neuralzip.compress(IMAGE) == data
    assert np.array_equal(neuralzip.decompress(data), IMAGE)


def test_the_version_1_2_and_4_examples_still_decode():
    assert np.array_equal(neuralzip.decompress(VERSION_1_FILE), IMAGE)
    assert np.array_equal(neuralzip.decompress(VERSION_2_FILE), IMAGE)
    version_4 = _example_bytes()
    version_4 = version_4[:2] + b"\x04" + version_4[3:5] + b"\x03" + version_4[6:]  # registered model 3
    assert np.array_equal(neuralzip.decompress(version_4), IMAGE)
