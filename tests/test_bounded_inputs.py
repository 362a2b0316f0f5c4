"""Inputs that could grow without bound are bounded before the work: the pixel limit from an
array's shape before any copy, Pillow's decompression-bomb limit per call (never switched
off for the process), a header read in time linear in its bytes, and a clear refusal of
what is not a .nz file's bytes."""

import io
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, PngImagePlugin, features

import neuralzip
from neuralzip import api
from neuralzip.cli import main
from neuralzip.core.codec import UnsupportedImage
from neuralzip.core.container import Header


def test_decompress_wants_bytes():
    with pytest.raises(TypeError, match="decompress takes the bytes of a .nz file, not numpy.ndarray"):
        neuralzip.decompress(np.zeros(10, np.uint8))


def test_the_pixel_limit_is_checked_from_the_shape_before_any_copy():
    huge = np.broadcast_to(np.zeros(3, np.uint8), (40000, 40000, 3))  # 4.8 GB if copied
    started = time.perf_counter()
    with pytest.raises(UnsupportedImage, match="image of 40000x40000 pixels exceeds the limit"):
        neuralzip.compress(huge)
    assert time.perf_counter() - started < 1.0


def test_pillows_limit_is_ours_per_call_and_never_off(tmp_path, monkeypatch, sample):
    Image.fromarray(sample).save(tmp_path / "a.png")
    before, seen = Image.MAX_IMAGE_PIXELS, []
    opener = Image.open

    def watching_open(*args, **kwargs):
        seen.append(Image.MAX_IMAGE_PIXELS)
        return opener(*args, **kwargs)

    monkeypatch.setattr(Image, "open", watching_open)
    assert np.array_equal(api.read_image(tmp_path / "a.png", max_pixels=50_000), sample)
    assert seen == [50_000] and Image.MAX_IMAGE_PIXELS == before
    with pytest.raises(UnsupportedImage, match="exceeds the limit of 1000 pixels"):
        api.read_image(tmp_path / "a.png", max_pixels=1000)
    assert Image.MAX_IMAGE_PIXELS == before


def test_other_threads_keep_a_limit_while_one_reads(tmp_path, sample):
    Image.fromarray(sample).save(tmp_path / "a.png")
    stop, seen = threading.Event(), set()

    def watch():
        while not stop.is_set():
            seen.add(Image.MAX_IMAGE_PIXELS)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(50):
            api.read_image(tmp_path / "a.png", max_pixels=1 << 20)
    finally:
        stop.set()
        watcher.join()
    assert None not in seen


def test_an_image_past_twice_the_limit_is_named_with_the_limit_on(tmp_path, monkeypatch, sample):
    """Over twice the limit Pillow refuses the image before handing it over; its size, for
    the error, is read again from the header with Pillow's limit still on."""
    Image.fromarray(sample).save(tmp_path / "a.png")
    height, width = sample.shape[:2]
    seen = []
    opener = PngImagePlugin.PngImageFile._open

    def watching_open(self):
        seen.append(Image.MAX_IMAGE_PIXELS)
        return opener(self)

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "_open", watching_open)
    before = Image.MAX_IMAGE_PIXELS
    for source in (tmp_path / "a.png", io.BytesIO((tmp_path / "a.png").read_bytes())):
        with pytest.raises(UnsupportedImage) as error:
            api.read_image(source, max_pixels=1000)
        assert str(error.value) == f"image of {width}x{height} pixels exceeds the limit of 1000 pixels"
    assert seen == [1000] * 4 and Image.MAX_IMAGE_PIXELS == before


class _OneWay(io.RawIOBase):
    """A stream that cannot seek, as a pipe."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self._data.readinto(buffer)


@pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")
def test_past_twice_the_limit_without_a_size_to_name_the_error_says_more_than(tmp_path, sample):
    """WebP's plugin checks the size itself as it opens, and a pipe cannot be read twice:
    the error then says the image is over twice the limit, in the same one line."""
    webp = io.BytesIO()
    Image.fromarray(sample).save(webp, "WEBP", lossless=True)
    png = io.BytesIO()
    Image.fromarray(sample).save(png, "PNG")
    before = Image.MAX_IMAGE_PIXELS
    for source in (io.BytesIO(webp.getvalue()), _OneWay(png.getvalue())):
        with pytest.raises(UnsupportedImage) as error:
            api.read_image(source, max_pixels=1000)
        assert str(error.value) == "image of more than 2000 pixels exceeds the limit of 1000 pixels"
    assert Image.MAX_IMAGE_PIXELS == before


def test_info_reads_a_long_header_in_linear_time(tmp_path, sample):
    data = neuralzip.compress(np.dstack([sample, np.full(sample.shape[:2], 200, np.uint8)]))
    header, offset = Header.unpack(data)
    header.alpha = header.alpha + bytes(64 << 20)  # a 64 MiB alpha block: read in a few big reads
    (tmp_path / "long.nz").write_bytes(header.pack() + data[offset:])
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["info", str(tmp_path / "long.nz")])
    assert time.perf_counter() - started < 1.5  # 64 KiB reads, each re-parsing all: over 3 s
    assert result.exit_code in (0, 1)  # listed, or refused in one line: never slow


def _with_metadata_block(data: bytes, raw: bytes) -> bytes:
    """``data`` (a file with a metadata block) with its block replaced by zlib of ``raw``."""
    import zlib

    from neuralzip.core.container import pack_metadata

    header, offset = Header.unpack(data)
    packed = pack_metadata(header.metadata)
    block = zlib.compress(raw, 9)
    prefix = header.pack()[: -len(packed)]
    from neuralzip.core.fields import varint

    return prefix[: -len(varint(len(packed)))] + varint(len(block)) + block + data[offset:]


def test_crafted_metadata_blocks_are_refused_fast(sample):
    from neuralzip.core.fields import FormatError
    from neuralzip.core.metadata import Metadata

    data = neuralzip.compress(sample[:40, :40], metadata=Metadata(text={"a": "b"}))
    icc = b"\x01\x02ab"
    cases = {
        "a kind twice": icc * 2,
        "out of order": b"\x04\x03a\x00b" + icc,
        "too many entries": b"\x04\x03a\x00b" * 70_000,
        "5.6 M ICC entries": icc * 5_600_000,  # the 16 KB file of the issue: 22 MB inflated, refused
    }
    for what, raw in cases.items():
        started = time.perf_counter()
        with pytest.raises(FormatError, match="metadata block"):
            Header.unpack(_with_metadata_block(data, raw))
        assert time.perf_counter() - started < 1.0, what


def test_the_writer_refuses_metadata_a_reader_would_refuse(sample):
    from neuralzip.core.metadata import Metadata

    with pytest.raises(ValueError, match="at most 16,777,216 bytes and 65,536 entries"):
        neuralzip.compress(sample[:8, :8], metadata=Metadata(exif=b"Exif\0\0" + bytes(17 << 20)))
    many = Metadata(text={f"k{i}": "v" for i in range(70_000)})
    with pytest.raises(ValueError, match="70,000 entries"):
        neuralzip.compress(sample[:8, :8], metadata=many)


def test_metadata_no_file_holds_is_refused_in_one_plain_line(tmp_path, sample):
    Image.fromarray(sample[:8, :8]).save(tmp_path / "big.png", exif=b"Exif\0\0" + bytes(17 << 20))
    result = CliRunner().invoke(main, ["compress", str(tmp_path / "big.png")])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "at most 16,777,216 bytes" in result.output and "Error:" not in result.output  # no class name
    assert not (tmp_path / "big.nz").exists()


def test_a_named_pipe_is_an_input_and_os_errors_name_the_users_path(tmp_path, sample):
    import os
    import subprocess
    import sys

    Image.fromarray(sample).save(tmp_path / "a.png")
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    feed = f"open({str(fifo)!r}, 'wb').write(open({str(tmp_path / 'a.png')!r}, 'rb').read())"
    feeder = subprocess.Popen([sys.executable, "-c", feed])
    result = CliRunner().invoke(main, ["compress", str(fifo), "-o", str(tmp_path / "p.nz")])
    feeder.wait(timeout=30)
    assert result.exit_code == 0, result.output
    assert np.array_equal(neuralzip.decompress((tmp_path / "p.nz").read_bytes()), sample)
    (tmp_path / "file").write_bytes(b"")
    result = CliRunner().invoke(main, ["compress", str(tmp_path / "a.png"), "-o", str(tmp_path / "file" / "x.nz")])
    assert result.exit_code == 1
    assert "[Errno" not in result.output and ".part" not in result.output
    assert result.output.strip().endswith(f"{tmp_path / 'file'}: File exists")  # its parent is a file


def test_stdin_is_read_with_a_limit_and_info_does_not_read_the_payload(tmp_path, sample):
    import subprocess
    import sys

    script = (
        "from neuralzip.cli import entry; import sys; "
        "sys.argv = ['neuralzip', 'compress', '-', '--max-pixels', '100']; entry()"
    )
    endless = subprocess.Popen(["cat", "/dev/zero"], stdout=subprocess.PIPE)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", script], stdin=endless.stdout, capture_output=True, text=True, timeout=60
    )
    endless.kill()
    assert result.returncode == 1 and time.perf_counter() - started < 30
    assert result.stderr.strip() == (
        "neuralzip: error: <stdin>: standard input is longer than any image of --max-pixels 100 pixels could be"
    )
    header = Header.unpack(neuralzip.compress(sample))[0]
    header.width, header.height, header.payload_length = 20000, 20000, 1 << 30  # a 1 GiB payload, sparse
    path = tmp_path / "big.nz"
    with path.open("wb") as f:
        f.write(header.pack())
        f.truncate(len(header.pack()) + header.payload_length)
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["info", str(path)])
    assert result.exit_code == 0, result.output
    assert time.perf_counter() - started < 0.5  # reading the payload would take seconds


def _crafted(data: bytes, **fields) -> bytes:
    """``data`` with header fields replaced (payload kept)."""
    header, offset = Header.unpack(data)
    for key, value in fields.items():
        setattr(header, key, value)
    return header.pack() + data[offset:]


def _counting(monkeypatch, module, name: str) -> list:
    """Calls of ``module.name`` from here on, one entry each."""
    calls, function = [], getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return function(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_the_header_and_metadata_are_parsed_once(tmp_path, monkeypatch, sample):
    from neuralzip.core import container
    from neuralzip.core.metadata import Metadata

    image = sample[:40, :40]
    data = neuralzip.compress(image, metadata=Metadata(icc_profile=b"icc", text={"a": "b"}))
    (tmp_path / "m.nz").write_bytes(data)
    for run in (
        lambda: neuralzip.decompress(data),
        lambda: api.open(tmp_path / "m.nz"),
        lambda: CliRunner().invoke(main, ["decompress", str(tmp_path / "m.nz"), "-f", "-q"]),
        lambda: CliRunner().invoke(main, ["info", str(tmp_path / "m.nz")]),
    ):
        parses = _counting(monkeypatch, container, "unpack_metadata")
        result = run()
        assert getattr(result, "exit_code", 0) == 0, result.output
        assert len(parses) == 1
        monkeypatch.undo()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "m.png")), image)


def test_a_long_header_is_read_in_a_few_parses_not_one_per_chunk(tmp_path, monkeypatch, sample):
    import zlib

    from neuralzip.core import container

    data = neuralzip.compress(np.dstack([sample[:16, :16], np.full((16, 16), 7, np.uint8)]))
    noise = np.random.default_rng(0).integers(0, 256, 1 << 22, np.uint8).tobytes()
    alpha = b"\x01" + zlib.compress(noise, 9)  # 4 MiB of alpha that does not deflate: a 4 MiB block
    path = tmp_path / "long.nz"
    path.write_bytes(_crafted(data, width=2048, height=2048, alpha=alpha))
    parses = _counting(monkeypatch, container.Header, "unpack_prefix")
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["info", str(path)])
    took = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    assert f"alpha: deflate, {len(alpha)} bytes" in result.output
    assert len(parses) <= 4  # the fixed fields, the alpha block: not one parse per 64 KiB read
    assert took < 0.5


def test_blocks_longer_than_any_writer_makes_are_refused_before_they_are_read(sample):
    from neuralzip.core.container import MAX_METADATA_BLOCK, pack_metadata
    from neuralzip.core.fields import FormatError, varint
    from neuralzip.core.metadata import Metadata

    header = Header.unpack(neuralzip.compress(np.dstack([sample[:16, :16], np.full((16, 16), 7, np.uint8)])))[0]
    before_alpha = header.pack()[: -len(header.alpha) - 1]
    header = Header.unpack(neuralzip.compress(sample[:8, :8], metadata=Metadata(text={"a": "b"})))[0]
    before_metadata = header.pack()[: -len(pack_metadata(header.metadata)) - 1]
    started = time.perf_counter()
    with pytest.raises(FormatError, match="alpha block of 321 bytes is longer than any of a 16x16 image"):
        Header.unpack_prefix(before_alpha + varint(1 + 16 * 16 + 64))  # zlib writes at most 269 for 256
    with pytest.raises(FormatError, match=f"metadata block of {MAX_METADATA_BLOCK + 1:,} bytes"):
        Header.unpack_prefix(before_metadata + varint(MAX_METADATA_BLOCK + 1))  # refused from its length
    assert time.perf_counter() - started < 0.5


def test_stdin_is_read_in_memory_that_grows_with_it(tmp_path, sample):
    """The stdin limit is 8 bytes a pixel of --max-pixels (576 MiB by default): reading up to
    it must not reserve it. Under a 700 MB address-space limit a small image still goes
    through."""
    import resource
    import subprocess
    import sys

    Image.fromarray(sample[:32, :32]).save(tmp_path / "a.png")
    script = "from neuralzip.cli import entry; import sys; sys.argv = ['neuralzip', 'compress', '-', '-q']; entry()"

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (700 << 20, 700 << 20))

    with (tmp_path / "a.png").open("rb") as stdin:
        result = subprocess.run(
            [sys.executable, "-c", script], stdin=stdin, capture_output=True, timeout=120, preexec_fn=limited
        )
    assert result.returncode == 0, result.stderr.decode()
    assert np.array_equal(neuralzip.decompress(result.stdout), sample[:32, :32])


def test_the_16_kb_file_of_the_issue_fails_in_a_second_within_512_mb(tmp_path, sample):
    """The crafted file of issue 24 (5.6 M ICC entries in a 16 KB metadata block: 39 s and
    470 MB before) through the command, in a process limited to 512 MB of address space."""
    import subprocess
    import sys
    import zlib

    from neuralzip.core.container import pack_metadata
    from neuralzip.core.fields import varint
    from neuralzip.core.metadata import Metadata

    data = neuralzip.compress(sample[:40, :40], metadata=Metadata(text={"a": "b"}))
    header, offset = Header.unpack(data)
    old = pack_metadata(header.metadata)
    block = zlib.compress(b"\x01\x02ab" * 5_600_000, 9)
    crafted = header.pack()[: -len(old) - 1] + varint(len(block)) + block + data[offset:]
    assert len(crafted) < 24_000
    (tmp_path / "icc.nz").write_bytes(crafted)
    script = f"""
import resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))
from neuralzip.cli import entry
for command in ("decompress", "info"):
    sys.argv = ["neuralzip", command, {str(tmp_path / "icc.nz")!r}, "-f"][: 4 if command == "decompress" else 3]
    started = time.perf_counter()
    try:
        entry()
    except SystemExit as exc:
        print(command, exc.code, time.perf_counter() - started)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    lines = result.stdout.split("\n")
    for command, line in zip(("decompress", "info"), lines):
        name, code, took = line.split()
        assert name == command and code == "1" and float(took) < 1.0, result.stdout + result.stderr
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("neuralzip: error: ") and "metadata block" in e for e in errors)
    assert "Traceback" not in result.stderr


def test_info_names_at_most_twenty_text_keys(sample):
    from neuralzip.core.metadata import Metadata

    line = Metadata(text={f"k{i}": "v" for i in range(1000)}).describe()
    assert line.startswith("text k0, k1, ") and line.endswith("k19 and 980 more")


def test_a_version_1_file_claiming_a_big_image_costs_what_max_pixels_allows(tmp_path):
    """Version 1 has no payload bound (FORMAT.md, Limits): 16 KB of payload can make the
    decoder run the model on every pixel its header claims. --max-pixels is the answer:
    over it the file is refused from its header, at once; under it the cost is the pixels'."""
    import os

    from neuralzip.core.codec import DecodeError

    version_1 = bytes.fromhex(  # tests/test_format_doc.py's version-1 file (weights e8adac20)
        "4e5a0100030570686f746fe8adac200302180c362b048c0200ff6753cc26982102d203000000"
    )
    header = Header.unpack(version_1)[0]
    header.mode, header.alpha, header.width, header.height = 0, None, 2048, 2048
    payload = os.urandom(16_000)
    header.payload_length = len(payload)
    crafted = header.pack() + payload
    assert header.version == 1 and len(crafted) < 16_100
    (tmp_path / "v1.nz").write_bytes(crafted)
    started = time.perf_counter()
    with pytest.raises(DecodeError, match="image of 2048x2048 pixels exceeds the limit of 1000000 pixels"):
        neuralzip.decompress(crafted, max_pixels=1_000_000)
    result = CliRunner().invoke(main, ["decompress", str(tmp_path / "v1.nz"), "--max-pixels", "1000000"])
    assert time.perf_counter() - started < 1.0
    assert result.exit_code == 1 and "exceeds the limit of 1000000 pixels" in result.output
    header.width = header.height = 128  # within a limit, the cost is the claimed pixels': a fraction of a second
    started = time.perf_counter()
    with pytest.raises(DecodeError, match="checksum"):
        neuralzip.decompress(header.pack() + payload, max_pixels=128 * 128)
    assert time.perf_counter() - started < 5.0
