"""Issue 12, item 6: crafted .nz headers that claim far more pixels than their payload.

Version 3 terminates the ANS payload: every coded subpixel costs at least
``MIN_SUBPIXEL_BITS``, so a payload too short for the size its header claims is refused
before anything is allocated, and one made for a smaller image runs out of bits within a
few steps, which the decoder checks before each step.

Versions 1 and 2 stay readable as they were written: there an empty coder codes symbol 0
for free, so an all-black image has no payload at all. Such a file decodes without running
the model, a tiny one that lies about its size is refused from its checksum before the
image is allocated, and decoding stops where the coder empties.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from helpers import deadline

from neuralzip import zoo
from neuralzip import api
from neuralzip.core.ans import TERMINATOR_BITS
from neuralzip.core.codec import DecodeError
from neuralzip.core.container import Header
from neuralzip.core.tables import MIN_SUBPIXEL_BITS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests", "golden")
HUGE = [(8192, 8192), (1 << 24, 1), (1, 1 << 24)]


@pytest.fixture(scope="module")
def sample_nz(sample) -> bytes:
    """A version-3 file of a 16x16 crop: a few hundred bytes of payload."""
    return api.compress(np.ascontiguousarray(sample[:16, :16]))


def _claiming(data: bytes, width: int, height: int, **fields) -> bytes:
    """``data`` with its header claiming another size (and other ``fields``), payload kept
    unless ``payload_length`` is given (then the payload is dropped)."""
    header, offset = Header.unpack(data)
    header.width, header.height = width, height
    payload = data[offset:] if "payload_length" not in fields else b""
    for key, value in fields.items():
        setattr(header, key, value)
    return header.pack() + payload


def _black_checksum(width: int, channels: int, height: int) -> int:
    checksum, row = 0, bytes(width * channels)
    for _ in range(height):
        checksum = zlib.crc32(row, checksum)
    return checksum


# -- version 3: a bounded, terminated payload ------------------------------------------------------

def test_black_images_cost_a_few_bytes_and_round_trip():
    for shape in [(64, 64), (1, 300), (300, 1), (40, 50, 3)]:
        image = np.zeros(shape, np.uint8)
        data = api.compress(image)
        header = Header.unpack(data)[0]
        assert header.version == 5 and 8 <= header.payload_length <= 64
        assert np.array_equal(api.decompress(data), image)
    alpha = np.random.default_rng(0).integers(0, 256, (20, 30), np.uint8)
    for channels in (1, 3):  # LA and RGBA: black colour, any alpha
        image = np.dstack([np.zeros((20, 30, channels), np.uint8), alpha])
        data = api.compress(image)
        assert np.array_equal(api.decompress(data), image)
        lie = bytearray(data)
        lie[-9] ^= 1  # inside the alpha block, before the payload's two words
        with pytest.raises(Exception, match="checksum|corrupt"):
            api.decompress(bytes(lie))


@pytest.mark.parametrize("value", [0, 1, 128, 254, 255])
def test_no_image_costs_less_than_the_bound_the_decoder_checks(value):
    """Flat images are the cheapest there are: each still pays MIN_SUBPIXEL_BITS a subpixel."""
    for shape in [(3, 5, 3), (64, 64), (200, 1), (1, 200, 3), (160, 160, 3)]:
        image = np.full(shape, value, np.uint8)
        header = Header.unpack(api.compress(image))[0]
        assert 8 * header.payload_length >= TERMINATOR_BITS + image.size * MIN_SUBPIXEL_BITS


@pytest.mark.parametrize("width,height", HUGE)
def test_a_small_file_claiming_a_huge_size_is_refused_before_decoding(sample_nz, width, height):
    data = _claiming(sample_nz, width, height)
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        with pytest.raises(DecodeError, match="cannot hold a"):
            api.decompress(data, max_pixels=1 << 26)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 1
    assert peak < 8 << 20  # nothing of the claimed image was allocated


def test_a_payload_made_for_a_smaller_image_runs_out_within_a_few_steps(codec, urban_crop):
    data = codec.encode(urban_crop)[0]  # 64x96, ~3.4 KB of payload: enough, by the bound, for 640x960
    calls = []
    with pytest.raises(DecodeError, match="payload runs out at step"):
        codec.decode(_claiming(data, 640, 960), progress=lambda done, total: calls.append((done, total)))
    total = calls[0][1]
    assert len(calls) < 0.05 * total  # refused early, not at the checksum after every step


def test_the_installed_command_refuses_the_lie_in_one_line(tmp_path, sample_nz):
    path = tmp_path / "lie.nz"
    path.write_bytes(_claiming(sample_nz, 8192, 8192))
    exe = shutil.which("neuralzip")
    cmd = [exe] if exe else [sys.executable, "-m", "neuralzip"]
    r = subprocess.run([*cmd, "decompress", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"neuralzip: error: {path}: the file is corrupted: a payload of ")
    assert "cannot hold a 8192x8192 image" in lines[0]
    assert not path.with_suffix(".png").exists()


# -- versions 1 and 2: as they were written ------------------------------------------------------------

def _version_1_black_file(width: int, height: int, checksum: int | None = None) -> bytes:
    """The version-1 .nz file of an all-black grey image: no payload at all (what a version-1
    encoder wrote for one), with the size and checksum given."""
    small = api.compress(np.zeros((8, 8), np.uint8), effort=2)  # photo, as version 1 wrote
    return _claiming(small, width, height, version=1, payload_length=0,
                     checksum=_black_checksum(width, 1, height) if checksum is None else checksum)


def test_a_huge_black_version_1_image_decodes_at_once():
    data = _version_1_black_file(8192, 8192)  # 67 megapixels in 24 bytes: a valid version-1 file
    assert len(data) < 30
    t0 = time.perf_counter()
    image = api.decompress(data, progress=deadline(5))
    assert image.shape == (8192, 8192) and not image.any()
    assert time.perf_counter() - t0 < 10


@pytest.mark.parametrize("width,height", HUGE)
def test_a_tiny_version_1_file_claiming_a_huge_size_is_refused_before_allocating(width, height):
    data = _version_1_black_file(width, height, checksum=0x1234)  # its pixels cannot be all black
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        with pytest.raises(DecodeError, match="checksum"):
            api.decompress(data, max_pixels=1 << 26, progress=deadline(5))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 10
    assert peak < 32 << 20  # rows of zeros, never the 67-megapixel image


def test_version_1_decoding_stops_where_the_coder_empties_and_stays_exact():
    data = open(os.path.join(GOLDEN, "urban_crop_black_tail_v1.nz"), "rb").read()  # rows 32.. black
    codec = zoo.codec_for_file(data)  # the weights that made it (retired since)
    calls = []
    out = codec.decode(data, progress=lambda done, total: calls.append((done, total)))
    expected = json.load(open(os.path.join(GOLDEN, "golden.json")))["urban_crop_black_tail_v1"]["pixels_md5"]
    assert hashlib.md5(out.tobytes()).hexdigest() == expected and not out[32:].any()
    total = calls[-1][1]
    assert calls[-1] == (total, total) and len(calls) < 0.9 * total  # the black rest was not decoded
    # the same stream decoded in full (recording every table) gives the same pixels
    assert np.array_equal(codec.decode(data, record=[]), out)


_MEMORY_PROBE = textwrap.dedent("""
    import resource, sys, time
    from pathlib import Path
    from neuralzip import zoo
    from neuralzip.core.container import Header
    golden, width, height = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    data = Path(golden).read_bytes()
    header, offset = Header.unpack(data)
    header.width, header.height = width, height
    crafted = header.pack() + data[offset:]
    end = time.monotonic() + 3
    class Stop(Exception):
        pass
    def progress(done, total):
        if time.monotonic() > end:
            raise Stop
    try:
        zoo.codec_for_file(crafted).decode(crafted, progress=progress, max_pixels=1 << 26)
    except Exception as exc:
        print(type(exc).__name__)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
""")


@pytest.mark.parametrize("width,height", [(1 << 24, 1), (1, 1 << 24), (8192, 8192)])
def test_decoder_memory_stays_a_small_multiple_of_the_image(width, height):
    """A real version-1 payload (a 3x5 golden file's, which has no bound to check) under a
    header claiming 16.7 or 67 megapixels: the decoder holds its planes, not per-step
    objects (peak RSS, not the image's bytes)."""
    golden = os.path.join(GOLDEN, "tiny_photo_v1.nz")
    r = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, golden, str(width), str(height)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    outcome, peak_mb = r.stdout.split()
    assert outcome in ("Stop", "DecodeError")
    # interpreter + uint8 and int16 planes + the kernel's per-step arrays (W + 4(H - 1) steps): a few
    # tens of bytes a pixel, where per-step Python objects took over 7 GB for 1x16777216
    assert int(peak_mb) < 200 + 32 * width * height / 1e6
