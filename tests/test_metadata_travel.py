"""Issue 24, metadata: what ``compress`` accepts, ``decompress`` gives back into PNG, or it is
refused at compress time in one line. PNG's keyword rules are applied where PNG is
written (FORMAT.md, Metadata block); WebP's EXIF is stored as every other source's."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import neuralzip
from neuralzip import api
from neuralzip.cli import main
from neuralzip.core.metadata import EXIF_PREFIX, Metadata, MetadataError, is_png_keyword, png_keyword


def _png_text_chunks(path) -> list[tuple[bytes, bytes, bytes]]:
    """(chunk type, keyword, translated keyword or b"") of every tEXt and iTXt chunk of a PNG."""
    import struct

    data, pos, out = path.read_bytes(), 8, []
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"tEXt":
            out.append((kind, body.split(b"\0")[0], b""))
        elif kind == b"iTXt":
            keyword, rest = body.split(b"\0", 1)
            _language, tkey, _text = rest[2:].split(b"\0", 2)
            out.append((kind, keyword, tkey))
        pos += 12 + length
    return out


def test_keys_png_cannot_hold_go_into_itxt_with_the_key_kept(tmp_path):
    image = np.full((8, 8, 3), 7, np.uint8)
    text = {"ключ": "значение", "": "empty", "k" * 200: "long", " sp": "x", "a  b": "y", "ok": "z", "Titel ü": "w"}
    (tmp_path / "k.nz").write_bytes(neuralzip.compress(image, metadata=Metadata(text=text)))
    result = CliRunner().invoke(main, ["decompress", str(tmp_path / "k.nz"), "-q"])
    assert result.exit_code == 0, result.output  # a non-Latin-1 key was a UnicodeEncodeError
    chunks = _png_text_chunks(tmp_path / "k.png")
    assert len(chunks) == len(text)
    for kind, keyword, tkey in chunks:
        assert is_png_keyword(keyword.decode("latin-1"))
        key = tkey.decode() if tkey else keyword.decode("latin-1")
        key = "" if (kind, keyword, tkey) == (b"iTXt", b"_", b"") else key  # the empty key: "_", tkey ""
        assert key in text and png_keyword(key) == keyword.decode("latin-1")
        assert is_png_keyword(key) or (kind == b"iTXt" and tkey.decode() == key)
    assert {png_keyword(k) for k in text} == {"_", "k" * 79, "sp", "a b", "ok", "Titel ü"}
    with Image.open(tmp_path / "k.png") as back:
        assert np.array_equal(np.asarray(back), image)
        assert back.text["ok"] == "z" and back.text["Titel ü"] == "w" and back.text["sp"].tkey == " sp"


def test_a_key_with_a_nul_is_refused_at_compress_time():
    with pytest.raises(MetadataError, match="text key 'a\\\\x00b' holds a NUL character"):
        neuralzip.compress(np.zeros((4, 4), np.uint8), metadata=Metadata(text={"a\0b": "v"}))


def test_webp_exif_is_stored_with_its_prefix_as_every_other_sources(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), np.uint8)
    Image.fromarray(image).save(tmp_path / "a.webp", lossless=True, exif=exif.tobytes())
    with Image.open(tmp_path / "a.webp") as source:
        assert not source.info["exif"].startswith(EXIF_PREFIX)  # Pillow's WebP gives it bare
        stored = api.metadata(neuralzip.compress(source)).exif
    assert stored == exif.tobytes() and stored.startswith(EXIF_PREFIX)
    result = CliRunner().invoke(main, ["compress", str(tmp_path / "a.webp"), "-q"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["decompress", str(tmp_path / "a.nz"), "-q"])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "a.png") as back:
        assert back.getexif()[0x0112] == 6 and np.array_equal(np.asarray(back), image)


def test_a_png_with_17_mib_of_exif_is_refused_at_compress_time_in_one_line(tmp_path):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(
        tmp_path / "big.png", exif=EXIF_PREFIX + b"MM\0*" + bytes(17 << 20), pnginfo=info
    )
    result = CliRunner().invoke(main, ["compress", str(tmp_path / "big.png")])
    assert result.exit_code == 1 and not (tmp_path / "big.nz").exists()
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "a file holds at most 16,777,216 bytes and 65,536 entries (--strip" in lines[0]
    result = CliRunner().invoke(main, ["compress", str(tmp_path / "big.png"), "--strip", "-q"])
    assert result.exit_code == 0, result.output


def test_an_icc_profile_of_several_mib_comes_back_in_the_png(tmp_path):
    """Over Pillow's MAX_TEXT_CHUNK (1 MiB) the read-back check of the PNG failed: it is
    made on the pixels alone now."""
    icc = np.random.default_rng(1).integers(0, 256, 3 << 20, np.uint8).tobytes()  # 3 MiB
    image = np.full((8, 8, 3), 9, np.uint8)
    (tmp_path / "i.nz").write_bytes(neuralzip.compress(image, metadata=Metadata(icc_profile=icc)))
    result = CliRunner().invoke(main, ["decompress", str(tmp_path / "i.nz"), "-q"])
    assert result.exit_code == 0, result.output
    import zlib

    from PIL import PngImagePlugin

    with pytest.raises(ValueError, match="MAX_TEXT_CHUNK"):  # Pillow's own limit still holds for its readers
        Image.open(tmp_path / "i.png").load()
    assert PngImagePlugin.MAX_TEXT_CHUNK == 1 << 20
    chunks, data, pos = {}, (tmp_path / "i.png").read_bytes(), 8
    while pos < len(data):
        length, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
        chunks[kind] = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    name, rest = chunks[b"iCCP"].split(b"\0", 1)
    assert zlib.decompress(rest[1:]) == icc  # byte for byte
