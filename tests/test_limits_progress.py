"""Size limits on compress (checked from the image header, before pixels are decoded),
encode progress, and -q/--quiet."""

import io
import os
import struct
import subprocess
import sys
import time
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from tqdm import tqdm

import neuralzip
from neuralzip import api, tasks
from neuralzip.cli import main

HUGE = 20000  # a HUGE x HUGE image: 400 megapixels, past Pillow's decompression-bomb error


def _run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int, idat: bytes) -> bytes:
    """A 1-bit paletted PNG (Pillow reads it as mode P) with the given compressed data."""
    header = struct.pack(">IIBBBBB", width, height, 1, 3, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"PLTE", b"\0\0\0\xff\xff\xff")
            + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory):
    """A real, valid 20000x20000 PNG of one colour: 400 megapixels in about 50 kB."""
    row = b"\0" * (1 + HUGE // 8)  # filter byte + 20000 bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row * 1000) for _ in range(HUGE // 1000)) + packer.flush()
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    path.write_bytes(_png(HUGE, HUGE, idat))
    assert path.stat().st_size < 200_000
    return path


@pytest.fixture
def tiny(tmp_path, urban_crop):
    path = tmp_path / "tiny.png"
    Image.fromarray(urban_crop[:16, :16]).save(path)
    return path


def _error_lines(result):
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_compress_refuses_an_image_over_max_pixels(tiny):
    r = _run("compress", tiny, "--max-pixels", 255)
    assert r.exit_code == 1 and "Traceback" not in r.output and r.stdout == ""
    assert _error_lines(r) == [f"neuralzip: error: {tiny}: image of 16x16 pixels exceeds the limit of 255 pixels"]
    assert [p.name for p in tiny.parent.iterdir()] == ["tiny.png"]
    assert _run("compress", tiny, "--max-pixels", 256).exit_code == 0


def test_a_huge_image_is_refused_from_its_header(huge_png, tmp_path):
    """Past Pillow's own bomb limit too: our one line, quickly, without decoding 400 MP."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = _run("compress", huge_png, "-o", tmp_path / "huge.nz")
    assert time.perf_counter() - t0 < 10
    assert r.exit_code == 1 and "Traceback" not in r.output and r.stdout == ""
    assert _error_lines(r) == [f"neuralzip: error: {huge_png}: image of {HUGE}x{HUGE} pixels exceeds the limit "
                               f"of {neuralzip.core.codec.DEFAULT_MAX_PIXELS} pixels"]
    assert not (tmp_path / "huge.nz").exists()


def test_the_limit_is_checked_before_pixels_are_read(tmp_path, monkeypatch):
    """The header claims 20000x20000 but no pixel data follows: reading any pixel would fail
    with another error, so only a check from the header gives this one."""
    path = tmp_path / "header-only.png"
    path.write_bytes(_png(HUGE, HUGE, b""))
    with pytest.raises(neuralzip.UnsupportedImage, match=f"image of {HUGE}x{HUGE} pixels exceeds the limit of 1000"):
        api.read_image(path, max_pixels=1000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # let this test open it lazily itself
    with pytest.raises(neuralzip.UnsupportedImage, match="exceeds the limit of 1000 pixels"):
        api.compress(Image.open(path), max_pixels=1000)
    monkeypatch.undo()
    r = _run("compress", path, "--max-pixels", 1000)
    assert r.exit_code == 1 and len(_error_lines(r)) == 1 and "exceeds the limit of 1000 pixels" in r.stderr


def test_in_a_batch_a_huge_file_fails_alone(huge_png, tiny, tmp_path):
    out = tmp_path / "out"
    r = _run("compress", huge_png, tiny, "--out-dir", out, "--jobs", 1)
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert _error_lines(r) == [f"neuralzip: error: {huge_png}: image of {HUGE}x{HUGE} pixels exceeds the limit "
                               f"of {neuralzip.core.codec.DEFAULT_MAX_PIXELS} pixels"]
    assert [p.name for p in out.iterdir()] == ["tiny.nz"]


def test_max_pixels_overrides_pillows_bomb_limit(tiny, monkeypatch):
    """An image that --max-pixels admits is read even past Pillow's limit, without its
    warning, and Pillow's limit is put back afterwards."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 256 pixels: past Pillow's error (2x) too
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert api.read_image(tiny, max_pixels=256).shape == (16, 16, 3)
        r = _run("compress", tiny)
    assert r.exit_code == 0 and r.stderr == "", r.output
    assert Image.MAX_IMAGE_PIXELS == 100
    with pytest.raises(Image.DecompressionBombError):
        api.read_image(tiny)  # without max_pixels, Pillow's own check stands


def test_encode_reports_progress_up_to_done(urban_crop):
    calls = []
    data, _ = api.encode(urban_crop[:16, :16], progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1] > 0
    assert all(0 <= done <= total for done, total in calls)
    assert np.array_equal(neuralzip.decompress(data), urban_crop[:16, :16])
    assert neuralzip.compress(urban_crop[:16, :16], progress=lambda done, total: None) == data


def test_quiet_prints_nothing_on_success(tiny, tmp_path):
    for args in (["compress", tiny, "-q"], ["decompress", "--quiet", tiny.with_suffix(".nz"), "-o", tmp_path / "b.png"]):
        r = _run(*args)
        assert r.exit_code == 0 and (r.stdout, r.stderr) == ("", ""), r.output
    with Image.open(tmp_path / "b.png") as back, Image.open(tiny) as original:
        assert np.array_equal(np.asarray(back), np.asarray(original))


def test_quiet_still_prints_errors(tiny, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    r = _run("compress", "-q", tiny, tmp_path / "bad.png", "--jobs", 1)
    assert r.exit_code == 1 and r.stdout == "" and tiny.with_suffix(".nz").exists()
    assert len(_error_lines(r)) == 1 and "bad.png: not a readable image" in r.stderr


def test_quiet_stdin_to_stdout_keeps_only_the_data(tiny):
    r = _run("compress", "-", "-q", input=tiny.read_bytes())
    assert r.exit_code == 0 and r.stdout_bytes[:2] == b"NZ" and r.stderr == ""


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_bars_only_on_a_terminal_without_quiet(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert tasks.bar_wanted(quiet=False)
    assert not tasks.bar_wanted(quiet=True)
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a pipe or file: not a terminal
    assert not tasks.bar_wanted(quiet=False)


def test_progress_bar_follows_the_callback(monkeypatch):
    """The one bar helper behind compress and decompress draws progress(done, total)."""
    def undelayed(*args, **kwargs):
        return tqdm(*args, **{**kwargs, "delay": 0, "mininterval": 0})

    monkeypatch.setattr(tasks, "tqdm", undelayed)
    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    with tasks.progress_bar("encoding", "step", quiet=False) as progress:
        progress(3, 10)
        progress(10, 10)
    assert "encoding" in err.getvalue() and "10/10" in err.getvalue()
    with tasks.progress_bar("encoding", "step", quiet=True) as progress:
        assert progress is None  # no bar made at all


def test_pillows_limit_comes_back_after_reads_in_threads(tiny):
    limit = Image.MAX_IMAGE_PIXELS
    with ThreadPoolExecutor(8) as pool:
        shapes = list(pool.map(lambda _: api.read_image(tiny, max_pixels=256).shape, range(64)))
    assert shapes == [(16, 16, 3)] * 64
    assert limit is not None and Image.MAX_IMAGE_PIXELS == limit


def test_worker_processes_refuse_a_huge_file_in_one_line(huge_png, tiny, tmp_path):
    """The real command with --jobs 2: one error line, no Pillow warning, the other file done."""
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    cmd = [sys.executable, "-m", "neuralzip", "compress", str(huge_png), str(tiny), "--out-dir", str(out), "-j", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1 and len(r.stdout.splitlines()) == 1
    assert r.stderr.splitlines() == [f"neuralzip: error: {huge_png}: image of {HUGE}x{HUGE} pixels exceeds the "
                                     f"limit of {neuralzip.core.codec.DEFAULT_MAX_PIXELS} pixels"]
    assert [p.name for p in out.iterdir()] == ["tiny.nz"]
