"""``compress``/``decompress --cluster local --jobs 2`` (a 2-worker Dask LocalCluster) against
``--jobs 2`` (the local process pool) on the same images, in one run (a benchmark, not a test).

Copies the first COUNT PNG images of a folder into a temporary folder, runs the real
commands alternately (pool, cluster, pool, cluster, ... ``--rounds`` times), checks that both
write the same bytes, and writes a markdown report. Wall times include start-up (Python,
the worker processes, and for the cluster a scheduler and its nannies).

    PYTHONPATH=. python benchmarks/cluster_overhead.py ../shared/data/train/bsds500 \\
        --count 200 --out benchmarks/results/cluster_overhead.md
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(args: list[str]) -> tuple[float, float]:
    """Seconds of wall time and of CPU time (user + system, every process it started) of
    ``neuralzip ARGS`` (quiet)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "neuralzip", *args, "-q"], check=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=Path, help="folder of PNG images")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="markdown report to write")
    args = parser.parse_args()
    files = sorted(args.images.glob("*.png"))[: args.count]
    ways = {"--jobs 2 (process pool)": ["--jobs", "2"],
            "--cluster local --jobs 2 (Dask, 2 workers)": ["--cluster", "local", "--jobs", "2"]}
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for f in files:
            shutil.copy(f, src / f.name)
        tiny = Path(tmp) / "tiny"  # two 8x8 images: the fixed cost of each way
        tiny.mkdir()
        from PIL import Image

        for i in range(2):
            Image.open(files[i]).convert("RGB").crop((0, 0, 8, 8)).save(tiny / f"t{i}.png")
        outputs = {}
        for r in range(args.rounds):
            for name, extra in ways.items():
                nz, back, small = (Path(tmp) / f"{kind}-{r}-{len(outputs)}" for kind in ("nz", "png", "tiny"))
                times.setdefault(("compress", name), []).append(timed(["compress", str(src), "--out-dir", str(nz), *extra]))
                times.setdefault(("decompress", name), []).append(timed(["decompress", str(nz), "--out-dir", str(back), *extra]))
                times.setdefault(("start-up (2 tiny images)", name), []).append(
                    timed(["compress", str(tiny), "--out-dir", str(small), *extra]))
                outputs[(r, name)] = {p.name: p.read_bytes() for p in nz.iterdir()}
                assert len(outputs[(r, name)]) == len(files)
                for f in files:
                    assert (back / f.name).exists()
        first = next(iter(outputs.values()))
        assert all(o == first for o in outputs.values()), "the ways wrote different bytes"
        in_bytes = sum(f.stat().st_size for f in files)
        nz_bytes = sum(map(len, first.values()))
    load_after = os.getloadavg()
    pool, dask = ways
    lines = [
        f"# {args.count} images: Dask LocalCluster (2 workers) against `--jobs 2`",
        "",
        f"`PYTHONPATH=. python benchmarks/cluster_overhead.py {args.images} --count {args.count} "
        f"--rounds {args.rounds} --out {args.out}`",
        "",
        f"The first {len(files)} PNG files of `{args.images.name}/` (sorted by name), {in_bytes:,} bytes of PNG, "
        f"{nz_bytes:,} bytes of .nz (model `photo`), the same bytes both ways. {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}. {args.rounds} alternating rounds, "
        "start-up included; other work shared the machine, so the fastest round (min) is the figure to read, "
        "and CPU time (user + system of every process) is the overhead least disturbed by it. "
        f"Load average before {', '.join(f'{x:.1f}' for x in load_before)}, "
        f"after {', '.join(f'{x:.1f}' for x in load_after)}.",
        "",
        f"| step | {pool}: wall s, min (median) | {dask}: wall s, min (median) | wall overhead (min) "
        "| CPU s, pool | CPU s, Dask | CPU overhead |",
        "|---|---|---|---|---|---|---|",
    ]
    for step in ("compress", "decompress", "start-up (2 tiny images)"):
        (a, b), (ca, cb) = ([min(t[k] for t in times[(step, w)]) for w in ways] for k in (0, 1))
        ma, mb = (statistics.median(t[0] for t in times[(step, w)]) for w in ways)
        lines.append(f"| {step} | {a:.1f} ({ma:.1f}) | {b:.1f} ({mb:.1f}) | {b - a:+.1f} s, {100 * (b - a) / a:+.0f} % "
                     f"| {ca:.1f} | {cb:.1f} | {cb - ca:+.1f} s, {100 * (cb - ca) / ca:+.0f} % |")
    lines += ["", "All runs (wall s / CPU s): " + "; ".join(
        f"{s}, {w.split(' (')[0]}: {', '.join(f'{t:.1f}/{c:.1f}' for t, c in ts)}" for (s, w), ts in times.items())]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
