"""FORMAT.md's byte-by-byte example is what the encoder writes and the decoder reads."""

import re
from pathlib import Path

import numpy as np

import neuralzip

FORMAT_MD = Path(__file__).resolve().parent.parent / "FORMAT.md"


def _example_bytes() -> bytes:
    """The bytes of the example table that follows 'Example: the whole ... file', in order."""
    text = FORMAT_MD.read_text()
    table = text[text.index("Example: the whole"):].split("\n\n")[1]
    cells = re.findall(r"^\| `([0-9a-f ]+)` \|", table, flags=re.M)
    return bytes.fromhex("".join(cells))


def test_format_md_example_is_the_encoders_output_and_decodes():
    image = np.dstack([np.array([[10, 20, 30], [40, 50, 60]], np.uint8), np.full((2, 3), 255, np.uint8)])
    data = _example_bytes()
    assert len(data) == 38
    assert neuralzip.compress(image) == data
    assert np.array_equal(neuralzip.decompress(data), image)
