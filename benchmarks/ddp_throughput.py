"""Training speed (pixels per second) of ``neuralzip train`` in one process against
``torchrun --nproc_per_node=N -m neuralzip train`` (a benchmark, not a test).

Copies the first COUNT PNG images of a folder, trains the default architecture for
``--minutes`` per setting on the CPU, each setting from scratch (``--threads`` per
process as the table says), reads ``pixels_per_s`` from each report
(pixels of the training batches, all processes together, per second of the optimisation
loop) and writes a markdown report.

    PYTHONPATH=. python benchmarks/ddp_throughput.py ../shared/data/train/bsds500 \\
        --out benchmarks/results/ddp_throughput.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=Path, help="folder of PNG images")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--minutes", type=float, default=0.75)
    parser.add_argument("--out", type=Path, required=True, help="markdown report to write")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    files = sorted(args.images.glob("*.png"))[: args.count]
    # (name, processes, threads per process, through torchrun)
    settings = [("neuralzip train, one thread", 1, 1, False), (f"neuralzip train, {cores} threads", 1, cores, False),
                ("torchrun --nproc_per_node=1", 1, 1, True), ("torchrun --nproc_per_node=2", 2, max(1, cores // 2), True)]
    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "imgs"
        src.mkdir()
        for f in files:
            shutil.copy(f, src / f.name)
        for i, (name, procs, threads, torchrun) in enumerate(settings):
            out = Path(tmp) / f"m{i}.npz"
            train = ["-m", "neuralzip", "train", str(src), "--out", str(out), "--minutes", str(args.minutes),
                     "--threads", str(threads)]
            launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"] if torchrun else []
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            subprocess.run([sys.executable, *launcher, *train], check=True, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            report = json.loads(out.with_suffix(".json").read_text())
            rows.append((name, procs, threads, report["steps"], report["pixels_per_s"],
                         report["val_bpsp_float"]))
    load_after = os.getloadavg()
    base = rows[0][4]
    lines = [
        "# Training speed: one process against torchrun (DistributedDataParallel, gloo, CPU)",
        "",
        f"`PYTHONPATH=. python benchmarks/ddp_throughput.py {args.images} --count {args.count} "
        f"--minutes {args.minutes} --out {args.out}`",
        "",
        f"The first {len(files)} PNG files of `{args.images.name}/`, default architecture (75 -> 128 -> 128 -> 12x6), "
        f"batch 8192 pixels per process, {args.minutes} min per setting from scratch. {platform.machine()}, "
        f"{cores} cores, Python {platform.python_version()}. Load average before "
        f"{', '.join(f'{x:.1f}' for x in load_before)}, after {', '.join(f'{x:.1f}' for x in load_after)}.",
        "",
        "| setting | processes | threads each | steps | pixels/s (all processes) | vs the first row | val bpsp (float) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, procs, threads, steps, speed, bpsp in rows:
        lines.append(f"| {name} | {procs} | {threads} | {steps} | {speed:,} | {speed / base:.2f}x | {bpsp:.4f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
