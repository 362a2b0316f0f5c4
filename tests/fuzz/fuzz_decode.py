"""Coverage-guided fuzzing (atheris, libFuzzer) of what reads untrusted bytes: the header
and its blocks (``Header.unpack``), ``info``'s view of them, and the whole decoder with the
compiled kernel, on mutations of the golden files. Every input must decode or be refused
with the codec's own errors (FormatError, DecodeError, UnsupportedImage); anything else,
or a crash, is a finding.

CI runs a fixed number of inputs (``.ci/fuzz``); by hand, for longer:

    python tests/fuzz/fuzz_decode.py -runs=100000 CORPUS_DIR tests/golden
"""

import sys

import atheris

with atheris.instrument_imports():
    import neuralzip
    from neuralzip.core.codec import DecodeError, UnsupportedImage
    from neuralzip.core.container import Header
    from neuralzip.core.fields import FormatError

MAX_PIXELS = 1 << 16  # bounded work per input


def test_one_input(data: bytes) -> None:
    try:
        header, _ = Header.unpack(data)
        str(header)
    except FormatError:
        return
    try:
        neuralzip.decompress(data, max_pixels=MAX_PIXELS)
    except (FormatError, DecodeError, UnsupportedImage):
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
