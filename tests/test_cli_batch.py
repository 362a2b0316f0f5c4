"""The command line on many files, folders, pipes and worker processes, in every mode."""

import os
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from neuralzip.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


def _error_lines(result):
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.fixture
def pictures(urban_crop):
    """A small PIL image of every mode the CLI takes."""
    rgb = Image.fromarray(urban_crop[:18, :26])
    rgba = rgb.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(rgb.size))
    la = rgba.convert("LA")
    palette = rgb.quantize(8)
    palette.info["transparency"] = 3
    return {"RGB": rgb, "L": rgb.convert("L"), "RGBA": rgba, "LA": la, "P": palette}


def _pixels_as_shown(image):
    return np.asarray(image.convert("RGBA") if image.mode == "P" else image)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "P"])
def test_every_mode_round_trips(tmp_path, pictures, mode):
    src = tmp_path / "in.png"
    pictures[mode].save(src)
    assert _run("compress", src).exit_code == 0
    out = tmp_path / "out.png"
    r = _run("decompress", tmp_path / "in.nz", "-o", out)
    assert r.exit_code == 0, r.output
    with Image.open(out) as decoded:
        assert decoded.mode == {"P": "RGBA"}.get(mode, mode)
        assert np.array_equal(np.asarray(decoded), _pixels_as_shown(pictures[mode]))


@pytest.fixture
def tree(tmp_path, pictures):
    """a.png, d/g.png, d/sub/la.png, d/notes.txt."""
    (tmp_path / "d" / "sub").mkdir(parents=True)
    pictures["RGB"].save(tmp_path / "a.png")
    pictures["L"].save(tmp_path / "d" / "g.png")
    pictures["LA"].save(tmp_path / "d" / "sub" / "la.png")
    (tmp_path / "d" / "notes.txt").write_text("not an image")
    return tmp_path


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_files_and_folders_write_beside_their_inputs(tree):
    r = _run("compress", tree / "a.png", tree / "d", "--jobs", 1)
    assert r.exit_code == 0, r.output
    assert _files(tree) == ["a.nz", "a.png", "d/g.nz", "d/g.png", "d/notes.txt", "d/sub/la.png"]
    assert len(r.stdout.splitlines()) == 2 and "26x18 RGB," in r.stdout and "26x18 L," in r.stdout


def test_recursive_with_out_dir_keeps_the_folder_layout(tree):
    out = tree / "out"
    assert _run("compress", tree / "d", "-r", "--out-dir", out, "--jobs", 1).exit_code == 0
    assert _files(out) == ["g.nz", "sub/la.nz"]
    back = tree / "back"
    assert _run("decompress", out, "-r", "--out-dir", back, "--jobs", 1).exit_code == 0
    assert _files(back) == ["g.png", "sub/la.png"]
    for name in ("g.png", "sub/la.png"):
        with Image.open(tree / "d" / name) as a, Image.open(back / name) as b:
            assert a.mode == b.mode and np.array_equal(np.asarray(a), np.asarray(b))


def test_a_failing_file_is_reported_and_the_others_finish(tree):
    (tree / "bad.png").write_bytes(b"not an image")
    r = _run("compress", tree / "bad.png", tree / "a.png", tree / "missing.png", "--jobs", 1)
    assert r.exit_code == 1
    errors = _error_lines(r)
    assert len(errors) == 2 and all(line.startswith("neuralzip: error: ") for line in errors)
    assert any("bad.png: not a readable image" in line for line in errors)
    assert any("missing.png: no such file" in line for line in errors)
    assert (tree / "a.nz").exists() and not (tree / "bad.nz").exists()
    assert "Traceback" not in r.output


def test_existing_outputs_fail_alone_without_force(tree):
    (tree / "a.nz").write_bytes(b"precious")
    r = _run("compress", tree / "a.png", tree / "d", "--jobs", 1)
    assert r.exit_code == 1 and len(_error_lines(r)) == 1 and "already exists" in r.stderr
    assert (tree / "a.nz").read_bytes() == b"precious" and (tree / "d" / "g.nz").exists()


def test_two_inputs_with_one_output_name_are_refused(tree, pictures):
    pictures["RGB"].save(tree / "a.bmp")
    r = _run("compress", tree / "a.png", tree / "a.bmp", "--jobs", 1)
    assert r.exit_code == 1 and "is also the output of" in r.stderr and (tree / "a.nz").exists()


def test_output_option_takes_a_single_input(tree):
    r = _run("compress", tree / "d", "-r", "-o", tree / "x.nz")
    assert r.exit_code == 1 and _error_lines(r) == ["neuralzip: error: -o/--output takes a single input "
                                                     "(use --out-dir for several)"]


def test_stdin_to_stdout(tree):
    png = (tree / "a.png").read_bytes()
    compressed = _run("compress", "-", input=png)
    assert compressed.exit_code == 0 and compressed.stdout_bytes[:2] == b"NZ"
    assert "<stdin> -> <stdout>" in compressed.stderr  # the summary keeps off the data stream
    decoded = _run("decompress", "-", input=compressed.stdout_bytes)
    assert decoded.exit_code == 0
    with Image.open(tree / "a.png") as a, Image.open(BytesIO(decoded.stdout_bytes)) as b:
        assert np.array_equal(np.asarray(b), np.asarray(a))


def test_info_prints_the_header(tree):
    assert _run("compress", tree / "d" / "sub" / "la.png").exit_code == 0
    r = _run("info", tree / "d" / "sub" / "la.nz", tree / "none.nz")
    assert r.exit_code == 1 and _error_lines(r) == [f"neuralzip: error: {tree / 'none.nz'}: no such file"]
    for field in ("model: photo", "mode: LA", "size: 26x18", "alpha: deflate", "payload:", "checksum:"):
        assert field in r.stdout


def test_max_pixels_refuses_a_larger_image(tree):
    assert _run("compress", tree / "a.png").exit_code == 0
    before = _files(tree)
    r = _run("decompress", tree / "a.nz", "-o", tree / "big.png", "--max-pixels", 400)
    assert r.exit_code == 1 and "exceeds the limit of 400 pixels" in r.stderr
    assert _files(tree) == before


def test_parallel_jobs_in_worker_processes(tree):
    """The real command with two worker processes: outputs, one error line, exit code."""
    (tree / "d" / "bad.png").write_bytes(b"not an image")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "neuralzip", "compress", str(tree / "d"), str(tree / "a.png"), "-r", "--jobs", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [f"neuralzip: error: {tree / 'd' / 'bad.png'}: not a readable image: "
                                     f"cannot identify image file '{tree / 'd' / 'bad.png'}'"]
    assert len(r.stdout.splitlines()) == 3
    for name in ("a.nz", "d/g.nz", "d/sub/la.nz"):
        assert (tree / name).exists()


@pytest.mark.parametrize("mode", ["1", "I;16", "I", "F", "CMYK"])
def test_uncodable_modes_are_refused_by_name(tmp_path, mode):
    src = tmp_path / "in.tif"
    Image.new(mode, (5, 4)).save(src)
    r = _run("compress", src)
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert _error_lines(r) == [f"neuralzip: error: {src}: unsupported image mode '{mode}': neuralzip codes "
                               "8-bit L, LA, RGB, RGBA and palette (P) images"]
    assert [p.name for p in tmp_path.iterdir()] == ["in.tif"]
