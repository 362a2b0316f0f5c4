"""Wall time of ``neuralzip compress DIR --jobs N`` for N = 1 and 2 (a benchmark, not a test).

Copies the first COUNT images of a folder into a temporary folder, compresses it once per
N with the real command, checks that every N writes the same bytes, and writes a markdown
report.

    PYTHONPATH=. python benchmarks/jobs_scaling.py ../shared/data/train/bsds500 \\
        --out benchmarks/jobs_scaling.md --note "a training run used one core"
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def compress_folder(folder: Path, out_dir: Path, jobs: int) -> float:
    """Seconds of wall time that ``neuralzip compress folder --out-dir out_dir --jobs N`` takes."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "neuralzip", "compress", str(folder), "--out-dir", str(out_dir), "--jobs", str(jobs)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=Path, help="folder of PNG images")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, required=True, help="markdown report to write")
    parser.add_argument("--note", default="", help="what else ran on the machine")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        for path in sorted(args.images.glob("*.png"))[: args.count]:
            shutil.copy(path, folder)
        load_before = os.getloadavg()
        seconds, outputs = {}, {}
        for jobs in args.jobs:
            out_dir = Path(tmp) / f"jobs{jobs}"
            seconds[jobs] = compress_folder(folder, out_dir, jobs)
            outputs[jobs] = {p.name: p.read_bytes() for p in out_dir.iterdir()}
            print(f"--jobs {jobs}: {seconds[jobs]:.1f} s", flush=True)
        load_after = os.getloadavg()
        first = outputs[args.jobs[0]]
        assert len(first) == args.count and all(o == first for o in outputs.values()), "outputs differ"
        total_bytes = sum(map(len, first.values()))
    rows = [f"| {jobs} | {s:.1f} | {s / args.count:.2f} | {seconds[args.jobs[0]] / s:.2f} |" for jobs, s in seconds.items()]
    args.out.write_text("\n".join([
        f"# `neuralzip compress DIR --jobs N` on {args.count} images",
        "",
        f"`benchmarks/jobs_scaling.py`: the first {args.count} PNG files of `{args.images.name}/` "
        f"(sorted by name), model `photo`, {total_bytes:,} bytes of output, identical for every N. "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}.",
        f"Load average before {', '.join(f'{x:.1f}' for x in load_before)}, "
        f"after {', '.join(f'{x:.1f}' for x in load_after)}. {args.note}",
        "",
        "| --jobs | wall s | s per image | speed-up |",
        "|---|---|---|---|",
        *rows,
        "",
    ]))


if __name__ == "__main__":
    main()
