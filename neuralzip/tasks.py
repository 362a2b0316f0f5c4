"""The tasks of ``neuralzip compress`` and ``decompress``: one file each, run by ``batch``
(in worker processes or this one) or ``cluster`` (on Dask workers). A task returns the
output's bytes and a summary line; it draws a progress bar on stderr only on a terminal
and only in the command's own process (not in ``--jobs`` workers)."""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, cast

from tqdm import tqdm

from . import api
from .core.container import Header
from .core.effort import DEFAULT_EFFORT
from .inputs import describe, read_image_stdin, read_nz
from .jobs import Job, UserError
from .outputs import image_file, output_format


def bar_wanted(quiet: bool) -> bool:
    """Whether to draw a progress bar: not with -q, not in a worker process (the workers'
    bars would garble each other), and only on a terminal."""
    return not quiet and multiprocessing.parent_process() is None and sys.stderr.isatty()


@contextlib.contextmanager
def progress_bar(desc: str, unit: str, quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A ``progress(done, total)`` callback that draws a bar on stderr, shown once the work
    has taken a second and cleared when it ends; None where no bar is wanted (see
    ``bar_wanted``). No tqdm is made then: in a worker process its lock's semaphores
    would be reported as leaked when Ctrl-C terminates the worker."""
    if not bar_wanted(quiet):
        yield None
        return
    with tqdm(desc=desc, unit=unit, delay=1.0, leave=False, file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield progress


def compress_task(
    job: Job, model: str, max_pixels: int, quiet: bool, strip: bool = False, effort: int = DEFAULT_EFFORT
) -> tuple[bytes, str]:
    """Encode one image and its metadata (unless ``strip``); one over ``max_pixels`` is
    refused from its header, before its pixels are decoded."""
    if job.source is None:
        source: Path | IO[bytes] = io.BytesIO(read_image_stdin(max_pixels))
    else:  # a Path, or on a --cluster worker a cluster._Source: an open file object, which Pillow reads as such
        source = job.source if isinstance(job.source, Path) else cast("IO[bytes]", job.source)
    if strip:
        image, metadata = api.read_image(source, max_pixels=max_pixels), None
    else:
        image, metadata = api.read_image_and_metadata(source, max_pixels=max_pixels)
    with progress_bar("encoding", "px", quiet) as progress:
        data, stats = api.encode(
            image, model, max_pixels=max_pixels, progress=progress, metadata=metadata, strip=strip, effort=effort
        )
    of_colour = " of colour" if stats.model_subpixels < stats.subpixels else ""
    described = describe(Header.unpack(data)[0], len(data))
    return data, f"{described} (model NLL {stats.nll_bpsp:.4f} bpsp{of_colour}), {stats.seconds:.2f} s"


def decompress_task(job: Job, max_pixels: int, quiet: bool) -> tuple[bytes, str]:
    """Decode one .nz file into the lossless format its output's suffix names (PNG by
    default), its metadata in it as far as the format holds it."""
    image_format, modes = output_format(job.target)
    (header, offset), data, size = read_nz(job.source, max_pixels)
    if header.image_mode.name not in modes:
        raise UserError(
            f"{job.target}: {image_format} cannot hold a {header.image_mode.name} image losslessly (use .png or .tif)"
        )
    t0 = time.perf_counter()
    with progress_bar("decoding", "step", quiet) as progress:
        image = api.decompress(data, max_pixels=max_pixels, progress=progress, parsed=(header, offset))
    written = image_file(image, header.metadata, image_format, job.target_name)
    return written, f"{describe(header, size)}, {time.perf_counter() - t0:.2f} s"
