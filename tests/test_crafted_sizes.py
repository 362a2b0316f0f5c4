"""Issue 12, item 6: crafted .nz headers that claim far more pixels than their payload.

An empty ANS payload is a real file: every coded subpixel of an all-black image costs 0
bits at the end of the stream (the coder's state stays 0), so black images of any size
code to no payload words at all. Such a file decodes without running the model, and a
tiny file that lies about its size is refused from its checksum, before the image is
allocated. Files whose payload is not empty are decoded in bounded memory.
"""

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

from neuralzip import api
from neuralzip.core.codec import DecodeError
from neuralzip.core.container import Header

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _black_file(width: int, height: int, mode: str = "L", checksum: int | None = None) -> bytes:
    """The .nz file of an all-black image, built from a small real one with the size and
    checksum changed (the encoder writes exactly this: an all-black image has no payload)."""
    channels = {"L": 1, "RGB": 3}[mode]
    small = np.zeros((8, 8, channels) if channels > 1 else (8, 8), np.uint8)
    header, offset = Header.unpack(api.compress(small))
    assert header.payload_length == 0
    header.width, header.height = width, height
    if checksum is None:
        checksum = 0
        row = bytes(width * channels)
        for _ in range(height):
            checksum = zlib.crc32(row, checksum)
    header.checksum = checksum
    return header.pack()


def test_black_images_code_to_an_empty_payload(codec):
    for shape in [(64, 64), (1, 300), (300, 1), (40, 50, 3)]:
        data = api.compress(np.zeros(shape, np.uint8))
        assert Header.unpack(data)[0].payload_length == 0
        assert np.array_equal(api.decompress(data), np.zeros(shape, np.uint8))
    assert _black_file(8, 8) == api.compress(np.zeros((8, 8), np.uint8))
    alpha = np.random.default_rng(0).integers(0, 256, (20, 30), np.uint8)
    for channels in (1, 3):  # LA and RGBA: black colour, any alpha
        image = np.dstack([np.zeros((20, 30, channels), np.uint8), alpha])
        data = api.compress(image)
        assert Header.unpack(data)[0].payload_length == 0
        assert np.array_equal(api.decompress(data), image)
        lie = bytearray(data)
        lie[-1] ^= 1  # one alpha value changed: the checksum no longer holds
        with pytest.raises(Exception, match="checksum|corrupt"):
            api.decompress(bytes(lie))


def test_a_huge_black_image_decodes_at_once():
    data = _black_file(8192, 8192)  # 67 megapixels in 24 bytes: a valid file
    assert len(data) < 30
    t0 = time.perf_counter()
    image = api.decompress(data, progress=deadline(5))
    assert image.shape == (8192, 8192) and not image.any()
    assert time.perf_counter() - t0 < 10


@pytest.mark.parametrize("width,height", [(8192, 8192), (1 << 24, 1), (1, 1 << 24)])
def test_a_tiny_file_claiming_a_huge_size_is_refused_before_allocating(width, height):
    data = _black_file(width, height, checksum=0x1234)  # its pixels cannot be all black
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


def test_the_installed_command_refuses_the_lie_in_one_line(tmp_path):
    path = tmp_path / "lie.nz"
    path.write_bytes(_black_file(8192, 8192, "RGB", checksum=0xDEADBEEF))
    assert path.stat().st_size <= 30
    exe = shutil.which("neuralzip")
    cmd = [exe] if exe else [sys.executable, "-m", "neuralzip"]
    r = subprocess.run([*cmd, "decompress", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"neuralzip: error: {path}: decoded pixels fail the checksum: "
                                             "the file is corrupted"]
    assert not path.with_suffix(".png").exists()


def test_decoding_stops_where_the_coder_empties_and_stays_exact(codec, urban_crop):
    image = urban_crop.copy()
    image[32:] = 0  # the last pixels in decoding order are black: the coder empties early
    data = codec.encode(image)[0]
    calls = []
    out = codec.decode(data, progress=lambda done, total: calls.append((done, total)))
    assert np.array_equal(out, image)
    total = calls[-1][1]
    assert calls[-1] == (total, total) and len(calls) < 0.9 * total  # the black rest was not decoded
    # the same stream decoded in full (recording every table) gives the same pixels
    assert np.array_equal(codec.decode(data, record=[]), image)


_MEMORY_PROBE = textwrap.dedent("""
    import resource, sys, time
    from pathlib import Path
    from neuralzip.core.codec import Codec
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
        Codec.named("photo").decode(crafted, progress=progress, max_pixels=1 << 26)
    except Exception as exc:
        print(type(exc).__name__)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
""")


@pytest.mark.parametrize("width,height", [(1 << 24, 1), (1, 1 << 24), (8192, 8192)])
def test_decoder_memory_stays_a_small_multiple_of_the_image(width, height):
    """A real payload (a 3x5 golden file's) under a header claiming 16.7 or 67 megapixels:
    the decoder holds its planes, not per-step objects (peak RSS, not the image's bytes)."""
    golden = os.path.join(ROOT, "tests", "golden", "tiny_photo.nz")
    r = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, golden, str(width), str(height)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    outcome, peak_mb = r.stdout.split()
    assert outcome in ("Stop", "DecodeError")
    # interpreter + uint8 and int16 planes + the kernel's per-step arrays (W + 4(H - 1) steps): a few
    # tens of bytes a pixel, where per-step Python objects took over 7 GB for 1x16777216
    assert int(peak_mb) < 200 + 32 * width * height / 1e6
