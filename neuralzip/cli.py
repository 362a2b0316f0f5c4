"""Command line: ``neuralzip compress|decompress|info|train|publish|benchmark``, a thin
layer over ``neuralzip.tasks`` (one file of compress and decompress, run over many by
``neuralzip.batch`` or ``neuralzip.cluster``), ``neuralzip.inputs`` (a .nz file's header),
``neuralzip.training`` and ``neuralzip.bench``.

Errors print one ``neuralzip: error:`` line on stderr (one per failing file) and exit
non-zero; outputs are written whole or not at all, also on Ctrl-C. Progress bars go to
stderr, only on a terminal and only from this process (not from ``--jobs`` workers).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from . import interrupt, zoo
from .batch import default_workers, plan, run
from .core.codec import DEFAULT_MAX_PIXELS
from .core.effort import DEFAULT_EFFORT, EFFORTS, FAST_EFFORT
from .images import IMAGE_SUFFIXES
from .inputs import describe, read_nz
from .jobs import STDIO, Task, UserError, error_message
from .outputs import output_format
from .tasks import compress_task, decompress_task
from .urls import is_url

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
NZ_SUFFIX = ".nz"


def _fail(message: str, code: int = EXIT_ERROR) -> None:
    click.echo(f"neuralzip: error: {message}", err=True)
    sys.exit(code)


@contextlib.contextmanager
def _reported_errors() -> Iterator[None]:
    """Turn every expected failure into one stderr line and a non-zero exit."""
    try:
        yield
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_INTERRUPTED)
    except Exception as exc:
        message = error_message(exc)
        if message is None:
            raise
        _fail(message)


def _convert(
    sources: tuple[str, ...],
    suffixes: set[str],
    new_suffix: str,
    task: Task,
    output: str | None,
    out_dir: str | None,
    recursive: bool,
    force: bool,
    jobs: int | None,
    quiet: bool,
    cluster: str | None,
    max_pixels: int,
) -> None:
    """Run ``task`` over the files that ``sources`` name, with the options of
    ``_many_files`` (on a Dask cluster with ``cluster``: see ``neuralzip.cluster``); exit
    non-zero if any failed."""
    target_dir = None if out_dir is None else out_dir if is_url(out_dir) else Path(out_dir)
    planned, errors = plan(sources, suffixes, new_suffix, output, target_dir, recursive)
    if cluster is not None:
        from . import cluster as dask_cluster

        failed = dask_cluster.run(cluster, planned, errors, task, jobs or default_workers(), force, quiet)
    else:
        failed = run(planned, errors, task, jobs or default_workers(), force, quiet)
    if failed:
        sys.exit(EXIT_ERROR)


_MANY_FILES = [
    click.option("-o", "--output", help="output file of a single input; - for stdout"),
    click.option(
        "--out-dir",
        metavar="DIRECTORY",  # a str: a Path would turn scheme://x into scheme:/x
        help="write outputs under this folder or fsspec URL (keeping paths below folder inputs) "
        "instead of beside their inputs",
    ),
    click.option("-r", "--recursive", is_flag=True, help="also take the files in subfolders of folder inputs"),
    click.option("-f", "--force", is_flag=True, help="overwrite existing output files"),
    click.option(
        "-j",
        "--jobs",
        type=click.IntRange(min=1),
        help="files converted in parallel processes  [default: number of CPU cores]",
    ),
    click.option(
        "--max-pixels",
        type=click.IntRange(min=1),
        default=DEFAULT_MAX_PIXELS,
        show_default=True,
        help="refuse files whose image has more pixels (before allocating anything)",
    ),
    click.option("-q", "--quiet", is_flag=True, help="print errors only: no progress bars, no per-file summaries"),
    click.option(
        "--cluster",
        metavar="ADDRESS",
        help="run on a Dask cluster: a scheduler address (tcp://host:8786) or 'local' for a "
        "LocalCluster of --jobs processes; the workers read and write the files themselves "
        "(needs pip install 'neuralzip[cluster]')",
    ),
]


def _many_files(command: Callable) -> Callable:
    """The options shared by compress and decompress."""
    return functools.reduce(lambda f, option: option(f), reversed(_MANY_FILES), command)


@click.group()
@click.version_option(package_name="neuralzip")
def main() -> None:
    """neuralzip: learned lossless image compression."""


def entry() -> None:
    """The ``neuralzip`` command: ``main`` with SIGINT and SIGTERM handled
    (``neuralzip.interrupt``): at any moment, outputs and worker processes are cleaned up,
    then one line, exit status 130 or 143. The console script reaches it through
    ``_neuralzip_cli``, which handles the signals during the imports before it."""
    interrupt.install()
    try:
        try:
            main(prog_name="neuralzip")
        finally:
            interrupt.done()  # a signal from here on cannot cut the exit short
    except interrupt.Interrupted as exc:
        click.echo(f"neuralzip: error: {exc.message}", err=True)
        sys.exit(exc.exit_code)


@main.command()
@click.argument("sources", nargs=-1, required=True)
@_many_files
@click.option("-m", "--model", default=zoo.DEFAULT_MODEL, show_default=True, help="shipped model to use")
@click.option(
    "--strip", is_flag=True, help="leave out the metadata (ICC profile, EXIF, XMP, text, comments), kept by default"
)
@click.option(
    "-e",
    "--effort",
    type=click.IntRange(min(EFFORTS), max(EFFORTS)),
    default=DEFAULT_EFFORT,
    show_default=True,
    help="encoder work for smaller files; decoding costs the same at levels 3-5: "
    + "; ".join(f"{e.level}: {e.summary}" for e in EFFORTS.values()),
)
@click.option("--fast", is_flag=True, help=f"the same as --effort {FAST_EFFORT}")
def compress(sources: tuple[str, ...], model: str, strip: bool, effort: int, fast: bool, **many: Any) -> None:
    """Compress images to .nz files (X.png -> X.nz).

    SOURCES are image files (PNG, BMP, PPM, TIFF, WebP, ...), folders of them, or - for
    stdin (the output then goes to stdout unless -o says otherwise).

    \b
    Modes: RGB, L (grey, coded as one channel), RGBA and LA, each
    decoded to the same mode. Palette (P) images are coded as the RGB or
    RGBA they show, and decode as such; so are L and RGB images with a
    colour key (PNG tRNS), as LA or RGBA. 1-bit, 16-bit (also 16-bit RGB
    and RGBA PNGs), 32-bit, float, CMYK and other modes are refused, and
    so are animated and multi-page files (GIF, APNG, TIFF).

    The ICC profile, EXIF (orientation included, as a tag: the pixels are
    not rotated), XMP and text entries are kept and written back on
    decompress; --strip leaves them out.
    """
    with _reported_errors():
        zoo.load(model)  # an unknown model fails once, not once per file
        effort = FAST_EFFORT if fast else effort
        options = {"max_pixels": many["max_pixels"], "quiet": many["quiet"], "strip": strip, "effort": effort}
        task = functools.partial(compress_task, model=model, **options)
        _convert(sources, IMAGE_SUFFIXES, NZ_SUFFIX, task, **many)


@main.command()
@click.argument("sources", nargs=-1, required=True)
@_many_files
def decompress(sources: tuple[str, ...], output: str | None, **many: Any) -> None:
    """Decompress .nz files to PNG (X.nz -> X.png; -o picks another lossless format by its
    suffix: .tif, .tiff, .bmp, .ppm, .pgm, .pnm; lossy ones such as .jpg are refused).

    SOURCES are .nz files, folders of them, or - for stdin (the output then goes to stdout
    unless -o says otherwise). Images come back in the mode they were compressed in: RGB,
    L, RGBA or LA (palette images as RGB or RGBA).
    """
    with _reported_errors():
        if output not in (None, STDIO):
            output_format(Path(output))  # a lossy or unknown format is refused before any decoding
        task = functools.partial(decompress_task, max_pixels=many["max_pixels"], quiet=many["quiet"])
        _convert(sources, {NZ_SUFFIX}, ".png", task, output=output, **many)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def info(files: tuple[Path, ...]) -> None:
    """Print the header fields of .nz files (without decoding them)."""
    failed = False
    for i, path in enumerate(files):
        try:
            if str(path) != STDIO and not path.is_file():
                raise UserError("no such file")
            (header, _), _, size = read_nz(None if str(path) == STDIO else path, keep_payload=False)
        except Exception as exc:
            message = error_message(exc)
            if message is None:
                raise
            click.echo(f"neuralzip: error: {path}: {message}", err=True)
            failed = True
            continue
        lines = [f"file: {path}", *header.info_lines(), f"total: {describe(header, size)}"]
        click.echo(("\n" if i else "") + "\n".join(lines))
    if failed:
        sys.exit(EXIT_ERROR)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="weights file to write (.npz)")
@click.option("--minutes", default=30.0, show_default=True, help="wall-time budget of the optimisation")
@click.option("--hidden", default="128,128", show_default=True, help="hidden layer widths")
@click.option("--components", default=6, show_default=True, help="mixture components per channel")
@click.option("--keep", default=0.5, show_default=True, help="fraction of each image's pixels sampled")
@click.option("--global-ls", is_flag=True, help="train with the pooled LS predictor (for small images)")
@click.option(
    "--init",
    type=click.Path(exists=True),
    help="checkpoint (.ckpt) or integer model (.npz, e.g. a shipped one) to start from",
)
@click.option("--lr", default=2e-3, show_default=True, help="peak learning rate (cosine schedule over the budget)")
@click.option("--batch", default=8192, show_default=True, help="pixels per optimisation step")
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=2, show_default=True)
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    help="torch device of a single process, e.g. cuda (torchrun gives each process its own GPU where there are any)",
)
@click.option("--eval-every", default=300.0, show_default=True, help="seconds between validation and checkpoint")
@click.option(
    "--val",
    "val_paths",
    multiple=True,
    type=click.Path(exists=True),
    help="validation images (folder or .npy; repeatable) instead of a split carved from PATHS",
)
@click.option(
    "--context",
    type=click.IntRange(1, 2),
    default=1,
    show_default=True,
    help="the model's inputs: 1, the 17-neighbour window; 2, that plus a wider window (114 inputs)",
)
def train(paths: tuple[str, ...], out: str, val_paths: tuple[str, ...], **options: Any) -> None:
    """Train a model on image folders or .npy arrays (validation split carved from them).

    Re-running with the same --out resumes from OUT's .ckpt checkpoint. Needs PyTorch
    (pip install 'neuralzip[train]').
    """
    try:  # torch is an extra: without it, one line saying how to get it (not a traceback)
        importlib.import_module("torch")
    except ImportError:
        _fail(
            "training needs PyTorch, which is not installed: pip install 'neuralzip[train]' "
            "(or the CPU-only build, where a local wheel of it exists: pip install torch==2.13.0)"
        )
    from .training.train import Settings, train_main

    settings = Settings.of_options(command=shlex.join(["neuralzip", *sys.argv[1:]]), **options)
    report = train_main(list(paths), Path(out), settings, list(val_paths) or None, log=click.echo)
    click.echo(f"wrote {out}: validation {report['val_bpsp_float']:.4f} bpsp (float model)")


@main.command()
@click.argument("npz", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="model name to ship it as (in the weights folder's manifest.json)")
@click.option("--command", "made_with", required=True, help="the exact command line that trained it, recorded")
@click.option(
    "--weights",
    default=Path("weights"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="weights folder to publish into",
)
@click.option(
    "--source",
    is_flag=True,
    help="record NPZ, unshipped, as what a shipped version is made from (e.g. quantized into int16)",
)
def publish(npz: Path, name: str, made_with: str, weights: Path, source: bool) -> None:
    """Ship a model that `neuralzip train` wrote: copy NPZ into the weights folder and write
    its manifest entry from the training report beside it (NPZ with .json), with real-file
    bpsp measured on its validation images (not for a --source). No field is edited by hand."""
    with _reported_errors():
        from .training.publish import publish_trained

        entry = publish_trained(npz, name, made_with, weights, source)
        validation = entry.get("validation")
        click.echo(
            f"published {name} ({entry['sha256'][:8]}) into {weights}"
            + (f": validation {validation['bpsp']:.4f} bpsp on {validation['images']} images" if validation else "")
        )


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--codecs",
    "codecs",
    multiple=True,
    metavar="NAMES",
    help="codecs to run, comma-separated or repeated; shell patterns such as 'neuralzip-*' "
    "work [default: all; see --list]",
)
@click.option("--exclude", multiple=True, metavar="NAMES", help="codecs not to run (same form as --codecs)")
@click.option("--limit", type=click.IntRange(min=1), help="only the first N images of each path")
@click.option(
    "--jobs",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="processes to spread the image x codec pairs over (timings then share the CPU)",
)
@click.option(
    "--out",
    default=Path("benchmark-results"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="folder for results.json, results.md and plots",
)
@click.option("--merge", is_flag=True, help="update OUT/results.json: replace the codecs run now, keep the others")
@click.option(
    "--headers/--no-headers",
    default=True,
    show_default=True,
    help="rank and plot by bpsp with container headers, or without them where separable "
    "(results.json and the table always hold both)",
)
@click.option("--title", help="name of the image set in reports [default: the PATHS' names]")
@click.option("--machine", help="description of this machine in the results [default: cores and CPU model]")
@click.option("--list", "list_only", is_flag=True, help="list the codecs, their settings and availability, and exit")
def benchmark(**options: Any) -> None:
    """Measure lossless codecs (neuralzip, PNG, WebP, JPEG-XL, ...) on images: bits per
    subpixel, encode/decode time and memory, every round trip checked pixel-exact.

    PATHS are folders of images, .npy arrays (N x H x W x 3) or image files [default: the
    repository's samples/]. Writes OUT/results.json, OUT/results.md and PNG plots.
    """
    with _reported_errors():
        from .bench.command import benchmark_command

        benchmark_command(**options, echo=click.echo)
