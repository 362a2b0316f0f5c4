"""Issue 12, "Done means": the decoder fuzzed with crafted headers.

Where ``test_fuzz`` damages real files at random, these headers are written on purpose,
through the container's own writer or by rewriting the fixed leading bytes of real files
of every kind (RGB, L, RGBA, LA, per-image LS, a stored and a packed payload, a metadata
block, a version-2 file as that version wrote it and a version-3 one):

- sizes up to the default ``--max-pixels`` (2^26) over a real payload, an empty payload
  and a stored one, and sizes just over it;
- short payloads: the real payload cut to a few bytes, the header saying so;
- the version, flags, mode and precision bytes rewritten (every combination of the known
  flags, each unknown flag, versions and modes around the known ones).

Every case must end in FormatError or DecodeError with a one-line message, within
seconds and with memory bounded by the image it claims, or in exactly the original
image. The installed command gives one error line for a few of them.
"""

import dataclasses
import importlib
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from helpers import TookTooLong, deadline

import neuralzip

# the codec module, wherever the package keeps it, and the header
codec_module = importlib.import_module(neuralzip.DecodeError.__module__)
Header = importlib.import_module("neuralzip.core.container").Header

ROOT = Path(__file__).resolve().parent.parent
MAX_PIXELS = 1 << 26  # the command's default --max-pixels
SECONDS = 5.0  # a case that takes longer fails (its decoding is stopped there)
BASE_MEMORY = 48 << 20  # bytes any case may use (tables, a small image's decoding) ...
BYTES_A_PIXEL = 16  # ... plus this much a pixel of the image claimed (planes, checksum rows)
HUGE_SIZES = [(8192, 8192), (1 << 24, 1), (1, 1 << 24), (1 << 16, 1 << 10)]
VERSIONS = [0, 1, 2, 3, 4, 127, 255]
FLAGS = [*range(8), 8, 16, 32, 64, 128, 255]  # every combination of the known bits, each unknown one
MODES = [0, 1, 2, 3, 4, 5, 255]
PRECISIONS = [0, 1, 8, 16, 23, 25, 31, 32, 64, 255]


@pytest.fixture(scope="module")
def originals(urban_crop):
    """name -> (image, .nz bytes): small real files of every kind a header can describe."""
    rgb = urban_crop[8:20, 16:32]
    grey = urban_crop[30:38, 40:52, 1]
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    alpha[:, 4:] = 255
    alpha[3, 6] = 77
    images = {"RGB": rgb, "L": grey, "RGBA": np.dstack([rgb, alpha]),
              "LA": np.dstack([grey, np.full(grey.shape, 200, np.uint8)]),
              "stored": np.random.default_rng(12).integers(0, 256, (6, 7, 3), dtype=np.uint8),
              "packed": np.tile(np.array([[[250, 250, 250]], [[0, 60, 200]]], np.uint8), (6, 20, 1))}
    files = {name: (image, neuralzip.compress(image)) for name, image in images.items()}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(codec_module, "IMAGE_LS_MIN_PIXELS", 1)
        files["RGB+LS"] = rgb, neuralzip.compress(rgb)  # 12x16: the ANS file, coefficients and all, beats raw
    for name, golden in (("metadata", "urban_crop_metadata_v3"), ("metadata v2", "urban_crop_metadata_v2")):
        data = (ROOT / "tests" / "golden" / f"{golden}.nz").read_bytes()
        files[name] = neuralzip.decompress(data), data
    files["stored v3"] = files["stored"][0], _with(files["stored"][1], version=3)  # name and hash, not a number
    header = {name: Header.unpack(data)[0] for name, (_, data) in files.items()}
    assert header["RGB+LS"].coefs is not None and header["RGB"].coefs is None
    assert not header["RGB"].stored
    assert getattr(header["stored"], "stored", True)  # a stored payload, where the format has them
    assert getattr(header["packed"], "packed", True)  # a packed one
    return files


def _with(data: bytes, **fields) -> bytes:
    """``data`` with header fields replaced (the payload kept unless ``payload`` is given)."""
    header, offset = Header.unpack(data)
    payload = fields.pop("payload", data[offset:])
    if header.version >= 4 and {"precision", "model_name", "model_sha"} & fields.keys():
        fields["version"] = 3  # versions 4 and 5 hold only registered models at precision 24
    return dataclasses.replace(header, **fields).pack() + payload


def _byte(data: bytes, at: int, value: int) -> bytes:
    return data[:at] + bytes([value]) + data[at + 1:]


def _cases(originals) -> list[tuple[str, bytes, np.ndarray, int]]:
    """(name, crafted bytes, the original image, pixels the header claims)."""
    cases = []
    for name, (image, data) in originals.items():
        header, offset = Header.unpack(data)
        payload = data[offset:]
        pixels = header.width * header.height
        for width, height in HUGE_SIZES + [(8193, 8192), (1 << 24, 5)]:
            cases.append((f"{name} {width}x{height}", _with(data, width=width, height=height), image,
                          width * height))
            if not (header.stored or header.packed):  # an empty payload: an all-black image's
                cases.append((f"{name} {width}x{height} empty", _with(data, width=width, height=height,
                              payload_length=0, payload=b""), image, width * height))
        for keep in sorted({0, 1, 2, 3, 4, 7, len(payload) // 2, len(payload) - 1}):
            if 0 <= keep < len(payload):
                cases.append((f"{name} payload cut to {keep} bytes",
                              _with(data, payload_length=keep, payload=payload[:keep]), image, pixels))
        for length in (len(payload) + 1, (1 << 35) - 1):  # a header promising more than there is
            cases.append((f"{name} payload length {length}", _with(data, payload_length=length), image, pixels))
        for at, what, values in ((2, "version", VERSIONS), (3, "flags", FLAGS), (4, "mode", MODES)):
            for value in values:
                if value != data[at]:
                    cases.append((f"{name} {what} {value}", _byte(data, at, value), image, pixels))
        for precision in PRECISIONS:
            if precision != header.precision:
                cases.append((f"{name} precision {precision}", _with(data, precision=precision), image, pixels))
    return cases


def _outcome(data: bytes, image: np.ndarray, pixels: int, seconds: float = SECONDS) -> str:
    """'FormatError', 'DecodeError' or 'exact image'; fails on anything else, on a case
    slower than SECONDS or one whose memory is not bounded by its image."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        decoded = neuralzip.decompress(data, max_pixels=MAX_PIXELS, progress=deadline(seconds))
    except (neuralzip.FormatError, neuralzip.DecodeError) as exc:
        message = str(exc)
        assert message and "\n" not in message, f"not a one-line message: {message!r}"
        outcome = "FormatError" if isinstance(exc, neuralzip.FormatError) else "DecodeError"
    else:
        assert decoded.shape == image.shape and np.array_equal(decoded, image), "decoded to other pixels"
        outcome = "exact image"
    finally:
        took = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert took < seconds, f"took {took:.1f} s"
    assert peak < BASE_MEMORY + BYTES_A_PIXEL * min(pixels, MAX_PIXELS), f"peak {peak >> 20} MiB"
    return outcome


# Huge sizes over a version-1 or -2 ANS payload: that payload has no lower bound (an empty
# coder codes symbol 0 for free), so the decoder runs the model until the coder is empty,
# which a payload written for another image need not ever be, and the lie is only found
# at the checksum (a 30-byte file claiming 8192x8192: ~170 s). ``--max-pixels`` bounds
# it; version 3 refuses the same lie at once (the xfail test below keeps this in view).
SLOW_LIES = {f"metadata v2 {w}x{h}" for w, h in HUGE_SIZES}


def test_crafted_headers_end_in_a_clear_error_or_the_exact_image(originals):
    outcomes: dict[str, int] = {}
    slow_cases = []
    for name, data, image, pixels in _cases(originals):
        if name in SLOW_LIES:
            slow_cases.append(name)
            continue
        try:
            outcome = _outcome(data, image, pixels)
        except TookTooLong as exc:
            pytest.fail(f"{name}: {exc}")
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
        except Exception as exc:
            pytest.fail(f"{name}: {type(exc).__name__}: {exc}")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    print(f"\ncrafted headers: {outcomes}; left to the slow test: {len(slow_cases)}")
    assert outcomes.get("FormatError") and outcomes.get("DecodeError")
    assert outcomes.get("exact image")  # e.g. a stored version-3 file relabelled version 2


@pytest.mark.parametrize("name", ["RGB", "L", "RGBA", "LA", "RGB+LS", "metadata"])
@pytest.mark.parametrize("size", ["8192x8192", "1x16777216", "16777216x1"])
def test_a_huge_size_over_a_real_payload_is_refused_within_seconds(originals, name, size):
    width, height = map(int, size.split("x"))
    image, data = originals[name]
    outcome = _outcome(_with(data, width=width, height=height), image, width * height, seconds=2.0)
    assert outcome in ("FormatError", "DecodeError")  # RGBA, LA: the alpha block cannot hold the size


@pytest.mark.xfail(strict=True, raises=TookTooLong,
                   reason="a version-2 payload has no lower bound: a huge size over it decodes every step "
                          "before the checksum refuses it (bounded by --max-pixels only)")
def test_a_huge_size_over_a_version_2_payload_is_refused_within_seconds(originals):
    image, data = originals["metadata v2"]
    _outcome(_with(data, width=8192, height=8192), image, 8192 * 8192, seconds=2.0)


def _command() -> list[str]:
    exe = shutil.which("neuralzip")
    return [exe] if exe else [sys.executable, "-m", "neuralzip"]


def test_the_installed_command_refuses_crafted_headers_in_one_line(tmp_path, originals):
    """A few of the cases through ``decompress`` and ``info``: one error line, no output."""
    _, rgb = originals["RGB"]
    _, stored = originals["stored"]
    crafted = {
        "version.nz": _byte(rgb, 2, 9),
        "flags.nz": _byte(rgb, 3, 0x80),
        "huge_empty.nz": _with(rgb, width=8192, height=8192, payload_length=0, payload=b""),
        "over_limit.nz": _with(rgb, width=8193, height=8192),
        "short.nz": _with(rgb, payload_length=3, payload=rgb[Header.unpack(rgb)[1]:][:3]),
        "stored_lie.nz": _with(stored, width=8192, height=8192),
    }
    for name, data in crafted.items():
        (tmp_path / name).write_bytes(data)
    names = sorted(crafted)
    r = subprocess.run([*_command(), "decompress", *names, "-q"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == len(names), r.stderr
    assert all(line.startswith(f"neuralzip: error: {name}: ") for line, name in zip(sorted(lines), names))
    assert not list(tmp_path.glob("*.png"))
    r = subprocess.run([*_command(), "info", "version.nz", "flags.nz", "over_limit.nz"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert [line.split(":")[2].strip() for line in r.stderr.splitlines()] == ["version.nz", "flags.nz"], r.stderr
