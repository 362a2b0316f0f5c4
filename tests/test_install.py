"""What a user gets from the README's install: the benchmark's comparison codecs and plots,
and one-line messages (never tracebacks) where an optional module is missing anyway.

The fast tests hide modules in this process (``sys.modules[name] = None``); the slow one
builds fresh virtual environments (no system site-packages) from the README's install
command and from a built wheel, and runs the installed ``neuralzip`` command there.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from neuralzip.bench import report, suite
from neuralzip.bench.runner import collect
from neuralzip.cli import main

ROOT = Path(__file__).resolve().parent.parent
TRAIN_HINT = "pip install 'neuralzip[train]'"
CPU_HINT = "pip install torch==2.13.0"


def _tiny_images(folder: Path) -> Path:
    """Two 16x16 RGB PNGs: smooth gradients plus a little noise."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(15)
    y, x = np.mgrid[:16, :16]
    for i in range(2):
        base = np.stack([x * 8 + i * 20, y * 8, (x + y) * 4 + 30 * i], axis=-1)
        image = np.clip(base + rng.integers(-6, 7, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"tiny{i}.png")
    return folder


# --- a minimal install, simulated in this process --------------------------------------


def test_benchmark_without_imagecodecs_or_matplotlib_says_so_before_coding(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imagecodecs", None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    real_run = suite.run

    def run(*args, **kwargs):
        print("CODING STARTS", file=sys.stderr)
        return real_run(*args, **kwargs)

    monkeypatch.setattr(suite, "run", run)
    images, out = _tiny_images(tmp_path / "imgs"), tmp_path / "out"
    r = CliRunner().invoke(main, ["benchmark", str(images), "--codecs", "png,webp-*", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output
    notes = [line for line in r.stderr.splitlines() if line.startswith("note:")]
    assert notes == [
        "note: skipping codecs webp-m6, webp-m0: the imagecodecs package is not installed "
        "(pip install 'neuralzip[bench]')",
        "note: drawing no plots (results.json and results.md only): matplotlib is not installed "
        "(pip install 'neuralzip[bench]')",
    ]
    assert all(r.output.index(note) < r.output.index("CODING STARTS") for note in notes)
    results = json.loads((out / "results.json").read_text())
    assert {rec["codec"] for rec in results["records"]} == {"png"}
    assert set(results["skipped"]) == {"webp-m6", "webp-m0"}
    assert (out / "results.md").exists() and not list(out.glob("*.png"))


def test_results_json_is_written_before_plotting(tmp_path, monkeypatch):
    def broken_plots(*args, **kwargs):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(suite, "plots", broken_plots)
    images = collect([_tiny_images(tmp_path / "imgs")])
    codecs, _ = suite.select(["png"])
    with pytest.raises(RuntimeError, match="plotting failed"):
        suite.benchmark(images, codecs, tmp_path / "out", title="tiny")
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(results["records"]) == 2 and all(rec["exact"] for rec in results["records"])


def test_plots_missing_names_matplotlib(monkeypatch):
    assert report.plots_missing() is None  # the test environment has it
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert "matplotlib is not installed" in report.plots_missing()


def test_train_without_torch_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    images = _tiny_images(tmp_path / "imgs")
    r = CliRunner().invoke(main, ["train", str(images), "--out", str(tmp_path / "w.npz")])
    assert r.exit_code != 0
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("neuralzip: error: ")
    assert TRAIN_HINT in lines[0] and CPU_HINT in lines[0]
    assert not (tmp_path / "w.npz").exists()


# --- fresh virtual environments -------------------------------------------------------


def readme_install_command() -> list[str]:
    """The pip command that starts the README's first command under ``## Set up``."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Set up", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    first = block.strip().split("&&")[0].strip()
    assert first.startswith("pip install "), first
    return [arg.strip("'\"") for arg in first.split()[2:]]


def _copy_checkout(dest: Path) -> Path:
    """The source files a user's checkout has (tracked, and new files not ignored), without
    this checkout's build outputs: the install must build the kernel itself."""
    listed = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    assert not list((dest / "neuralzip").rglob("*.so"))
    return dest


def _env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


def _run(args: list, cwd: Path, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(list(map(str, args)), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"{result.args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
@pytest.mark.parametrize("route", ["readme", "wheel"])
def test_fresh_install_benchmarks_webp_jpegxl_with_plots_and_train_says_what_to_install(route, tmp_path):
    source = _copy_checkout(tmp_path / "src")
    venv = tmp_path / "venv"
    _ok(_run([sys.executable, "-m", "venv", venv], tmp_path, dict(os.environ)))
    env, python = _env(venv), venv / "bin" / "python"
    pip = [python, "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    if route == "readme":
        _ok(_run([*pip, *readme_install_command()], source, env))
    else:
        _ok(_run([python, "-m", "pip", "--disable-pip-version-check", "wheel", "--quiet", "--no-deps",
                  "-w", tmp_path / "dist", source], tmp_path, env))
        (wheel,) = (tmp_path / "dist").glob("neuralzip-*.whl")
        _ok(_run([*pip, wheel], tmp_path, env))
    where = _ok(_run([python, "-c", "import neuralzip; print(neuralzip.__file__)"], tmp_path, env)).stdout
    assert Path(where.strip()).is_relative_to(source if route == "readme" else venv)
    assert _run([python, "-c", "import torch"], tmp_path, env).returncode != 0, "torch must not come with the install"

    neuralzip = venv / "bin" / "neuralzip"
    images, out = _tiny_images(tmp_path / "imgs"), tmp_path / "out"
    codecs = ["neuralzip-photo", "png", "webp-m6", "jpegxl-e7"]
    r = _ok(_run([neuralzip, "benchmark", images, "--codecs", ",".join(codecs), "--out", out], tmp_path, env))
    assert "note:" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["skipped"] == {}
    for codec in codecs:
        records = [rec for rec in results["records"] if rec["codec"] == codec]
        assert len(records) == 2 and all(rec["exact"] and rec["bpsp"] > 0 for rec in records), records
        assert results["totals"][codec]["bpsp"] > 0
    assert "webp-m6" in r.stdout and "jpegxl-e7" in r.stdout  # the totals table printed
    for plot in report.PLOTS.values():
        with Image.open(out / plot) as im:
            assert im.format == "PNG" and im.width > 100

    r = _run([neuralzip, "train", images, "--out", tmp_path / "w.npz"], tmp_path, env)
    assert r.returncode != 0 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("neuralzip: error: ") and TRAIN_HINT in lines[0] and CPU_HINT in lines[0]
