"""Inputs that could grow without bound are bounded before the work: the pixel limit from an
array's shape before any copy, Pillow's decompression-bomb limit per call (never switched
off for the process), a header read in time linear in its bytes, and a clear refusal of
what is not a .nz file's bytes."""

import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

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
    from neuralzip.core.container import _varint

    return prefix[: -len(_varint(len(packed)))] + _varint(len(block)) + block + data[offset:]


def test_crafted_metadata_blocks_are_refused_fast(sample):
    from neuralzip.core.container import FormatError
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

    script = "from neuralzip.cli import entry; import sys; sys.argv = ['neuralzip', 'compress', '-', '--max-pixels', '100']; entry()"
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
