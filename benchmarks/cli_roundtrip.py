"""Round-trip every image of a folder through the installed ``neuralzip`` command.

For each image: ``neuralzip compress`` then ``neuralzip decompress`` in subprocesses, pixel
comparison, real file size, the model NLL the compressor printed, and wall seconds of each
command (process start and model load included). Writes a Markdown table. The encoder's
bytes are the same on every machine (tests/test_same_bytes.py), so the sizes are too.

    python benchmarks/cli_roundtrip.py ../shared/data/kodak --out benchmarks/results/kodak/cli_roundtrip.md
    python benchmarks/cli_roundtrip.py ../shared/data/kodak --effort 1 --out benchmarks/results/kodak/cli_roundtrip_e1.md
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from neuralzip.bench.results import machine_info


def _command() -> list[str]:
    exe = shutil.which("neuralzip")
    return [exe] if exe else [sys.executable, "-m", "neuralzip"]


def _timed(args: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(_command() + args, check=True, capture_output=True, text=True)
    return time.perf_counter() - t0, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--effort", type=int, default=None, help="compress -e EFFORT (default: the command's)")
    args = parser.parse_args()
    effort = [] if args.effort is None else ["-e", str(args.effort)]
    rows, total_bits, total_nll, total_sub = [], 0, 0.0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for src in sorted(args.folder.glob("*.png")):
            nz, back = Path(tmp) / f"{src.stem}.nz", Path(tmp) / f"{src.stem}.png"
            enc_s, out = _timed(["compress", str(src), "-o", str(nz), *effort])
            dec_s, _ = _timed(["decompress", str(nz), "-o", str(back)])
            original = np.asarray(Image.open(src).convert("RGB"))
            exact = np.array_equal(original, np.asarray(Image.open(back)))
            nll_bpsp = float(re.search(r"model NLL ([0-9.]+) bpsp", out).group(1))
            size = nz.stat().st_size
            rows.append((src.name, size, 8 * size / original.size, nll_bpsp, enc_s, dec_s, exact))
            total_bits += 8 * size
            total_nll += nll_bpsp * original.size
            total_sub += original.size
            print(f"{src.name}: {8 * size / original.size:.4f} bpsp, NLL {nll_bpsp:.4f}, "
                  f"{enc_s:.1f} s / {dec_s:.1f} s, exact={exact}", flush=True)
    lines = [
        f"# CLI round trip of `{args.folder.name}`" + ("" if args.effort is None else f", effort {args.effort}"),
        "",
        f"Machine: {machine_info()['label']}; `python {' '.join(sys.argv)}`.",
        "Seconds are wall time of each `neuralzip` process (start-up and model load included).",
        "",
        "| image | bytes | bpsp | NLL bpsp | compress s | decompress s | pixel-exact |",
        "|---|---:|---:|---:|---:|---:|---|",
        *[f"| {n} | {b:,} | {bp:.4f} | {nl:.4f} | {e:.1f} | {d:.1f} | {'yes' if x else 'NO'} |"
          for n, b, bp, nl, e, d, x in rows],
        f"| **total** | {total_bits // 8:,} | **{total_bits / total_sub:.4f}** | {total_nll / total_sub:.4f} | "
        f"{sum(r[4] for r in rows):.1f} | {sum(r[5] for r in rows):.1f} | "
        f"{'all' if all(r[6] for r in rows) else 'NOT ALL'} |",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    if not all(r[6] for r in rows):
        sys.exit("some images did not round-trip exactly")


if __name__ == "__main__":
    main()
