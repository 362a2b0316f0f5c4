"""Issue 12, items 11 and 12: SIGTERM is handled like Ctrl-C, and no signal at any moment
prints a traceback.

Every test runs the installed ``neuralzip`` command. Moments that a signal would only hit
by chance are made certain with a ``sitecustomize`` module on ``PYTHONPATH`` (Python
imports it at start-up, before the command's code): it pauses the command at the moment
wanted (while importing numpy, or half way through writing an output file) and says so
with a marker file; the test then sends the signal.
"""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import cpu_seconds
from PIL import Image

from neuralzip import api

ROOT = Path(__file__).resolve().parent.parent
BUSY_CPU_S = 1.5  # CPU seconds a process has used once it is past start-up

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists() or os.name != "posix",
                                reason="POSIX signals; reads process state from /proc")

EXPECTED = {signal.SIGINT: ("neuralzip: error: interrupted\n", 130),
            signal.SIGTERM: ("neuralzip: error: terminated\n", 143)}


def _command() -> list[str]:
    exe = shutil.which("neuralzip")
    return [exe] if exe else [sys.executable, "-m", "neuralzip"]


def _children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in children.read_text().split()] if children.exists() else []


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (not gone, not a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _start(args: list[str], folder: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([*_command(), *args], cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        stdout, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc.returncode, stdout, stderr


def _paused_at(hook: str, tmp_path: Path) -> tuple[dict, Path]:
    """An environment whose sitecustomize runs ``hook`` (Python source that may use
    ``pause()``: create the marker file, then sleep), and the marker's path."""
    site = tmp_path / "site"
    site.mkdir()
    marker = tmp_path / "paused"
    (site / "sitecustomize.py").write_text(textwrap.dedent(f"""
        import time
        def pause():
            open({str(marker)!r}, "w").close()
            time.sleep(30)
    """) + textwrap.dedent(hook))
    return {**os.environ, "PYTHONPATH": str(site)}, marker


def _wait_for(marker: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, f"ended before pausing: {proc.communicate()}"
        assert time.monotonic() < deadline, "never paused"
        time.sleep(0.02)


# pauses half way through writing an output's temporary file
PAUSE_WRITING_PART = """
    import pathlib
    _write_bytes = pathlib.Path.write_bytes
    def write_bytes(self, data):
        if self.name.endswith(".part"):
            with self.open("wb") as f:
                f.write(data[: len(data) // 2])
                f.flush()
                pause()
                f.write(data[len(data) // 2:])
            return len(data)
        return _write_bytes(self, data)
    pathlib.Path.write_bytes = write_bytes
"""


@pytest.fixture(scope="module")
def large_photo(sample):
    return np.tile(sample, (8, 8, 1))  # 1920x1280: encoding takes seconds


# -- 11. SIGTERM -----------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_an_output_is_written_leaves_no_part_file(tmp_path, signum):
    """Paused half way through writing the output's temporary file: the temporary file is
    removed, nothing is published, one line."""
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 50, 3), np.uint8)).save(tmp_path / "a.png")
    env, marker = _paused_at(PAUSE_WRITING_PART, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(tmp_path / "a.png", work)
    proc = _start(["compress", "a.png"], work, env)
    _wait_for(marker, proc)
    assert any(p.name.endswith(".part") for p in work.iterdir())  # the moment is the one wanted
    proc.send_signal(signum)
    code, stdout, stderr = _finish(proc)
    assert (stderr, code) == EXPECTED[signum]
    assert sorted(p.name for p in work.iterdir()) == ["a.png"]  # no .part, no a.nz


def test_sigterm_to_the_main_process_stops_its_workers_quietly(tmp_path, large_photo):
    """``kill PID`` (the main process only, as a service manager or ``timeout`` sends it)
    with ``-j 2``: the workers are stopped, not left coding for a parent that is gone
    (they printed BrokenPipe tracebacks when they finished); one line; nothing written."""
    Image.fromarray(large_photo).save(tmp_path / "a.png")
    Image.fromarray(large_photo[::-1]).save(tmp_path / "b.png")
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = _start(["compress", "a.png", "b.png", "--jobs", "2"], tmp_path)
    deadline = time.monotonic() + 60
    while not any(cpu_seconds(pid) > BUSY_CPU_S for pid in _children(proc.pid)):
        assert proc.poll() is None, f"finished before the signal: {proc.communicate()}"
        assert time.monotonic() < deadline, "never got busy"
        time.sleep(0.05)
    workers = _children(proc.pid)
    assert len(workers) >= 2
    proc.send_signal(signal.SIGTERM)
    code, stdout, stderr = _finish(proc)
    assert (stderr, code) == EXPECTED[signal.SIGTERM]
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    deadline = time.monotonic() + 5
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_alive, workers)), "worker processes outlived the command"


def test_an_ignored_sigint_stays_ignored(tmp_path):
    """``nohup``/``cmd &`` in a script start a command with SIGINT ignored: it keeps it so."""
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    env, marker = _paused_at("""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as if inherited ignored
    """ + PAUSE_WRITING_PART, tmp_path)
    proc = _start(["compress", "a.png"], tmp_path, env)
    _wait_for(marker, proc)
    proc.send_signal(signal.SIGINT)  # ignored: the pause (30 s) is cut short by SIGTERM instead
    time.sleep(0.3)
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    code, stdout, stderr = _finish(proc)
    assert (stderr, code) == EXPECTED[signal.SIGTERM]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "paused", "site"]


# -- 12. closed stdout; a signal while Python is still importing ------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_importing_prints_one_line(tmp_path, signum):
    """Paused while importing numpy (the command's heavy imports take half a second): one
    line, no KeyboardInterrupt traceback."""
    env, marker = _paused_at("""
        import builtins
        _import = builtins.__import__
        def __import__(name, *args, **kwargs):
            if name == "numpy":
                builtins.__import__ = _import
                pause()
            return _import(name, *args, **kwargs)
        builtins.__import__ = __import__
    """, tmp_path)
    proc = _start(["--version"], tmp_path, env)
    _wait_for(marker, proc)
    proc.send_signal(signum)
    code, stdout, stderr = _finish(proc)
    assert (stderr, code) == EXPECTED[signum]
    assert stdout == ""


@pytest.mark.slow
def test_signals_at_any_moment_of_a_short_run_print_no_traceback(tmp_path):
    """SIGINT at a spread of moments from the end of Python's own start-up (site-packages'
    .pth files, where the command has no say) to the end of a short compress: each run
    ends normally or with the one line, never a traceback or a leftover file."""
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (30, 30, 3), np.uint8)).save(tmp_path / "a.png")
    # the marker holds the pid of the Python that wrote it: pyenv's shim may run others first
    env, marker = _paused_at(f"import os\nopen({str(tmp_path / 'started')!r}, 'w').write(str(os.getpid()))\n",
                             tmp_path)
    started = tmp_path / "started"
    for i, delay in enumerate(np.linspace(0.005, 1.0, 16)):
        started.unlink(missing_ok=True)
        work = tmp_path / f"run{i}"
        work.mkdir()
        shutil.copy(tmp_path / "a.png", work)
        proc = _start(["compress", "a.png", "-q"], work, env)
        deadline = time.monotonic() + 60
        while not (started.exists() and started.read_text() == str(proc.pid)):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.005)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        code, stdout, stderr = _finish(proc)
        assert "Traceback" not in stderr, f"SIGINT after {delay:.3f} s:\n{stderr}"
        if code == 0:
            assert stderr == "" and (work / "a.nz").exists()
        else:
            assert (stderr, code) == EXPECTED[signal.SIGINT], f"SIGINT after {delay:.3f} s"
            assert sorted(p.name for p in work.iterdir()) == ["a.png"]


def _closed_stdout() -> None:
    os.close(1)


@pytest.mark.parametrize("command", ["compress", "decompress"])
def test_a_closed_stdout_is_one_error_line(tmp_path, command):
    """``neuralzip compress - < x.png >&-``: one line and a non-zero exit (it was an
    AttributeError traceback)."""
    image = np.random.default_rng(3).integers(0, 256, (20, 20, 3), np.uint8)
    source = tmp_path / ("x.png" if command == "compress" else "x.nz")
    if command == "compress":
        Image.fromarray(image).save(source)
    else:
        source.write_bytes(api.compress(image))
    with source.open("rb") as stdin:
        r = subprocess.run([*_command(), command, "-"], stdin=stdin, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, timeout=60, preexec_fn=_closed_stdout)
    assert r.returncode == 1
    assert r.stderr == "neuralzip: error: <stdin>: cannot write to standard output: it is closed\n"
