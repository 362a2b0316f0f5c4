"""CLI through click's CliRunner, plus the installed ``neuralzip`` command."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from neuralzip.cli import main


@pytest.fixture
def png(tmp_path, urban_crop):
    path = tmp_path / "a.png"
    Image.fromarray(urban_crop).save(path)
    return path


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_compress_decompress_round_trip(png, urban_crop):
    r = _run("compress", png)
    assert r.exit_code == 0, r.output
    assert "bpsp" in r.output and "model NLL" in r.output
    nz = png.with_suffix(".nz")
    png.unlink()
    r = _run("decompress", nz)
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.asarray(Image.open(png)), urban_crop)


def test_refuses_to_overwrite_without_force(png):
    nz = png.with_suffix(".nz")
    nz.write_bytes(b"precious")
    r = _run("compress", png)
    assert r.exit_code != 0 and "already exists" in r.output
    assert nz.read_bytes() == b"precious"
    assert _run("compress", png, "--force").exit_code == 0
    assert nz.read_bytes() != b"precious"


def test_output_option(png, tmp_path):
    out = tmp_path / "sub.nz"
    assert _run("compress", png, "-o", out).exit_code == 0 and out.exists()
    dec = tmp_path / "b.png"
    assert _run("decompress", out, "-o", dec).exit_code == 0 and dec.exists()


def _assert_clean_failure(result, tmp_path, before, text):
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("neuralzip: error:") and text in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output, no temp file


@pytest.mark.parametrize(
    "content,text",
    [
        (None, "no such file"),
        (b"this is not an image", "not a readable image"),
    ],
)
def test_bad_compress_input(tmp_path, content, text):
    src = tmp_path / "in.png"
    if content is not None:
        src.write_bytes(content)
    before = sorted(p.name for p in tmp_path.iterdir())
    _assert_clean_failure(_run("compress", src), tmp_path, before, text)


def test_unsupported_mode_is_named(tmp_path):
    src = tmp_path / "cmyk.tif"
    Image.new("CMYK", (4, 4)).save(src)
    before = sorted(p.name for p in tmp_path.iterdir())
    _assert_clean_failure(_run("compress", src), tmp_path, before, "CMYK")


@pytest.mark.parametrize("damage,text", [
    (lambda d: d[: len(d) // 2], "truncated"),
    (lambda d: b"XX" + d[2:], "not a neuralzip file"),
    (lambda d: d[:-3] + bytes([d[-3] ^ 4]) + d[-2:], "corrupted"),
])
def test_bad_nz_input(png, tmp_path, damage, text):
    assert _run("compress", png).exit_code == 0
    nz = png.with_suffix(".nz")
    nz.write_bytes(damage(nz.read_bytes()))
    png.unlink()
    before = sorted(p.name for p in tmp_path.iterdir())
    _assert_clean_failure(_run("decompress", nz), tmp_path, before, text)


def test_installed_command(png, tmp_path, urban_crop):
    exe = shutil.which("neuralzip")
    cmd = [exe] if exe else [sys.executable, "-m", "neuralzip"]
    subprocess.run(cmd + ["compress", str(png)], check=True, capture_output=True)
    out = tmp_path / "c.png"
    subprocess.run(cmd + ["decompress", str(png.with_suffix(".nz")), "-o", str(out)], check=True, capture_output=True)
    assert np.array_equal(np.asarray(Image.open(out)), urban_crop)
    bad = subprocess.run(cmd + ["decompress", str(tmp_path / "missing.nz")], capture_output=True, text=True)
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and "no such file" in bad.stderr
