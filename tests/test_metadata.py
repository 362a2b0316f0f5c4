"""Metadata survives the round trip: ICC profiles, EXIF (orientation kept as a tag, the
pixels not rotated), XMP and PNG text come back byte for byte in the decompressed PNG."""

import dataclasses
import zlib

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageCms, PngImagePlugin

import neuralzip
from neuralzip import api
from neuralzip.cli import main
from neuralzip.core.container import Header, pack_metadata, unpack_metadata
from neuralzip.core.fields import FormatError
from neuralzip.core.metadata import Metadata

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _photo(sample) -> Image.Image:
    return Image.fromarray(sample[:48, :64])


def _round_trip(tmp_path, source, *args) -> Image.Image:
    result = CliRunner().invoke(main, ["compress", str(source), "-o", str(tmp_path / "x.nz"), "-q", *args])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["decompress", str(tmp_path / "x.nz"), "-o", str(tmp_path / "back.png"), "-q"])
    assert result.exit_code == 0, result.output
    back = Image.open(tmp_path / "back.png")
    back.load()
    return back


def test_icc_profile_and_png_text_come_back(tmp_path, sample):
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "a crop")
    info.add_itxt("Description", "grüne Blätter")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>xmp</x:xmpmeta>")
    _photo(sample).save(tmp_path / "a.png", icc_profile=SRGB, pnginfo=info)
    back = _round_trip(tmp_path, tmp_path / "a.png")
    assert back.info["icc_profile"] == SRGB
    assert back.text["Title"] == "a crop" and back.text["Description"] == "grüne Blätter"
    assert back.info["xmp"] == b"<x:xmpmeta>xmp</x:xmpmeta>"
    assert np.array_equal(np.asarray(back), sample[:48, :64])


def test_jpeg_exif_orientation_is_kept_not_applied(tmp_path, sample):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 on display
    exif[0x0132] = "2026:12:01 12:00:00"
    _photo(sample).save(tmp_path / "a.jpg", exif=exif.tobytes(), quality=95)
    with Image.open(tmp_path / "a.jpg") as source:
        want_exif, want_pixels = source.info["exif"], np.asarray(source)
    back = _round_trip(tmp_path, tmp_path / "a.jpg")
    assert back.info["exif"] == want_exif and back.getexif()[0x0112] == 6
    assert np.array_equal(np.asarray(back), want_pixels)  # same shape: not rotated


def test_an_exif_orientation_goes_into_a_tiff_as_its_orientation_tag(tmp_path, sample):
    """A TIFF's readers turn it by that tag (Pillow as it loads): the pixels are stored as
    decoded, and what a reader shows is them turned, as a PNG viewer shows the PNG's."""
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 on display
    _photo(sample).save(tmp_path / "a.png", exif=exif.tobytes())
    CliRunner().invoke(main, ["compress", str(tmp_path / "a.png"), "-o", str(tmp_path / "a.nz")])
    result = CliRunner().invoke(main, ["decompress", str(tmp_path / "a.nz"), "-o", str(tmp_path / "a.tif")])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "a.tif") as tiff:
        assert tiff.getexif()[0x0112] == 6
        shown = np.asarray(tiff)
    assert np.array_equal(shown, np.asarray(_photo(sample).transpose(Image.Transpose.ROTATE_270)))


def test_strip_leaves_metadata_out_and_info_lists_it(tmp_path, sample):
    _photo(sample).save(tmp_path / "a.png", icc_profile=SRGB)
    assert "icc_profile" not in _round_trip(tmp_path, tmp_path / "a.png", "--strip").info
    CliRunner().invoke(main, ["compress", str(tmp_path / "a.png"), "-o", str(tmp_path / "y.nz")])
    out = CliRunner().invoke(main, ["info", str(tmp_path / "y.nz")]).output
    assert f"metadata: ICC profile {len(SRGB):,} bytes" in out and "format version: 5" in out


def test_pillow_and_api_open_give_the_metadata(tmp_path, sample):
    image = _photo(sample)
    image.info["icc_profile"] = SRGB
    neuralzip.save(tmp_path / "x.nz", image)
    assert neuralzip.open(tmp_path / "x.nz").info["icc_profile"] == SRGB
    with Image.open(tmp_path / "x.nz") as opened:
        assert opened.info["icc_profile"] == SRGB and opened.format == "NEURALZIP"
    assert api.metadata((tmp_path / "x.nz").read_bytes()).icc_profile == SRGB


def test_a_file_is_written_in_the_shortest_version_that_holds_it(sample):
    data = neuralzip.compress(sample[:48, :64])
    assert data[2] == 5  # a registered model (int16 arithmetic), named by its number
    noise = np.random.default_rng(1).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    assert neuralzip.compress(noise)[2] == 5  # a stored payload too
    header = Header.unpack(data)[0]
    unregistered = dataclasses.replace(header, model_name="mine", version=None)
    assert unregistered.written_version == 3  # ANS payloads are terminated since version 3
    assert dataclasses.replace(unregistered, stored=True).written_version == 2


def test_metadata_block_round_trip_and_refusals():
    meta = Metadata(icc_profile=b"icc", exif=b"Exif\0\0MM", xmp=b"<x/>", text={"a": "b", "ü": "ß"})
    assert unpack_metadata(pack_metadata(meta)) == meta
    for raw in (b"\x09\x01x", b"\x01\x05ab", b"\x01\x00", b"\x04\x02ab"):  # unknown kind, short, empty, no NUL
        with pytest.raises(FormatError):
            unpack_metadata(zlib.compress(raw))
    with pytest.raises(FormatError):
        unpack_metadata(pack_metadata(meta) + b"tail")


def test_noise_is_stored_at_8_bits_per_subpixel_plus_the_header():
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = neuralzip.compress(noise)
    header, offset = Header.unpack(data)
    assert header.stored and header.version == 5 and len(data) - offset == noise.size
    assert np.array_equal(neuralzip.decompress(data), noise)
    grey = noise[:, :, 0]
    assert np.array_equal(neuralzip.decompress(neuralzip.compress(grey)), grey)


def test_a_stored_file_with_a_wrong_payload_length_is_refused():
    data = bytearray(neuralzip.compress(np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)))
    header, offset = Header.unpack(bytes(data))
    header.payload_length -= 1
    with pytest.raises(FormatError, match="stored payload"):
        Header.unpack(header.pack() + bytes(data[offset:-1]))
