"""Format version 3's packed payload: images the model codes badly (graphics, screenshots)
are packed with LZMA2 where that is smaller, decode exactly, and a damaged packed
payload is refused cleanly."""

import subprocess
import sys

import imagecodecs
import numpy as np
import pytest
from click.testing import CliRunner

import neuralzip
from neuralzip.cli import main
from neuralzip.core import packed
from neuralzip.core.container import Header
from neuralzip.core.fields import FormatError
from neuralzip.core.metadata import Metadata


def diagram(height: int = 96, width: int = 128) -> np.ndarray:
    """A synthetic RGB graphic: flat background, outlined boxes, a 1-pixel grid, bars."""
    image = np.full((height, width, 3), 236, np.uint8)
    image[::8, :] = image[:, ::8] = (200, 200, 210)
    for i in range(6):
        top, left = 6 + 11 * i, 4 + 15 * i
        image[top : top + 20, left : left + 30] = (30 * i, 120, 250 - 35 * i)
        image[top, left : left + 30] = image[top + 19, left : left + 30] = 0
        image[top : top + 20, left] = image[top : top + 20, left + 29] = 0
    image[height - 10 :, ::3] = (250, 40, 40)
    return image


@pytest.mark.parametrize("grey", [False, True])
def test_a_graphic_is_packed_smaller_than_png_and_decodes_exactly(grey):
    image = np.ascontiguousarray(diagram(256, 320)[:, :, 0]) if grey else diagram(256, 320)
    data = neuralzip.compress(image)
    header = Header.unpack(data)[0]
    assert header.packed and not header.stored and header.coefs is None and header.version == 5
    assert np.array_equal(neuralzip.decompress(data), image)
    assert len(data) < len(imagecodecs.png_encode(image, level=9))


def test_photographs_keep_the_model_payload(sample):
    header = Header.unpack(neuralzip.compress(sample))[0]
    assert not header.packed and not header.stored


def test_a_graphic_with_alpha_and_metadata_round_trips():
    image = np.dstack([diagram(), np.where(diagram()[:, :, :1] == 0, 255, 128).astype(np.uint8)])
    data = neuralzip.compress(image, metadata=Metadata(text={"Software": "test"}))
    assert Header.unpack(data)[0].packed
    assert np.array_equal(neuralzip.decompress(data), image)


def test_info_names_the_packed_payload(tmp_path):
    path = tmp_path / "d.nz"
    path.write_bytes(neuralzip.compress(diagram()))
    result = CliRunner().invoke(main, ["info", str(path)])
    assert result.exit_code == 0 and "(pixels packed with LZMA2)" in result.output


def _with_payload(data: bytes, payload: bytes) -> bytes:
    header, offset = Header.unpack(data)
    header.payload_length = len(payload)
    return header.pack() + payload


def test_a_damaged_packed_payload_is_refused():
    image = diagram()
    data = neuralzip.compress(image)
    header, offset = Header.unpack(data)
    payload = data[offset:]
    cases = [payload[: len(payload) // 2], payload + b"\0", bytes(len(payload)),
             packed.pack(image[:-1].tobytes()), packed.pack(image.tobytes() + b"\0")]
    for bad in cases:
        with pytest.raises((FormatError, neuralzip.DecodeError)):
            neuralzip.decompress(_with_payload(data, bad))
    flipped = bytearray(data)
    flipped[-3] ^= 0x10
    with pytest.raises((FormatError, neuralzip.DecodeError)):
        neuralzip.decompress(bytes(flipped))


def test_the_header_refuses_impossible_packed_files():
    data = neuralzip.compress(diagram())
    header, offset = Header.unpack(data)
    header.payload_length = header.raw_length  # a packed payload is always smaller than the pixels
    with pytest.raises(FormatError, match="not smaller"):
        Header.unpack(header.pack() + bytes(header.raw_length))
    for flags in (data[3] | 0x04, data[3] | 0x01):  # stored too; LS coefficients
        with pytest.raises(FormatError):
            Header.unpack(data[:3] + bytes([flags]) + data[4:])
    with pytest.raises(FormatError, match="unknown header flags"):  # version 2 has no packed payload
        Header.unpack(data[:2] + b"\x02" + data[3:])


def test_the_installed_command_round_trips_a_graphic(tmp_path):
    from PIL import Image

    Image.fromarray(diagram()).save(tmp_path / "d.png")
    command = [sys.executable, "-m", "neuralzip"]
    subprocess.run([*command, "compress", "d.png", "-q"], cwd=tmp_path, check=True, timeout=120)
    (tmp_path / "d.png").rename(tmp_path / "original.png")
    subprocess.run([*command, "decompress", "d.nz", "-q"], cwd=tmp_path, check=True, timeout=120)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "d.png")), diagram())


def test_the_shortest_whole_file_is_written_headers_included(monkeypatch, urban_crop):
    """Only the ANS payload carries LS coefficients (and the adaptation): a tiny image
    whose ANS words alone beat its raw pixels, but not with 130 bytes of coefficients,
    is stored."""
    from neuralzip.core import codec as codec_module

    image = np.ascontiguousarray(urban_crop[10:13, 20:24])
    plain = Header.unpack(neuralzip.compress(image))[0]
    assert not plain.stored and plain.payload_length < image.size  # ANS wins without coefficients
    monkeypatch.setattr(codec_module, "IMAGE_LS_MIN_PIXELS", 1)
    data = neuralzip.compress(image)
    header, offset = Header.unpack(data)
    assert header.stored and header.coefs is None and len(data) - offset == image.size
    assert np.array_equal(neuralzip.decompress(data), image)
