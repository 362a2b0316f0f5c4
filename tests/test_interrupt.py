"""Ctrl-C during compress or decompress: exit 130, one line on stderr, no output or
temporary file left. Runs the real command and sends SIGINT to its process group, as a
terminal does."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import cpu_seconds
from PIL import Image

import neuralzip

ROOT = Path(__file__).resolve().parent.parent
BUSY_CPU_S = 1.5  # CPU seconds a process has used once it is past start-up (imports take ~0.5 s)

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads CPU times from /proc")


def _process_tree(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [pid] + [int(c) for c in children.read_text().split()] if children.exists() else [pid]


def _ignores_sigint(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    ignored = int(next(line for line in status.splitlines() if line.startswith("SigIgn:")).split()[1], 16)
    return bool(ignored & (1 << (signal.SIGINT - 1)))


def _interrupt_when_busy(args: list[str], folder: Path) -> tuple[subprocess.CompletedProcess, list[bool]]:
    """Run ``neuralzip ARGS`` in ``folder``; once one of its processes is busy coding, send
    SIGINT to its process group. Returns the result and, for each child process then,
    whether it ignored SIGINT."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "neuralzip", *args], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while max(map(cpu_seconds, _process_tree(proc.pid))) < BUSY_CPU_S:
        assert proc.poll() is None, f"finished before the interrupt: {proc.communicate()}"
        assert time.monotonic() < deadline, "never got busy"
        time.sleep(0.05)
    children_ignore = [_ignores_sigint(pid) for pid in _process_tree(proc.pid)[1:]]
    os.killpg(proc.pid, signal.SIGINT)
    try:
        stdout, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr), children_ignore


def _assert_clean_interrupt(result: subprocess.CompletedProcess, folder: Path, before: list[str]) -> None:
    assert result.returncode == 130
    assert result.stderr == "neuralzip: error: interrupted\n"  # no traceback, no worker noise
    assert sorted(p.name for p in folder.iterdir()) == before  # no output, no temporary file


@pytest.fixture(scope="module")
def large_photo(sample):
    return np.tile(sample, (8, 8, 1))  # 1920x1280: encoding takes seconds


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_interrupted_compress_leaves_nothing(tmp_path, large_photo, jobs):
    Image.fromarray(large_photo).save(tmp_path / "a.png")
    Image.fromarray(large_photo[::-1]).save(tmp_path / "b.png")
    before = sorted(p.name for p in tmp_path.iterdir())
    result, children_ignore = _interrupt_when_busy(["compress", "a.png", "b.png", "--jobs", jobs], tmp_path)
    _assert_clean_interrupt(result, tmp_path, before)
    # worker processes leave Ctrl-C to the parent (which terminates them) from their start
    assert len(children_ignore) >= int(jobs) - 1 and all(children_ignore)


def test_interrupted_decompress_leaves_nothing(tmp_path, sample):
    # 60,000 x 4 photo strips: 240,000 decode steps; slight noise so that they are no exact
    # repeats (LZMA2 would pack those) and no noise either (that would be stored)
    noise = np.random.default_rng(0).integers(0, 3, (60_000, 4, 3), dtype=np.uint8)
    tall = np.tile(sample[:, :4], (375, 1, 1)) + noise
    neuralzip.save(tmp_path / "tall.nz", tall)
    before = sorted(p.name for p in tmp_path.iterdir())
    result, _ = _interrupt_when_busy(["decompress", "tall.nz"], tmp_path)
    _assert_clean_interrupt(result, tmp_path, before)
