"""Speed of neuralzip beside JPEG-XL e7, measured in one run (a benchmark, not a test).

Every time is reported in seconds and as a ratio to JPEG-XL e7 doing the same work in the
same run, since the machine is shared and noisy. Figures, each against the speed issue's
target where it has one:

1. kodim01 encode and decode inside the codec (``zoo.codec('photo', effort=e)``: photo-fast
   at 1, photo at 2, photo-wide at 3 to 5) at every effort level, and the file's bpsp: best of
   ``--repeats`` calls after one warm-up call, JPEG-XL e7's encode and decode taken in turn
   with them, so that each level's ratios share the moment's load.
2. ``neuralzip compress`` / ``neuralzip decompress`` of kodim01 through the installed
   command, start-up included: the first run ("cold": first of this benchmark, files
   already in the OS cache) and the best of ``--repeats`` more ("warm").
3. Kodak-24: total encode and decode time inside the codec at the default effort (per
   image the best of ``--repeats`` calls after a warm-up, as in figure 1, both codecs per
   image in turn; one process), pooled bpsp of the real files, every decode checked pixel
   for pixel; and the pooled bpsp at the lowest effort.
4. A ``--big-size`` photo (default 4000x3000, 12 MP) tiled from training photos at run time
   (never committed): ``neuralzip compress`` and ``decompress`` wall time and the child's
   peak RSS, pixels checked, bpsp; against JPEG-XL e7's encode, and its decode plus writing
   the PNG. Every command is killed after ``--timeout`` seconds.

Targets are the speed issue's (22): at the default effort kodim01 decodes in at most 4x
and encodes in at most 2x JPEG-XL e7's time; at the lowest, it decodes in at most 2.5x and
Kodak-24 stays under JPEG-XL e9's 2.885 bpsp; the 12 MP photo compresses in at most 1x
and decompresses in at most 5x, in at most 1 GiB each way.

Writes ``results.md`` and ``results.json`` to ``--out``; exits non-zero if a command
failed or a round trip was not exact. Run from the repository root:

    python benchmarks/speed.py

Quick check of the script itself (targets are then not judged):

    python benchmarks/speed.py --limit 2 --big-size 400x300 --repeats 1 --out /tmp/speed
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, TypeVar

import imagecodecs
import numpy as np
from PIL import Image

from neuralzip import zoo
from neuralzip.bench.codecs import BenchCodec, all_codecs
from neuralzip.core.codec import Codec
from neuralzip.core.effort import DEFAULT_EFFORT, EFFORTS

ROOT = Path(__file__).resolve().parent.parent
FULL_BIG_SIZE = (4000, 3000)
KODAK_COUNT = 24
MODEL = "photo"  # the effort levels pick photo-fast, photo or photo-wide from it
LEA_KODAK_BPSP = 2.766  # issue 10: smaller than LEA 0.6, the best fast CPU coder, on Kodak-24
JXL_E9_KODAK_BPSP = 2.885  # issue 22: the lowest effort stays under JPEG-XL e9
GIB_MB = 2**30 / 1e6
BIG_PHOTOS = {"clic2020": 4, "photos_cc": 4}  # first photos (sorted) of each training folder
T = TypeVar("T")

# Runs argv[1:] and prints its wall seconds (spawn to reaping, start-up included), its peak
# RSS in KiB from wait4 (Linux), and its exit code. A command spawned straight from this
# large process would inherit this process's RSS high-water mark as its ru_maxrss (the
# kernel carries the pre-exec memory map's mark over exec); spawned from this small
# launcher, it inherits about 10 MB.
LAUNCHER = """
import os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    except OSError as exc:
        print(exc, file=sys.stderr)
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - t0, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


@dataclass
class Figure:
    """One measured figure; ``jxl`` is JPEG-XL e7 doing the same work in the same run.
    ``limit`` is the issue's target, on the value or (``on_ratio``) on value / jxl."""

    name: str
    unit: str
    value: float | None
    jxl: float | None = None
    limit: float | None = None
    on_ratio: bool = False
    error: str | None = None

    @property
    def ratio(self) -> float | None:
        return None if self.value is None or not self.jxl else self.value / self.jxl

    @property
    def met(self) -> bool | None:
        """None without a target; a failed measurement misses it."""
        judged = self.ratio if self.on_ratio else self.value
        return None if self.limit is None else judged is not None and judged <= self.limit

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


@dataclass
class ChildRun:
    """One run of a command: wall seconds, its peak RSS (MB = 10^6 bytes; the largest of it
    and its waited-for children; None if killed), exit code, last stderr line."""

    command: list[str]
    seconds: float
    peak_mb: float | None
    returncode: int
    timed_out: bool
    stderr_tail: str

    @property
    def error(self) -> str | None:
        if self.timed_out:
            problem = f"timed out after {self.seconds:g} s"
        elif self.returncode != 0:
            problem = f"exit code {self.returncode}"
        else:
            return None
        return f"{problem}: {self.stderr_tail}" if self.stderr_tail else problem


@dataclass
class Report:
    """Everything a run writes: figures, per-image Kodak records, command runs, failures."""

    figures: list[Figure] = field(default_factory=list)
    kodak: list[dict[str, Any]] = field(default_factory=list)
    runs: list[ChildRun] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def check(self, what: str, decoded: np.ndarray, original: np.ndarray) -> bool:
        exact = decoded.shape == original.shape and np.array_equal(decoded, original)
        if not exact:
            self.failures.append(f"{what}: decoded pixels differ from the original")
        return exact

    def run(self, command: list[str], timeout: float) -> ChildRun:
        result = run_child(command, timeout)
        self.runs.append(result)
        if result.error:
            self.failures.append(f"{' '.join(command)}: {result.error}")
        return result


def last_line(file: IO[bytes]) -> str:
    file.seek(0)
    lines = file.read().decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else ""


def run_child(command: list[str], timeout: float) -> ChildRun:
    """Run ``command`` through ``LAUNCHER``, killed with its process group after ``timeout`` s."""
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, *command], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return ChildRun(command, timeout, None, -signal.SIGKILL, True, last_line(stderr))
        seconds, maxrss_kib, returncode = out.split()
        return ChildRun(command, float(seconds), int(maxrss_kib) * 1024 / 1e6, int(returncode), False,
                        last_line(stderr))


def timed(call: Callable[..., T], *args: Any) -> tuple[float, T]:
    """(seconds of ``call(*args)``, its result)."""
    t0 = time.perf_counter()
    result = call(*args)
    return time.perf_counter() - t0, result


def best_of(repeats: int, call: Callable[..., T], *args: Any) -> tuple[float, T]:
    """(fewest seconds of ``repeats`` calls after one warm-up call, the last call's result)."""
    return best_in_turn(repeats, [(call, args)])[0]


def best_in_turn(repeats: int, calls: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[tuple[float, Any]]:
    """``best_of`` of each (call, args), the calls taken in turn in each of ``repeats``
    rounds (after one warm-up round), so that the machine's load falls on all alike."""
    for call, args in calls:
        call(*args)
    best: list[tuple[float, Any]] = [(float("inf"), None)] * len(calls)
    for _ in range(repeats):
        for i, (call, args) in enumerate(calls):
            seconds, result = timed(call, *args)
            best[i] = (min(best[i][0], seconds), result)
    return best


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def bpsp(total_bytes: int, images: list[np.ndarray]) -> float:
    """Pooled bits per subpixel: 8 x bytes / (H x W x 3) summed over the images."""
    return 8 * total_bytes / sum(image.size for image in images)


def neuralzip_command() -> str:
    """The ``neuralzip`` script installed beside this Python (no pyenv shim in the timing)."""
    beside = Path(sys.executable).with_name("neuralzip")
    found = str(beside) if beside.exists() else shutil.which("neuralzip")
    if found is None:
        sys.exit("the neuralzip command is not installed (pip install -e .)")
    return found


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
              if line.startswith("model name")] if cpuinfo.exists() else []
    git = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True)
    return {
        "cpu": models[0] if models else platform.processor(),
        "cpu_count": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "imagecodecs": imagecodecs.__version__,
        "neuralzip_commit": git.stdout.strip() or None,
    }


def kodim01_figures(report: Report, codec: Codec, jxl: BenchCodec, image: np.ndarray,
                    repeats: int) -> tuple[bytes, dict[str, float]]:
    """Figure 1: kodim01 inside the codecs, at every effort level. Returns (the .nz bytes of
    the default effort, JPEG-XL e7 seconds of the work of each command, measured with the
    default effort: {"compress": encode, "decompress": decode})."""
    jxl_data = jxl.encode(image)
    encode_limits = {DEFAULT_EFFORT: 2.0}
    decode_limits = {min(EFFORTS): 2.5, DEFAULT_EFFORT: 4.0, max(EFFORTS): 10.0}
    default_data, jxl_s = b"", {}
    for level in EFFORTS:
        coder = zoo.codec(MODEL, codec.threads, effort=level)
        data = coder.encode(image)[0]
        calls = [(coder.encode, (image,)), (coder.decode, (data,)), (jxl.encode, (image,)), (jxl.decode, (jxl_data,))]
        (encode_s, _), (decode_s, decoded), (jxl_encode_s, _), (jxl_decode_s, jxl_decoded) = best_in_turn(
            repeats, calls
        )
        report.check(f"kodim01 (in codec, effort {level})", decoded, image)
        report.check(f"kodim01 (JPEG-XL e7, beside effort {level})", jxl_decoded, image)
        default = " (default)" if level == DEFAULT_EFFORT else ""
        report.figures += [
            Figure(f"kodim01 encode in codec, effort {level}{default} (best of {repeats})", "s", encode_s,
                   jxl_encode_s, encode_limits.get(level), on_ratio=True),
            Figure(f"kodim01 decode in codec, effort {level}{default} (best of {repeats})", "s", decode_s,
                   jxl_decode_s, decode_limits.get(level), on_ratio=True),
            Figure(f"kodim01 bpsp, effort {level}{default}", "bpsp", bpsp(len(data), [image]),
                   bpsp(len(jxl_data), [image])),
        ]
        if level == DEFAULT_EFFORT:
            default_data, jxl_s = data, {"compress": jxl_encode_s, "decompress": jxl_decode_s}
    return default_data, jxl_s


def command_figures(report: Report, codec: Codec, image: np.ndarray, png: Path, nz: Path, tmp: Path,
                    jxl_s: dict[str, float], repeats: int, timeout: float) -> None:
    """Figure 2: ``neuralzip decompress`` then ``compress`` of kodim01, cold and warm, each
    run ``repeats + 1`` times unless one fails; the JPEG-XL column is in process (figure 1)."""
    nzc = neuralzip_command()
    out_png, out_nz = tmp / "kodim01-out.png", tmp / "kodim01-out.nz"
    commands = {
        "decompress": ([nzc, "decompress", str(nz), "-o", str(out_png), "-f"], None),
        "compress": ([nzc, "compress", str(png), "-o", str(out_nz), "-f"], None),
    }
    for verb, (command, warm_limit) in commands.items():
        runs = [report.run(command, timeout)]
        while len(runs) <= repeats and not runs[-1].error:
            runs.append(report.run(command, timeout))
        error = runs[-1].error
        report.figures += [
            Figure(f"`neuralzip {verb}` kodim01, cold (first run)", "s",
                   None if error else runs[0].seconds, jxl_s[verb], error=error),
            Figure(f"`neuralzip {verb}` kodim01, warm (best of {repeats})", "s",
                   None if error else min(r.seconds for r in runs[1:]), jxl_s[verb], warm_limit, error=error),
        ]
        output = out_png if verb == "decompress" else out_nz
        if not error:
            decoded = read_rgb(output) if verb == "decompress" else codec.decode(output.read_bytes())
            report.check(f"kodim01 (neuralzip {verb})", decoded, image)


def kodak_figures(report: Report, codec: Codec, jxl: BenchCodec, paths: list[Path], full: bool,
                  repeats: int) -> None:
    """Figure 3: Kodak totals inside the codecs, per image the best of ``repeats`` calls, both
    codecs per image in turn so that load on the machine falls on both alike; and the
    lowest effort's bpsp."""
    images, lowest = [], zoo.codec(MODEL, codec.threads, effort=min(EFFORTS))  # photo-fast
    for path in paths:
        image = read_rgb(path)
        images.append(image)
        lowest_data = lowest.encode(image)[0]
        report.check(f"{path.name} (in codec, effort {min(EFFORTS)})", lowest.decode(lowest_data), image)
        encode_s, (data, _) = best_of(repeats, codec.encode, image)
        decode_s, decoded = best_of(repeats, codec.decode, data)
        jxl_encode_s, jxl_data = best_of(repeats, jxl.encode, image)
        jxl_decode_s, jxl_decoded = best_of(repeats, jxl.decode, jxl_data)
        report.kodak.append({
            "image": path.name, "bytes": len(data), "encode_s": encode_s, "decode_s": decode_s,
            "lowest_effort_bytes": len(lowest_data),
            "exact": report.check(f"{path.name} (in codec)", decoded, image),
            "jxl_bytes": len(jxl_data), "jxl_encode_s": jxl_encode_s, "jxl_decode_s": jxl_decode_s,
            "jxl_exact": report.check(f"{path.name} (JPEG-XL e7)", jxl_decoded, image),
        })
    total = {key: sum(r[key] for r in report.kodak) for key in report.kodak[0] if key.endswith(("_s", "bytes"))}
    name = f"Kodak-{len(paths)}"
    report.figures += [
        Figure(f"{name} encode total in codec", "s", total["encode_s"], total["jxl_encode_s"]),
        Figure(f"{name} decode total in codec", "s", total["decode_s"], total["jxl_decode_s"],
               4.0 if full else None, on_ratio=True),
        Figure(f"{name} bpsp (real files)", "bpsp", bpsp(total["bytes"], images),
               bpsp(total["jxl_bytes"], images), LEA_KODAK_BPSP if full else None),
        Figure(f"{name} bpsp (real files), effort {min(EFFORTS)}", "bpsp", bpsp(total["lowest_effort_bytes"], images),
               bpsp(total["jxl_bytes"], images), JXL_E9_KODAK_BPSP if full else None),
    ]


def centre_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return image[top : top + height, left : left + width]


def tile_photo(train: Path, width: int, height: int) -> np.ndarray:
    """A width x height RGB photo: the first training photos of ``BIG_PHOTOS``, centre-cropped
    to their common size, laid row by row in turn and cropped to the size."""
    paths = [p for folder, n in BIG_PHOTOS.items() for p in sorted((train / folder).glob("*.png"))[:n]]
    photos = [read_rgb(p) for p in paths]
    th, tw = min(p.shape[0] for p in photos), min(p.shape[1] for p in photos)
    tiles = [centre_crop(p, th, tw) for p in photos]
    rows, cols = -(-height // th), -(-width // tw)
    grid = [np.hstack([tiles[(r * cols + c) % len(tiles)] for c in range(cols)]) for r in range(rows)]
    return np.ascontiguousarray(np.vstack(grid)[:height, :width])


def big_figures(report: Report, jxl: BenchCodec, train: Path, size: tuple[int, int], tmp: Path,
                timeout: float) -> None:
    """Figure 4: the big photo through the installed command, JPEG-XL e7 in process."""
    image = tile_photo(train, *size)
    png, nz, out = tmp / "big.png", tmp / "big.nz", tmp / "big2.png"
    Image.fromarray(image).save(png, compress_level=1)
    nzc = neuralzip_command()
    compress = report.run([nzc, "compress", str(png), "-o", str(nz)], timeout)
    decompress = report.run([nzc, "decompress", str(nz), "-o", str(out)], timeout)
    if not decompress.error:
        report.check("big photo (neuralzip)", read_rgb(out), image)
    jxl_encode_s, jxl_data = timed(jxl.encode, image)
    jxl_decode_s, jxl_decoded = timed(jxl.decode, jxl_data)
    report.check("big photo (JPEG-XL e7)", jxl_decoded, image)
    png_write_s, _ = timed(Image.fromarray(jxl_decoded).save, tmp / "big-jxl.png")  # as decompress writes it
    full = size == FULL_BIG_SIZE
    name = f"{size[0]}x{size[1]} photo"
    runs = (("compress", compress, jxl_encode_s, 1.0), ("decompress", decompress, jxl_decode_s + png_write_s, 5.0))
    for verb, run, jxl_s, limit in runs:
        report.figures += [
            Figure(f"`neuralzip {verb}` {name}, wall", "s", None if run.error else run.seconds, jxl_s,
                   limit if full else None, on_ratio=True, error=run.error),
            Figure(f"`neuralzip {verb}` {name}, peak RSS", "MB", None if run.error else run.peak_mb,
                   limit=GIB_MB if full else None, error=run.error),
        ]
    report.figures.append(Figure(f"{name} bpsp", "bpsp", None if compress.error else bpsp(nz.stat().st_size, [image]),
                                 bpsp(len(jxl_data), [image]), error=compress.error))


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return {"s": f"{value:.2f} s", "MB": f"{value:.0f} MB", "bpsp": f"{value:.4f}"}[unit]


def markdown(report: Report, meta: dict[str, Any]) -> str:
    m = meta["machine"]
    lines = [
        "# neuralzip speed beside JPEG-XL e7",
        "",
        f"Run {meta['date']} on {m['cpu']}, {m['cpu_count']} cores ({m['usable_cores']} usable), "
        f"load average {meta['load_before'][0]:.2f} before, {meta['load_after'][0]:.2f} after; "
        f"neuralzip {m['neuralzip_commit']}, Python {m['python']}, numpy {m['numpy']}, "
        f"imagecodecs {m['imagecodecs']}. JPEG-XL e7: `{meta['jxl_settings']}`. Ratio: "
        "neuralzip / JPEG-XL e7 of the same work in this run (for the commands: against "
        "JPEG-XL in process, without start-up). MB = 10^6 bytes.",
        "",
        f"Command: `{meta['command']}`",
        "",
        "| figure | neuralzip | JPEG-XL e7 | ratio | target | met |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for f in report.figures:
        target = "—" if f.limit is None else (f"≤ {f.limit:g}x" if f.on_ratio else f"≤ {fmt(f.limit, f.unit)}")
        met = {None: "—", True: "met", False: "**missed**"}[f.met]
        ratio = "—" if f.ratio is None else f"{f.ratio:.2f}x"
        value = f"failed: {f.error}" if f.error else fmt(f.value, f.unit)
        lines.append(f"| {f.name} | {value} | {fmt(f.jxl, f.unit)} | {ratio} | {target} | {met} |")
    lines += ["", "## Failures", ""] + ([f"- {x}" for x in report.failures] or ["None: every round trip exact."])
    return "\n".join(lines) + "\n"


def parse_size(text: str) -> tuple[int, int]:
    width, height = (int(x) for x in text.lower().split("x"))
    return width, height


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = ROOT.parent / "shared" / "data"
    parser.add_argument("--kodak", type=Path, default=data / "kodak", help="folder of the Kodak PNGs")
    parser.add_argument("--train", type=Path, default=data / "train", help="training photos for the big image")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "speed")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats after the warm-up / cold run")
    parser.add_argument("--limit", type=int, default=None, help="first N Kodak images only")
    parser.add_argument("--big-size", type=parse_size, default=FULL_BIG_SIZE, metavar="WxH")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds each command may take")
    parser.add_argument("--skip-kodak", action="store_true")
    parser.add_argument("--skip-big", action="store_true")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    jxl = next(c for c in all_codecs([]) if c.name == "jpegxl-e7")
    if jxl.missing():
        sys.exit(f"JPEG-XL e7 cannot run: {jxl.missing()}")
    report = Report()
    load_before = os.getloadavg()
    codec = zoo.codec(MODEL)
    kodim01 = args.kodak / "kodim01.png"
    image = read_rgb(kodim01)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        nz = tmp / "kodim01.nz"
        data, jxl_s = kodim01_figures(report, codec, jxl, image, args.repeats)
        nz.write_bytes(data)
        print("kodim01 in codec done", flush=True)
        command_figures(report, codec, image, kodim01, nz, tmp, jxl_s, args.repeats, args.timeout)
        print("kodim01 commands done", flush=True)
        if not args.skip_kodak:
            paths = sorted(args.kodak.glob("*.png"))[: args.limit]
            kodak_figures(report, codec, jxl, paths, len(paths) == KODAK_COUNT, args.repeats)
            print(f"Kodak ({len(paths)} images) done", flush=True)
        if not args.skip_big:
            big_figures(report, jxl, args.train, args.big_size, tmp, args.timeout)
            print("big photo done", flush=True)
    meta = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/speed.py", *sys.argv[1:]]),
        "machine": machine(), "load_before": load_before, "load_after": os.getloadavg(),
        "jxl_settings": jxl.settings, "repeats": args.repeats,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(report, meta)
    (args.out / "results.md").write_text(text)
    (args.out / "results.json").write_text(json.dumps({
        **meta, "figures": [f.record() for f in report.figures], "kodak": report.kodak,
        "runs": [asdict(r) for r in report.runs], "failures": report.failures,
    }, indent=1) + "\n")
    print(text)
    sys.exit(1 if report.failures else 0)


if __name__ == "__main__":
    main()
