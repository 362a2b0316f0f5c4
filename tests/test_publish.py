"""Issue 12, items 9 and 10: outputs are published without clobbering, and symbolic links
at the output path are existing outputs (refused without --force; replaced, never written
through, with it)."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from neuralzip import api, atomic
from neuralzip.atomic import OutputExists, atomic_output, write_atomically
from neuralzip.cli import main


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(9).integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(path)
    return path


# -- 9. no clobber -----------------------------------------------------------------------------
def test_the_later_of_two_overlapping_writers_fails_and_replaces_nothing(tmp_path):
    out = tmp_path / "out.nz"
    with pytest.raises(OutputExists):
        with atomic_output(out, overwrite=False) as first:
            with atomic_output(out, overwrite=False) as second:  # both passed the existence check
                second.write_bytes(b"second")
            first.write_bytes(b"first")  # the second published first: this one must not replace it
    assert out.read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nz"]  # no temp file left


def test_a_file_that_appears_meanwhile_is_not_replaced(tmp_path):
    out = tmp_path / "out.nz"
    with pytest.raises(OutputExists):
        with atomic_output(out, overwrite=False) as tmp:
            tmp.write_bytes(b"mine")
            out.write_bytes(b"theirs")  # another process, between the check and the publish
    assert out.read_bytes() == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nz"]


def test_without_hard_links_an_exclusive_create_publishes(tmp_path, monkeypatch):
    def no_links(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")  # as on FAT
    monkeypatch.setattr(atomic.os, "link", no_links)
    out = tmp_path / "out.nz"
    write_atomically(out, b"data", overwrite=False)
    assert out.read_bytes() == b"data"
    with pytest.raises(OutputExists):
        write_atomically(out, b"other", overwrite=False)
    assert out.read_bytes() == b"data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nz"]


def test_concurrent_commands_writing_one_output_exactly_one_wins(png, tmp_path):
    exe = shutil.which("neuralzip")
    cmd = [exe] if exe else [sys.executable, "-m", "neuralzip"]
    out = tmp_path / "same.nz"
    procs = [subprocess.Popen([*cmd, "compress", str(png), "-o", str(out), "-q"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert sum(code == 0 for code, _ in results) == 1, results
    assert all("already exists" in err for code, err in results if code)
    assert np.array_equal(api.decompress(out.read_bytes()), np.asarray(Image.open(png)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "same.nz"]


# -- 10. symbolic links at the output path --------------------------------------------------------
def test_a_dangling_symlink_is_an_existing_output(png, tmp_path):
    link = png.with_suffix(".nz")
    link.symlink_to(tmp_path / "nowhere.nz")
    r = _run("compress", png)
    assert r.exit_code != 0 and "already exists" in r.output
    assert link.is_symlink() and not (tmp_path / "nowhere.nz").exists()


def test_a_symlink_to_a_file_is_refused_without_force(png, tmp_path):
    target = tmp_path / "precious.bin"
    target.write_bytes(b"precious")
    link = png.with_suffix(".nz")
    link.symlink_to(target)
    assert _run("compress", png).exit_code != 0
    assert link.is_symlink() and target.read_bytes() == b"precious"


@pytest.mark.parametrize("dangling", [False, True])
def test_with_force_the_link_is_replaced_and_its_target_untouched(png, tmp_path, dangling):
    target = tmp_path / "elsewhere" / "precious.bin"
    target.parent.mkdir()
    if not dangling:
        target.write_bytes(b"precious")
    link = png.with_suffix(".nz")
    link.symlink_to(target)
    r = _run("compress", png, "--force")
    assert r.exit_code == 0, r.output
    assert not link.is_symlink() and link.is_file()
    assert np.array_equal(api.decompress(link.read_bytes()), np.asarray(Image.open(png)))
    if dangling:
        assert not target.exists()
    else:
        assert target.read_bytes() == b"precious"
