"""Container: fields round-trip, and every kind of damage is refused with a clear error."""

from dataclasses import replace

import numpy as np
import pytest

from neuralzip import zoo
from neuralzip.core.codec import Codec, DecodeError
from neuralzip.core.container import Header
from neuralzip.core.fields import FormatError
from neuralzip.core.units import LS_TOTAL
from neuralzip.core.versions import FORMAT_VERSION


@pytest.fixture(scope="module")
def encoded(codec, urban_crop):
    return codec.encode(urban_crop)[0]


def test_header_round_trip():
    coefs = np.arange(LS_TOTAL) - 30
    h = Header("photo", b"\x01\x02\x03\x04", 768, 512, 0, 24, 123456, 0xDEADBEEF, coefs)
    back, offset = Header.unpack(h.pack() + bytes(123456))
    assert offset == len(h.pack())
    assert (back.width, back.height, back.payload_length, back.checksum) == (768, 512, 123456, 0xDEADBEEF)
    assert np.array_equal(back.coefs, coefs) and back.model_name == "photo"


def test_fixed_header_is_small():
    h = Header("cifar10", b"\0" * 4, 32, 32, 0, 24, 1000, 0)
    assert len(h.pack()) == 26  # 0.07 bits per subpixel on a 32x32 image


def test_bad_magic(codec, encoded):
    with pytest.raises(FormatError, match="not a neuralzip file"):
        codec.decode(b"PK" + encoded[2:])


def test_other_version(codec, encoded):
    bad = encoded[:2] + bytes([FORMAT_VERSION + 1]) + encoded[3:]
    with pytest.raises(FormatError, match="format version"):
        codec.decode(bad)


def test_other_weights(codec, encoded):
    header, offset = Header.unpack(encoded)
    flipped = bytes(b ^ 0xFF for b in header.model_sha)  # not registered: written as version 3, name and hash
    bad = replace(header, model_sha=flipped, version=None).pack() + encoded[offset:]
    assert bad[2] == 3
    with pytest.raises(DecodeError, match=f"weights {flipped.hex()} of model 'photo' are not installed"):
        zoo.codec_for_file(bad)
    with pytest.raises(DecodeError, match="other weights"):
        Codec(codec.zoo_model).read_header(bad)


def test_registered_model_is_a_number_in_versions_4_and_5(codec, encoded):
    header, offset = Header.unpack(encoded)
    assert encoded[2] == 5 and header.model_number is not None  # int16 arithmetic: version 5
    v3 = replace(header, version=3).pack()
    # name length, name, hash and precision instead of a one-byte number
    assert len(v3) - offset == 1 + len(header.model_name) + 4 + 1 - 1
    assert Header.unpack(v3 + encoded[offset:])[0] == replace(header, version=3)
    unknown = encoded[:5] + bytes([127]) + encoded[6:]
    with pytest.raises(FormatError, match="unknown model number 127"):
        Header.unpack(unknown)


@pytest.mark.parametrize("keep", [0, 1, 5, 12, 20, -1, -4])
def test_truncation(codec, encoded, keep):
    with pytest.raises((FormatError, DecodeError), match="truncated|corrupted"):
        codec.decode(encoded[:keep] if keep > 0 else encoded[: len(encoded) + keep] if keep < 0 else b"")


def test_flipped_payload_bits_are_detected(codec, encoded):
    header_len = len(encoded) - Header.unpack(encoded)[0].payload_length
    rng = np.random.default_rng(0)
    for _ in range(10):
        pos = int(rng.integers(header_len, len(encoded)))
        bad = bytearray(encoded)
        bad[pos] ^= 1 << int(rng.integers(0, 8))
        with pytest.raises(DecodeError, match="corrupted"):
            codec.decode(bytes(bad))


def test_huge_claimed_size_is_refused_before_allocation(codec):
    h = Header("photo", codec.zoo_model.tag, 100_000, 100_000, 0, 24, 4, 0)
    with pytest.raises(DecodeError, match="exceeds the limit"):
        codec.decode(h.pack() + bytes(4))


def test_every_golden_header_is_written_again_byte_for_byte():
    """The table of fields reads and writes every version's header as it was written."""
    from pathlib import Path

    for path in sorted((Path(__file__).parent / "golden").glob("*.nz")):
        data = path.read_bytes()
        header, offset = Header.unpack(data)
        assert header.pack() == data[:offset], path.name


def test_every_header_attribute_is_a_field_of_the_table_or_a_flag():
    from dataclasses import fields

    from neuralzip.core.container import HEADER_FIELDS

    held = {f.attr for f in HEADER_FIELDS if f.attr is not None}
    assert {f.name for f in fields(Header)} == held | {"stored", "packed"}  # the payload's kind: flags bits 2, 3
    names = [f.name for f in HEADER_FIELDS]
    assert len(set(names)) == len(names)
