"""Every shipped version of a model, current and retired, on the same photos: real files.

For each version of each ``--model`` (comma-separated: ``photo-wide,photo`` sets the model
the default effort codes photos with beside the one it replaced) in
``weights/manifest.json`` (the current weights and the retired ones kept so that their
files decode): the context its inputs come from, and the real-file bits per subpixel
(headers included, per-image adaptation on, as ``neuralzip compress`` writes them) pooled
over Kodak-24 and the held-out photos of the training folders; and the decode time of one
image (``--time-image``, two kernel threads, the versions interleaved, best of
``--repeats``), so that a version's speed is compared on the same machine at the same
moment. This is the ablation of what a new version changed (its
manifest entry says how it was made).

Run from the repository root (about 2 s an image and version on one core):

    python benchmarks/model_versions.py --jobs 2 --out benchmarks/results/model_versions.md
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from ablation import image_paths  # noqa: E402
from neuralzip import zoo  # noqa: E402
from neuralzip.core.codec import Codec  # noqa: E402


def file_bytes(job: tuple[str, str, Path]) -> tuple[int, int]:
    """(subpixels, bytes of the .nz file) of the RGB image at ``path``, written with the
    version ``tag`` of model ``name`` (one kernel thread)."""
    name, tag, path = job
    image = np.asarray(Image.open(path).convert("RGB"))
    return image.size, len(Codec(zoo.load(name, bytes.fromhex(tag)), threads=1).encode(image)[0])


def decode_seconds(versions: list[tuple[str, str]], path: Path, repeats: int) -> dict[tuple[str, str], float]:
    """Best decode time in seconds of the image at ``path`` per (model, version tag), the
    versions decoded in turn ``repeats`` times (two kernel threads)."""
    image = np.asarray(Image.open(path).convert("RGB"))
    codecs = {(name, tag): Codec(zoo.load(name, bytes.fromhex(tag)), threads=2) for name, tag in versions}
    files = {version: codec.encode(image)[0] for version, codec in codecs.items()}
    best = dict.fromkeys(versions, float("inf"))
    for _ in range(repeats):
        for version, codec in codecs.items():
            t0 = time.perf_counter()
            codec.decode(files[version])
            best[version] = min(best[version], time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="photo", help="model names, comma-separated")
    ap.add_argument("--kodak", type=int, default=24, help="first N Kodak images")
    ap.add_argument("--heldout", type=int, default=55, help="first N held-out training-folder photos")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--time-image", type=Path, default=ROOT.parent / "shared" / "data" / "kodak" / "kodim01.png")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "model_versions.md")
    args = ap.parse_args()
    listed = image_paths(args.kodak, args.heldout)
    versions = [(name, i == 0, entry) for name in args.model.split(",") for i, entry in enumerate(zoo.versions(name))]
    t0 = time.perf_counter()
    rows = []
    for name, current, entry in versions:
        tag = entry["sha256"][:8]
        with ProcessPoolExecutor(args.jobs) as pool:
            sizes = list(pool.map(file_bytes, [(name, tag, path) for _, _, path in listed]))
        cells = {}
        for subset in dict.fromkeys(s for s, _, _ in listed):
            picked = [size for (s, _, _), size in zip(listed, sizes) if s == subset]
            cells[subset] = (len(picked), 8 * sum(b for _, b in picked) / sum(n for n, _ in picked))
        model = zoo.load(name, bytes.fromhex(tag)).model
        rows.append(((name, tag), model.context, current, cells))
        print(name, tag, {s: round(v, 4) for s, (_, v) in cells.items()}, flush=True)
    seconds = decode_seconds([key for key, *_ in rows], args.time_image, args.repeats)
    oldest = rows[-1][3]
    shown_models = " and ".join(f"`{name}`" for name in args.model.split(","))
    lines = [f"# Shipped versions of {shown_models}, real files (bpsp, headers included)", "",
             f"Command: `python benchmarks/model_versions.py --model {args.model} --kodak {args.kodak} "
             f"--heldout {args.heldout} --jobs {args.jobs} --repeats {args.repeats}` "
             f"({time.perf_counter() - t0:.0f} s). Per-image adaptation on, as `neuralzip compress` writes "
             "files; change against the oldest version in brackets. Decode: "
             f"`{args.time_image.name}` on two threads, best of {args.repeats}, the versions in turn. How each "
             "version was made: its entry in `weights/manifest.json`.", "",
             "| model | weights | context | " + " | ".join(f"{s} ({n} images)" for s, (n, _) in oldest.items())
             + f" | decode {args.time_image.name} |",
             "|---|---|---:|" + "---:|" * (len(oldest) + 1)]
    oldest_s = seconds[rows[-1][0]]
    for (name, tag), context, current, cells in rows:
        shown = " | ".join(f"{v:.4f} ({100 * (v / oldest[s][1] - 1):+.2f} %)" for s, (_, v) in cells.items())
        time_s = seconds[(name, tag)]
        lines.append(f"| `{name}` | `{tag}`{' (current)' if current else ''} | {context} | {shown} | "
                     f"{time_s:.3f} s ({100 * (time_s / oldest_s - 1):+.1f} %) |")
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
