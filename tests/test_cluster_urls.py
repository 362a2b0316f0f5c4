"""``--cluster`` with fsspec URLs for inputs and ``--out-dir``: ``file://`` URLs, a real
fsspec backend that every worker process sees (``memory://`` lives in one process)."""

import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from neuralzip import urls
from neuralzip.cli import main

pytest.importorskip("distributed")
pytest.importorskip("fsspec")


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _photos(folder: Path, image: np.ndarray, n: int) -> dict[str, np.ndarray]:
    pixels = {}
    for i in range(n):
        name = f"sub/p{i}" if i % 2 else f"p{i}"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        crop = image[i * 3 : i * 3 + 20, i * 5 : i * 5 + 28]
        Image.fromarray(crop).save(folder / f"{name}.png")
        pixels[name] = crop
    return pixels


def test_file_urls_round_trip_and_no_clobbering(tmp_path, urban_crop):
    pixels = _photos(tmp_path / "src", urban_crop, 4)
    (tmp_path / "src" / "bad.png").write_bytes(b"not a png")
    src, nz, back = (f"file://{tmp_path / name}" for name in ("src", "nz", "back"))
    r = _run("compress", "-r", src, "--out-dir", nz, "--cluster", "local", "-j", "2")
    assert r.exit_code == 1
    errors = r.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"neuralzip: error: {src}/bad.png: not a readable image")
    assert r.stdout.strip().splitlines()[-1].startswith("4 files, ") and "1 failed" in r.stdout
    (tmp_path / "src" / "bad.png").unlink()

    before = {p: p.read_bytes() for p in (tmp_path / "nz").rglob("*.nz")}
    assert len(before) == 4
    r = _run("compress", "-r", src, "--out-dir", nz, "--cluster", "local", "-q")
    assert r.exit_code == 1
    errors = r.stderr.strip().splitlines()
    assert len(errors) == 4 and all("already exists (use --force to overwrite)" in e for e in errors)
    assert {p: p.read_bytes() for p in (tmp_path / "nz").rglob("*.nz")} == before

    r = _run("decompress", "-r", nz, "--out-dir", back, "--cluster", "local", "-q")
    assert r.exit_code == 0, r.output
    for name, crop in pixels.items():
        assert np.array_equal(np.asarray(Image.open(tmp_path / "back" / f"{name}.png")), crop)
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".part")]


def test_urls_need_the_cluster_and_fsspec(tmp_path, urban_crop, monkeypatch):
    Image.fromarray(urban_crop[:8, :8]).save(tmp_path / "a.png")
    r = _run("compress", f"file://{tmp_path / 'a.png'}")
    assert r.exit_code == 1 and r.stderr.strip() == f"neuralzip: error: {urls.URL_NEEDS_CLUSTER}"
    monkeypatch.setitem(sys.modules, "fsspec", None)  # as if fsspec were not installed
    r = _run("compress", tmp_path / "a.png", "--out-dir", f"file://{tmp_path / 'nz'}", "--cluster", "local")
    assert r.exit_code == 1
    assert r.stderr.strip() == f"neuralzip: error: {urls.FSSPEC_HINT}" and "neuralzip[cluster]" in r.stderr
    assert not list(tmp_path.rglob("*.nz"))


def test_planning_urls_keeps_relative_paths(tmp_path):
    (tmp_path / "d" / "e").mkdir(parents=True)
    for name in ("d/x.png", "d/e/y.png", "d/.hidden.png", "d/z.txt"):
        (tmp_path / name).write_bytes(b"12345")
    from neuralzip.batch import plan

    jobs, errors = plan([f"file://{tmp_path / 'd'}"], {".png"}, ".nz", None, "s3://bucket/out", True)
    assert errors == []
    assert [(str(j.source), str(j.target)) for j in jobs] == [
        (f"file://{tmp_path}/d/e/y.png", "s3://bucket/out/e/y.nz"),
        (f"file://{tmp_path}/d/x.png", "s3://bucket/out/x.nz")]
    assert jobs[0].source.stat().st_size == 5
    jobs, errors = plan([f"file://{tmp_path / 'd'}"], {".png"}, ".nz", None, None, False)
    assert [str(j.target) for j in jobs] == [f"file://{tmp_path}/d/x.nz"]
