"""Issue 24, format version 6: PNG text chunks come back whole (a key more than once, zTXt,
an iTXt's language tag, translated keyword and compression) and comments come back as a
tEXt chunk ``Comment``; what an output format cannot hold is named in one warning line.
Real files on disk, real Pillow, the command through CliRunner and as installed."""

import dataclasses
import io
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, PngImagePlugin

import neuralzip
from neuralzip import api
from neuralzip.cli import main
from neuralzip.core.container import Header, pack_metadata, unpack_metadata
from neuralzip.core.fields import FormatError
from neuralzip.core.metadata import (
    ITXT_CHUNK,
    TEXT_CHUNK,
    ZTXT_CHUNK,
    Metadata,
    MetadataError,
    PngText,
)

GOLDEN = Path(__file__).resolve().parent / "golden"
IMAGE = np.random.default_rng(24).integers(0, 256, (12, 16, 3), np.uint8)


def _text_chunks(path) -> list[tuple[bytes, bytes]]:
    """(type, data) of every tEXt, zTXt and iTXt chunk of a PNG, in file order."""
    data, pos, out = Path(path).read_bytes(), 8, []
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            out.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def _png_with_text(path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "first")
    info.add_text("Author", "second")  # the same key twice: both kept, in order
    info.add_text("Note", "zipped " * 20, zip=True)  # zTXt
    info.add_itxt("Titel", "grüne Blätter", "de", "Title")  # language tag, translated keyword
    info.add_itxt("Packed", "ünïcode, compressed", "fr-CA", "", zip=True)  # compressed iTXt
    info.add_text("Latin", "grün")  # Latin-1 in tEXt: stays tEXt
    Image.fromarray(IMAGE).save(path, pnginfo=info)


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_png_text_chunks_come_back_byte_for_byte(tmp_path):
    _png_with_text(tmp_path / "a.png")
    _invoke("compress", str(tmp_path / "a.png"), "-q")
    _invoke("decompress", str(tmp_path / "a.nz"), "-o", str(tmp_path / "back.png"), "-q")
    want = _text_chunks(tmp_path / "a.png")
    assert len(want) == 6 and [kind for kind, _ in want] == [b"tEXt", b"tEXt", b"zTXt", b"iTXt", b"iTXt", b"tEXt"]
    assert _text_chunks(tmp_path / "back.png") == want
    with Image.open(tmp_path / "back.png") as back:
        assert np.array_equal(np.asarray(back), IMAGE)
        assert back.text["Titel"].lang == "de" and back.text["Titel"].tkey == "Title"
    header = Header.unpack((tmp_path / "a.nz").read_bytes())[0]
    assert header.version == 6 and not header.metadata.text
    assert [chunk.chunk for chunk in header.metadata.png_text] == [0, 0, 1, 2, 3, 0]
    info = _invoke("info", str(tmp_path / "a.nz"))
    assert "format version: 6" in info and "text Author, Author, Note, Titel, Packed, Latin" in info


def test_plain_text_stays_version_5_and_comes_back(tmp_path):
    """tEXt of ASCII values and plain iTXt, each key once: text entries of version 5, as before."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "a crop")
    info.add_itxt("Description", "grüne Blätter")
    Image.fromarray(IMAGE).save(tmp_path / "p.png", pnginfo=info)
    _invoke("compress", str(tmp_path / "p.png"), "-q")
    header = Header.unpack((tmp_path / "p.nz").read_bytes())[0]
    assert header.version == 5 and header.metadata == Metadata(text={"Title": "a crop", "Description": "grüne Blätter"})
    _invoke("decompress", str(tmp_path / "p.nz"), "-o", str(tmp_path / "back.png"), "-q")
    assert _text_chunks(tmp_path / "back.png") == _text_chunks(tmp_path / "p.png")


def _jpeg_with_comments(path, comments: list[bytes]) -> np.ndarray:
    """A JPEG with a COM segment for each comment, right after SOI; its decoded pixels."""
    Image.fromarray(IMAGE).save(path, quality=95)
    data = path.read_bytes()
    segments = b"".join(b"\xff\xfe" + struct.pack(">H", len(c) + 2) + c for c in comments)
    path.write_bytes(data[:2] + segments + data[2:])
    with Image.open(path) as image:
        return np.asarray(image)


def test_jpeg_comments_come_back_as_png_comment_chunks_and_in_info(tmp_path):
    pixels = _jpeg_with_comments(tmp_path / "c.jpg", [b"made by neuralzip's tests", b"caf\xe9 \x01"])
    _invoke("compress", str(tmp_path / "c.jpg"), "-q")
    assert api.metadata((tmp_path / "c.nz").read_bytes()).comments == [b"made by neuralzip's tests", b"caf\xe9 \x01"]
    assert "metadata: 2 comments 31 bytes" in _invoke("info", str(tmp_path / "c.nz"))
    _invoke("decompress", str(tmp_path / "c.nz"), "-q")
    assert _text_chunks(tmp_path / "c.png") == [
        (b"tEXt", b"Comment\0made by neuralzip's tests"),
        (b"tEXt", b"Comment\0caf\xe9 \x01"),
    ]
    with Image.open(tmp_path / "c.png") as back:
        assert np.array_equal(np.asarray(back), pixels)


def test_the_installed_command_keeps_text_chunks_and_comments(tmp_path):
    exe = shutil.which("neuralzip")
    command = [exe] if exe else [sys.executable, "-m", "neuralzip"]
    _png_with_text(tmp_path / "a.png")
    _jpeg_with_comments(tmp_path / "c.jpg", [b"one comment"])
    for args in (["compress", "a.png", "c.jpg", "-q"], ["decompress", "a.nz", "c.nz", "--out-dir", "out", "-q"]):
        result = subprocess.run([*command, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and not result.stderr, result.stderr
    assert _text_chunks(tmp_path / "out" / "a.png") == _text_chunks(tmp_path / "a.png")
    assert _text_chunks(tmp_path / "out" / "c.png") == [(b"tEXt", b"Comment\0one comment")]
    result = subprocess.run([*command, "info", "c.nz"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "metadata: comment 11 bytes" in result.stdout


def test_what_an_output_format_cannot_hold_is_named_in_one_warning_line(tmp_path):
    _png_with_text(tmp_path / "a.png")
    _invoke("compress", str(tmp_path / "a.png"), "-q")
    for suffix, names in ((".tif", "text Author, Author"), (".bmp", "text Author")):
        result = CliRunner().invoke(main, ["decompress", str(tmp_path / "a.nz"), "-o", str(tmp_path / f"b{suffix}")])
        assert result.exit_code == 0, result.output
        warnings = [line for line in result.output.splitlines() if line.startswith("neuralzip: warning:")]
        assert len(warnings) == 1 and names in warnings[0] and "left out" in warnings[0], result.output
    png = CliRunner().invoke(main, ["decompress", str(tmp_path / "a.nz"), "-o", str(tmp_path / "b.png"), "-q"])
    assert png.exit_code == 0 and png.output == ""


def test_a_damaged_zTXt_chunk_is_named_at_compress_time_and_the_rest_kept(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add(b"zTXt", b"Broken\0\0" + zlib.compress(b"text")[:-3])  # a zlib stream cut short
    info.add_text("Kept", "yes")
    info.add_text("Kept", "twice")
    Image.fromarray(IMAGE).save(tmp_path / "d.png", pnginfo=info)
    result = CliRunner().invoke(main, ["compress", str(tmp_path / "d.png"), "-q"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines() == [
        f"neuralzip: warning: {tmp_path / 'd.png'}: a damaged zTXt chunk (its zlib stream is cut short, or bytes follow it), left out"
    ]
    kept = api.metadata((tmp_path / "d.nz").read_bytes()).png_text
    assert kept == [PngText(TEXT_CHUNK, b"Kept", b"yes"), PngText(TEXT_CHUNK, b"Kept", b"twice")]


def test_a_version_5_reader_refuses_the_new_kinds_and_a_version_6_file_names_any_registered_model():
    meta = Metadata(png_text=[PngText(ZTXT_CHUNK, b"k", b"v")], comments=[b"c"])
    block = pack_metadata(meta)
    assert unpack_metadata(block, 6) == meta
    with pytest.raises(FormatError, match="kind 5 in a file of format version 5"):
        unpack_metadata(block, 5)
    data = neuralzip.compress(IMAGE, metadata=meta, effort=2)  # photo: its earlier weights replace it below
    assert data[2] == 6
    with pytest.raises(FormatError, match="kind 5 in a file of format version 5"):
        Header.unpack(data[:2] + b"\x05" + data[3:])
    header, offset = Header.unpack(data)
    for number, sha in ((3, "265c3c51"), (5, "fa1a1841")):  # float64 (version 4) and int16 (version 5) models
        old = dataclasses.replace(header, model_sha=bytes.fromhex(sha))
        assert Header.unpack(old.pack() + data[offset:])[0].model_number == number
        with pytest.raises(ValueError, match=f"model {number} is written in format version {number // 2 + 3} or 6"):
            dataclasses.replace(old, version=5 if number == 3 else 4, metadata=None).pack()
    unregistered = dataclasses.replace(header, model_name="mine", version=None)
    with pytest.raises(ValueError, match="format version 2 cannot hold comments or PNG text chunks"):
        unregistered.pack()


def test_png_text_entries_are_checked_where_written_and_read():
    with pytest.raises(MetadataError, match="79"):
        pack_metadata(Metadata(png_text=[PngText(TEXT_CHUNK, b"k" * 80, b"v")]))
    with pytest.raises(MetadataError, match="NUL"):
        pack_metadata(Metadata(png_text=[PngText(ITXT_CHUNK, b"k", b"v", b"d\0e")]))
    for raw in (b"\x05\x01\x09", b"\x05\x02\x00k", b"\x05\x04\x02k\0", b"\x06\x00"):  # type 9, no keyword, no fields
        with pytest.raises(FormatError):
            unpack_metadata(zlib.compress(raw), 6)
    ordered = zlib.compress(b"\x06\x01c\x05\x03\x00k\0v")  # a comment before a PNG text chunk
    with pytest.raises(FormatError, match="out of order"):
        unpack_metadata(ordered, 6)


def test_the_version_6_golden_file_writes_its_chunks_into_png(tmp_path):
    _invoke("decompress", str(GOLDEN / "urban_crop_png_text_v6_1057c8e3.nz"), "-o", str(tmp_path / "g.png"), "-q")
    assert _text_chunks(tmp_path / "g.png") == [
        (b"tEXt", b"Author\0one"),
        (b"tEXt", b"Author\0two"),
        (b"zTXt", b"Note\0\0" + zlib.compress(b"zipped " * 8)),
        (b"iTXt", "Titel\0\0\0de\0Titel\0grüne Blätter".encode()),
        (b"iTXt", b"Beschreibung\0\1\0de-CH\0Description\0" + zlib.compress(b"ein Bild")),
        (b"tEXt", b"Comment\0JPEG comment"),
        (b"tEXt", b"Comment\0another \xff comment"),
    ]


def test_an_xmp_chunk_png_options_would_not_write_back_stays_a_text_chunk(tmp_path):
    """A compressed XMP iTXt is kept as the chunk it is; a plain one is the XMP (version 5)."""
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>packed</x:xmpmeta>", zip=True)
    Image.fromarray(IMAGE).save(tmp_path / "x.png", pnginfo=info)
    _invoke("compress", str(tmp_path / "x.png"), "-q")
    _invoke("decompress", str(tmp_path / "x.nz"), "-o", str(tmp_path / "back.png"), "-q")
    assert _text_chunks(tmp_path / "back.png") == _text_chunks(tmp_path / "x.png")
    with Image.open(tmp_path / "back.png") as back:
        assert back.info["xmp"] == b"<x:xmpmeta>packed</x:xmpmeta>"
    plain = PngImagePlugin.PngInfo()
    plain.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>plain</x:xmpmeta>")
    Image.fromarray(IMAGE).save(tmp_path / "p.png", pnginfo=plain)
    with Image.open(tmp_path / "p.png") as image:
        data = api.encode(image)[0]
    assert data[2] == 5 and api.metadata(data) == Metadata(xmp=b"<x:xmpmeta>plain</x:xmpmeta>")


def test_png_chunks_a_file_keeps_nothing_of_are_named_at_compress_time(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add(b"gAMA", struct.pack(">I", 45455))
    info.add_text("Title", "kept")
    Image.fromarray(IMAGE).save(tmp_path / "g.png", pnginfo=info, dpi=(300, 300))
    result = CliRunner().invoke(main, ["compress", str(tmp_path / "g.png"), "-q"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"neuralzip: warning: {tmp_path / 'g.png'}: the PNG's ")
    assert "pHYs" in lines[0] and "gAMA" in lines[0] and lines[0].endswith("chunks are not kept, left out")
    assert api.metadata((tmp_path / "g.nz").read_bytes()) == Metadata(text={"Title": "kept"})
    stripped = CliRunner().invoke(main, ["compress", str(tmp_path / "g.png"), "-f", "-q", "--strip"])
    assert stripped.exit_code == 0 and stripped.output == ""


def test_jpeg_segments_a_file_keeps_nothing_of_are_named_at_compress_time(tmp_path):
    """APP13 (Photoshop's IPTC) is named; EXIF, XMP, the ICC profile, comments and the
    segments of the JPEG's own coding (JFIF, Adobe) are not."""
    buffer = io.BytesIO()
    Image.fromarray(IMAGE).save(buffer, "JPEG", comment=b"kept", exif=Image.Exif().tobytes(), quality=95)
    plain = buffer.getvalue()
    iptc = b"Photoshop 3.0\0" + b"8BIM\x04\x04\0\0\0\0\0\0"
    (tmp_path / "plain.jpg").write_bytes(plain)
    (tmp_path / "iptc.jpg").write_bytes(plain[:2] + b"\xff\xed" + (len(iptc) + 2).to_bytes(2, "big") + iptc + plain[2:])
    quiet = CliRunner().invoke(main, ["compress", str(tmp_path / "plain.jpg"), "-q"])
    assert quiet.exit_code == 0 and quiet.output == ""
    result = CliRunner().invoke(main, ["compress", str(tmp_path / "iptc.jpg"), "-q"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        f"neuralzip: warning: {tmp_path / 'iptc.jpg'}: the JPEG's APP13 (Photoshop 3.0) segments are not kept, left out"
    )
    assert api.metadata((tmp_path / "iptc.nz").read_bytes()).comments == [b"kept"]


def test_tiff_gets_the_icc_profile_exif_and_xmp_and_a_warning_names_the_rest(tmp_path):
    exif = Image.Exif()
    exif[0x0131] = "neuralzip tests"  # Software
    meta = Metadata(icc_profile=b"icc profile bytes", exif=exif.tobytes(), xmp=b"<x:xmpmeta>t</x:xmpmeta>",
                    text={"Title": "t"}, comments=[b"a comment"])
    (tmp_path / "m.nz").write_bytes(neuralzip.compress(IMAGE, metadata=meta))
    result = CliRunner().invoke(main, ["decompress", str(tmp_path / "m.nz"), "-o", str(tmp_path / "m.tif"), "-q"])
    assert result.exit_code == 0
    assert result.output == f"neuralzip: warning: {tmp_path / 'm.nz'}: TIFF cannot hold the text Title; " \
                            "comment 9 bytes: left out\n"
    with Image.open(tmp_path / "m.tif") as back:
        assert np.array_equal(np.asarray(back), IMAGE)
        assert back.info["icc_profile"] == meta.icc_profile and back.info["xmp"] == meta.xmp
        assert back.getexif()[0x0131] == "neuralzip tests"
