"""Issue 12: no silent loss on the way in or out (16-bit sources, colour keys, animations,
lossy output formats, cut-short writes) and streams read header first. Real files on disk,
through click's CliRunner or the installed command."""

import io
import os
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from neuralzip import api
from neuralzip.cli import main
from neuralzip.core.codec import UnsupportedImage
from neuralzip.core.container import Header


def _run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


def _command() -> list[str]:
    exe = shutil.which("neuralzip")
    return [exe] if exe else [sys.executable, "-m", "neuralzip"]


def _one_error_line(output: str, text: str) -> None:
    lines = [line for line in output.splitlines() if line.strip()]
    assert "Traceback" not in output
    assert len(lines) == 1 and lines[0].startswith("neuralzip: error:") and text in lines[0], output


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(pixels: np.ndarray, bits: int, colour_type: int, *extra: bytes) -> bytes:
    """A PNG written by hand: ``pixels`` (H, W, C) of uint8 or big-endian uint16 samples."""
    height, width = pixels.shape[:2]
    raw = pixels.astype(">u2" if bits == 16 else np.uint8).tobytes()
    row = len(raw) // height
    rows = b"".join(b"\0" + raw[i * row : (i + 1) * row] for i in range(height))
    header = struct.pack(">IIBBBBB", width, height, bits, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + b"".join(extra)
            + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b""))


RNG = np.random.default_rng(12)


# -- 1. 16-bit sources ------------------------------------------------------------------------
@pytest.mark.parametrize("name,colour_type,channels", [("RGB", 2, 3), ("RGBA", 6, 4), ("LA", 4, 2)])
def test_16_bit_pngs_are_refused_by_name(tmp_path, name, colour_type, channels):
    """Pillow opens these as 8-bit RGB or RGBA: coding them would keep the high bytes only."""
    path = tmp_path / "deep.png"
    path.write_bytes(_png(RNG.integers(0, 65536, (6, 5, channels)), 16, colour_type))
    r = _run("compress", path)
    assert r.exit_code != 0
    _one_error_line(r.output, f"16-bit {name} image")
    assert not path.with_suffix(".nz").exists()
    with pytest.raises(UnsupportedImage, match="16-bit"):
        api.read_image(path)


def test_16_bit_ppm_is_refused(tmp_path):
    path = tmp_path / "deep.ppm"
    path.write_bytes(b"P6 5 4 65535\n" + RNG.integers(0, 65536, (4, 5, 3)).astype(">u2").tobytes())
    r = _run("compress", path)
    assert r.exit_code != 0
    _one_error_line(r.output, "16-bit RGB image")


def test_8_bit_files_still_code(tmp_path):
    pixels = RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    for suffix in (".png", ".ppm", ".bmp", ".tif"):
        path = tmp_path / f"ok{suffix}"
        Image.fromarray(pixels).save(path)
        assert np.array_equal(api.read_image(path), pixels)
    packed = tmp_path / "four.png"  # a 4-bit palette PNG: P;4, at most 8 bits
    Image.fromarray(pixels[:, :, 0] % 16, "L").convert("P", colors=16).save(packed, bits=4)
    assert api.read_image(packed).shape[:2] == (6, 5)


# -- 2. colour keys (tRNS on RGB and grey) ------------------------------------------------------
def test_rgb_colour_key_is_coded_as_rgba(tmp_path):
    pixels = RNG.integers(0, 256, (8, 9, 3), dtype=np.uint8)
    pixels[2, 3] = pixels[5, 5] = (10, 20, 30)
    path = tmp_path / "keyed.png"
    path.write_bytes(_png(pixels, 8, 2, _chunk(b"tRNS", struct.pack(">HHH", 10, 20, 30))))
    assert _run("compress", path).exit_code == 0
    path.unlink()
    assert _run("decompress", path.with_suffix(".nz")).exit_code == 0
    with Image.open(path) as back:
        assert back.mode == "RGBA"
        out = np.asarray(back)
    key = (pixels == (10, 20, 30)).all(axis=2)
    assert np.array_equal(out[:, :, :3], pixels)
    assert np.array_equal(out[:, :, 3], np.where(key, 0, 255))


def test_grey_colour_key_is_coded_as_la(tmp_path):
    pixels = RNG.integers(0, 256, (7, 6), dtype=np.uint8)
    pixels[0, 0] = 77
    path = tmp_path / "keyed.png"
    path.write_bytes(_png(pixels, 8, 0, _chunk(b"tRNS", struct.pack(">H", 77))))
    out = api.read_image(path)
    assert out.shape == (7, 6, 2)
    assert np.array_equal(out[:, :, 0], pixels) and np.array_equal(out[:, :, 1], np.where(pixels == 77, 0, 255))
    assert np.array_equal(api.decompress(api.compress(out)), out)


def test_a_key_no_pixel_has_changes_nothing(tmp_path):
    pixels = np.full((4, 4, 3), 200, np.uint8)
    path = tmp_path / "unused_key.png"
    path.write_bytes(_png(pixels, 8, 2, _chunk(b"tRNS", struct.pack(">HHH", 1, 2, 3))))
    assert np.array_equal(api.read_image(path), pixels)  # every pixel opaque: RGB, as palettes


# -- 3. animations and multi-page files: refused ---------------------------------------------
def _frames(n):
    return [Image.fromarray(RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)) for _ in range(n)]


@pytest.mark.parametrize("suffix", [".gif", ".png", ".tif"])
def test_animated_and_multi_page_images_are_refused(tmp_path, suffix):
    path = tmp_path / f"moving{suffix}"
    first, *rest = _frames(3)
    first.save(path, save_all=True, append_images=rest)
    with Image.open(path) as check:
        assert check.n_frames == 3
    r = _run("compress", path)
    assert r.exit_code != 0
    _one_error_line(r.output, "(3 frames)")
    assert not path.with_suffix(".nz").exists()


def test_a_single_frame_gif_still_codes(tmp_path):
    path = tmp_path / "still.gif"
    _frames(1)[0].save(path)
    assert _run("compress", path).exit_code == 0


# -- 4. output formats: lossless ones only, refused before decoding ---------------------------
@pytest.fixture
def nz_files(tmp_path):
    """An RGB and an RGBA .nz file."""
    rgb = RNG.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    rgba = np.dstack([rgb, RNG.integers(0, 256, (6, 7), dtype=np.uint8)])
    paths = {}
    for name, image in (("rgb", rgb), ("rgba", rgba)):
        paths[name] = tmp_path / f"{name}.nz"
        paths[name].write_bytes(api.compress(image))
    return paths, {"rgb": rgb, "rgba": rgba}


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".webp", ".ico", ".gif", ".xyz"])
def test_lossy_or_unknown_output_formats_are_refused_before_decoding(tmp_path, nz_files, suffix, monkeypatch):
    decoded = []
    monkeypatch.setattr(api, "decompress", lambda *a, **k: decoded.append(1))
    out = tmp_path / f"out{suffix}"
    r = _run("decompress", nz_files[0]["rgb"], "-o", out)
    assert r.exit_code != 0 and not decoded and not out.exists()
    _one_error_line(r.output, f"{suffix} is not an output format written losslessly")


def test_a_format_that_would_drop_alpha_is_refused(tmp_path, nz_files):
    out = tmp_path / "out.bmp"  # Pillow writes RGBA to BMP as RGB
    r = _run("decompress", nz_files[0]["rgba"], "-o", out)
    assert r.exit_code != 0 and not out.exists()
    _one_error_line(r.output, "BMP cannot hold a RGBA image losslessly")


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff", ".bmp", ".ppm", ".pnm", ""])
def test_lossless_output_formats_give_the_exact_pixels(tmp_path, nz_files, suffix):
    paths, images = nz_files
    out = tmp_path / f"out{suffix}"
    assert _run("decompress", paths["rgb"], "-o", out).exit_code == 0
    with Image.open(out) as back:
        assert np.array_equal(np.asarray(back), images["rgb"])


# -- 5. short writes and closed pipes on stdout -----------------------------------------------
@pytest.fixture
def big_nz(tmp_path):
    """A .nz of noise whose PNG is about 190 kB: far more than a pipe holds."""
    path = tmp_path / "noise.nz"
    path.write_bytes(api.compress(RNG.integers(0, 256, (250, 250, 3), dtype=np.uint8)))
    return path


@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_a_reader_that_closes_the_pipe_early_is_an_error(big_nz, unbuffered):
    env = {**os.environ, "PYTHONUNBUFFERED": unbuffered}
    if not unbuffered:
        env.pop("PYTHONUNBUFFERED")
    with big_nz.open("rb") as stdin:
        proc = subprocess.Popen([*_command(), "decompress", "-", "-q"], stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
        head = proc.stdout.read(10)  # like `| head -c 10`
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        proc.wait(timeout=60)
    assert head == b"\x89PNG\r\n\x1a\n\0\0"
    assert proc.returncode != 0
    _one_error_line(stderr, "standard output")


@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_a_full_disk_on_stdout_is_an_error(big_nz, unbuffered):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    env = {**os.environ, "PYTHONUNBUFFERED": unbuffered}
    if not unbuffered:
        env.pop("PYTHONUNBUFFERED")
    with big_nz.open("rb") as stdin, open("/dev/full", "wb") as full:
        r = subprocess.run([*_command(), "decompress", "-", "-q"], stdin=stdin, stdout=full,
                           stderr=subprocess.PIPE, text=True, env=env, timeout=60)
    assert r.returncode != 0
    _one_error_line(r.stderr, "standard output")


def test_stdout_written_in_full_when_it_works(big_nz, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    r = subprocess.run([*_command(), "decompress", "-", "-q"], stdin=big_nz.open("rb"), capture_output=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    with Image.open(io.BytesIO(r.stdout)) as back:
        assert np.array_equal(np.asarray(back), api.decompress(big_nz.read_bytes()))


# -- 8. stdin: the header first ----------------------------------------------------------------
def _bounded(args: list[str], stdin) -> subprocess.CompletedProcess:
    """Run the installed command with 1 GB of address space: reading an endless stream
    whole would die of MemoryError long before the timeout."""
    def limit():
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    return subprocess.run([*_command(), *args], stdin=stdin, capture_output=True, text=True, timeout=60,
                          preexec_fn=limit)


@pytest.mark.parametrize("command", ["info", "decompress"])
def test_an_endless_stream_that_is_not_nz_is_refused_from_two_bytes(command):
    with open("/dev/zero", "rb") as zero:
        r = _bounded([command, "-"], zero)
    assert r.returncode != 0
    _one_error_line(r.stderr, "not a neuralzip file")


@pytest.mark.parametrize("command", ["info", "decompress"])
def test_an_endless_payload_is_refused_from_the_header(tmp_path, command):
    good = api.compress(RNG.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    header = Header.unpack(good)[0]
    header.stored = False  # noise is stored raw; this header claims ANS words
    header.payload_length = (1 << 35) - 1  # 32 GiB, then zeros for ever
    (tmp_path / "head.bin").write_bytes(header.pack())
    feeder = subprocess.Popen(["sh", "-c", 'cat "$1"; exec cat /dev/zero', "sh", str(tmp_path / "head.bin")],
                              stdout=subprocess.PIPE)
    try:
        r = _bounded([command, "-"], feeder.stdout)
    finally:
        feeder.kill()
        feeder.wait()
    assert r.returncode != 0
    _one_error_line(r.stderr, "is more than a 4x4 image can need")


def test_info_on_stdin_reads_the_header_and_counts_the_rest(tmp_path):
    data = api.compress(RNG.integers(0, 256, (9, 8, 3), dtype=np.uint8))
    r = _run("info", "-", input=data)
    assert r.exit_code == 0 and f"{len(data):,} bytes" in r.output
    r = _run("info", "-", input=data + b"x")
    _one_error_line(r.output, "longer than its header says")
    r = _run("info", "-", input=data[:-1])
    _one_error_line(r.output, "truncated")
