"""Bulk conversion on a Dask distributed cluster: ``compress``/``decompress --cluster``.

The same jobs as a local batch (``batch.plan``), but each task, one file or a few small
ones, runs on a Dask worker that reads its inputs and writes its outputs itself, whole or
not at all (``atomic``, through ``batch``): the paths must mean the same on the workers as
here (a shared filesystem). Only file names, summaries and error lines travel through the
client, never pixels. Failures are ``jobs.error_message`` lines, one per file, and the rest
go on; a worker that dies mid-task (killed, out of memory) has its tasks rerun by Dask on
another worker, and its unfinished output is never renamed into place.

``address`` is a scheduler (``tcp://host:8786``) or ``local``: a ``LocalCluster`` of
``workers`` processes on this machine. Dask is the optional extra ``cluster``.

Inputs and ``--out-dir`` may also be fsspec URLs (``s3://bucket/photos``,
``file:///shared/photos``; ``urls.Url``): the planner lists them through fsspec here, and the
workers read their inputs and write their outputs through fsspec. An output is written to
a hidden temporary name beside it and then moved into place (``fs.mv``), and is refused if
it exists unless ``force``; on object stores neither that check nor the move is atomic (a
writer racing on the same name may be overwritten; a killed worker may leave its hidden
``.part`` object behind, never a partial output). fsspec is in the extra ``cluster``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import posixpath
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from threadpoolctl import threadpool_limits
from tqdm import tqdm

from .atomic import OutputExists
from .batch import _attempt, _write, writable_jobs
from .core.container import MAGIC, Header
from .core.fields import FormatError
from .core.kernel import THREADS_ENV
from .jobs import File, Job, Outcome, Task, UserError, error_message
from .urls import Url

if TYPE_CHECKING:
    from distributed import Client

LOCAL = "local"
INSTALL_HINT = "--cluster needs Dask distributed, which is not installed: pip install 'neuralzip[cluster]'"
SMALL_FILE = 16 * 1024  # inputs below this many bytes are grouped into one task ...
BATCH_BYTES = 256 * 1024  # ... up to about this many bytes of input per task
TASKS_PER_WORKER = 16  # and no fewer tasks than this many per worker, for balance


class _Source:
    """A ``Url`` input as a task takes it: a readable, seekable file (for Pillow) that can
    also be opened again (``open``, for a .nz reader); named by its URL in messages."""

    def __init__(self, url: Url) -> None:
        self.url = url
        self._file = None

    def open(self, mode: str = "rb"):
        return self.url.open(mode)

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("url", "_file"):
            raise AttributeError(name)
        if self._file is None:
            self._file = self.url.open("rb")
        return getattr(self._file, name)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def __str__(self) -> str:
        return str(self.url)

    def __repr__(self) -> str:
        return repr(str(self.url))


def _exists_error(target: Url) -> str:
    return error_message(OutputExists(f"{target} already exists"))


def _write_url(target: Url, data: bytes, force: bool) -> str | None:
    """Write ``data`` to a hidden temporary name beside ``target``, then move it into place
    (refused, unless ``force``, if ``target`` exists by then); the error line if that
    fails. Not atomic on object stores (see the module's notes)."""
    fs, path = target.fs()
    parent, name = posixpath.split(path)
    tmp = posixpath.join(parent, f".{name}.{uuid.uuid4().hex[:12]}.part")
    try:
        if not force and fs.exists(path):
            return _exists_error(target)
        fs.makedirs(parent, exist_ok=True)
        fs.pipe_file(tmp, data)
        try:
            if not force and fs.exists(path):
                return _exists_error(target)
            fs.mv(tmp, path)
        finally:
            if fs.exists(tmp):
                fs.rm(tmp)
    except OSError as exc:
        return error_message(exc)
    return None


def _convert_url(task: Task, source: Url, target: Url, force: bool) -> Outcome:
    """The outcome of one ``Url`` job on a worker, its output written; an existing output
    is refused before its input is read."""
    if not force:
        try:
            if target.fs()[0].exists(target.fs()[1]):
                return Outcome(error=_exists_error(target))
        except OSError as exc:
            return Outcome(error=error_message(exc))
    file = _Source(source)
    try:
        _, outcome = _attempt(task, Job(file, target))
    finally:
        file.close()
    if outcome.error is None:
        outcome.error = _write_url(target, outcome.data, force)
    return outcome


def _holds(target: File, data: bytes) -> bool:
    """Whether the local file ``target`` already holds exactly ``data``. The client checked
    before submitting that no output existed (without --force), so such a file was written
    in this run by an earlier attempt of the same task, which Dask reran after its worker
    died; conversions are deterministic, so that output is done, not clobbered."""
    try:
        return target.stat().st_size == len(data) and target.read_bytes() == data
    except OSError:
        return False


@dataclass(frozen=True)
class FileResult:
    """What a worker reports for one file: a summary line or an error line, sizes, and
    warning lines (metadata left out)."""

    summary: str = ""
    error: str | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    nz_bytes: int = 0  # the size of whichever side is the .nz file
    subpixels: int = 0
    warnings: tuple[str, ...] = ()


def _nz_side(source: File, data: bytes) -> tuple[int, int]:
    """(bytes, subpixels) of the .nz side of a conversion: its output ``data`` or its input."""
    try:
        nz = data if data[: len(MAGIC)] == MAGIC else source.read_bytes()
        header = Header.unpack(nz)[0]
    except (OSError, FormatError, UserError):
        return 0, 0
    return len(nz), header.width * header.height * header.image_mode.channels


def convert(task: Task, jobs: list[Job], force: bool) -> list[FileResult]:
    """Run on a worker: convert ``jobs`` with ``task`` and write each output atomically."""
    results = []
    for job in jobs:
        source, target = job.source, job.target
        assert source is not None and target is not None, "run refuses stdin and stdout"
        if isinstance(source, Url) and isinstance(target, Url):
            outcome = _convert_url(task, source, target, force)
        else:
            job, outcome = _attempt(task, job)
            if outcome.error is None and not (not force and _holds(target, outcome.data)):
                outcome.error = _write(job, outcome.data, force)
        if outcome.error is not None:
            results.append(FileResult(error=outcome.error, warnings=tuple(outcome.warnings)))
            continue
        try:
            size = source.stat().st_size
        except OSError:
            size = 0
        data = outcome.data
        sizes = (size, len(data), *_nz_side(source, data))
        results.append(FileResult(outcome.summary, None, *sizes, warnings=tuple(outcome.warnings)))
    return results


def _one_kernel_thread() -> None:
    """Each worker thread codes one file with one kernel thread (the workers share the
    cores), unless the worker was started with ``NEURALZIP_THREADS`` set."""
    os.environ.setdefault(THREADS_ENV, "1")
    threadpool_limits(1)


def worker_plugin():
    """A Dask ``WorkerPlugin`` that gives neuralzip one kernel thread per task on every
    worker (see ``_one_kernel_thread``); for pipelines that run ``neuralzip.compress``
    on their own cluster: ``client.register_plugin(neuralzip.cluster.worker_plugin())``."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class OneKernelThread(WorkerPlugin):
        """Applied to every worker, also to those that join (or are restarted) later."""

        name = "neuralzip-threads"

        def setup(self, worker) -> None:
            _one_kernel_thread()

    return OneKernelThread()


def _distributed():
    """The ``distributed`` module; UserError saying how to install it if it is missing."""
    try:
        import distributed
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    return distributed


@contextlib.contextmanager
def connect(address: str, workers: int) -> Iterator[Client]:
    """A Dask client of the scheduler at ``address``, or of a new ``LocalCluster`` of
    ``workers`` one-thread processes for ``local``; closed (the local cluster stopped) at
    the end. Raises UserError if Dask is missing or the scheduler cannot be reached."""
    distributed = _distributed()
    with contextlib.ExitStack() as stack:
        if address == LOCAL:
            cluster = stack.enter_context(
                distributed.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",
                    env={THREADS_ENV: "1"},
                    silence_logs=logging.ERROR,
                )
            )
            target = cluster
        else:
            target = address
        try:
            client = stack.enter_context(distributed.Client(target, timeout="20s"))
        except (OSError, TimeoutError) as exc:
            raise UserError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        client.register_plugin(worker_plugin())
        yield client


def tasks(jobs: list[Job], workers: int) -> list[list[Job]]:
    """``jobs`` cut into tasks: a file per task, except that consecutive small files
    (under SMALL_FILE bytes) share one, up to BATCH_BYTES of input and not so many that
    there would be fewer than TASKS_PER_WORKER tasks per worker."""
    per_task = max(1, math.ceil(len(jobs) / (TASKS_PER_WORKER * max(1, workers))))
    out: list[list[Job]] = []
    group: list[Job] = []
    size = 0
    for job in jobs:
        assert job.source is not None, "run refuses stdin"
        try:
            n = job.source.stat().st_size
        except OSError:
            n = 0  # the worker reports it
        if n >= SMALL_FILE:
            if group:
                out.append(group)
                group, size = [], 0
            out.append([job])
            continue
        if group and (len(group) >= per_task or size + n > BATCH_BYTES):
            out.append(group)
            group, size = [], 0
        group.append(job)
        size += n
    if group:
        out.append(group)
    return out


def run(
    address: str, jobs: list[Job], errors: list[str], task: Task, workers: int, force: bool, quiet: bool = False
) -> int:
    """``batch.run`` on a Dask cluster: report ``errors``, convert every job on the
    workers, print a line per file (errors on stderr) and a closing summary (files, bytes
    in and out, bpsp, seconds). Returns the number of failures."""
    _distributed()
    if any(job.source is None or job.target is None for job in jobs):
        raise UserError("--cluster takes files, not - (standard input or output)")
    t0 = time.perf_counter()
    if any(isinstance(job.source, Url) for job in jobs):
        # the workers check each output when they come to it: no request per file here
        ready, failures = jobs, list(errors)
        for line in failures:
            tqdm.write(f"neuralzip: error: {line}", file=sys.stderr)
    else:
        ready, failures = writable_jobs(jobs, errors, force)
    done = []
    with connect(address, workers) as client:
        from distributed import as_completed

        parts = tasks(ready, len(client.scheduler_info()["workers"]) or workers)
        futures = {client.submit(convert, task, part, force, pure=False): part for part in parts}
        with tqdm(
            total=len(ready), unit="file", file=sys.stderr, disable=True if quiet or len(ready) < 2 else None
        ) as bar:
            for future in as_completed(futures):
                part = futures.pop(future)
                try:
                    results = future.result()
                except Exception as exc:  # a bug in a task, or a task that killed its workers
                    line = error_message(exc) or f"{type(exc).__name__}: {exc}"
                    results = [FileResult(error=line)] * len(part)
                for job, result in zip(part, results):
                    for warning in result.warnings:
                        bar.write(f"neuralzip: warning: {job.source_name}: {warning}", file=sys.stderr)
                    if result.error is not None:
                        failures.append(result.error)
                        bar.write(f"neuralzip: error: {job.source_name}: {result.error}", file=sys.stderr)
                    else:
                        done.append(result)
                        if not quiet:
                            bar.write(f"{job.source_name} -> {job.target_name}: {result.summary}")
                    bar.update()
    if not quiet:
        print(summary(done, len(failures), time.perf_counter() - t0))
    return len(failures)


def summary(done: list[FileResult], failed: int, seconds: float) -> str:
    """``N files, X -> Y bytes, B bpsp, T s[, F failed]``; bpsp of the .nz files."""
    bytes_in, bytes_out = sum(r.bytes_in for r in done), sum(r.bytes_out for r in done)
    subpixels, nz = sum(r.subpixels for r in done), sum(r.nz_bytes for r in done)
    line = f"{len(done)} file{'s' * (len(done) != 1)}, {bytes_in:,} -> {bytes_out:,} bytes"
    if subpixels:
        line += f", {8 * nz / subpixels:.4f} bpsp"
    return line + f", {seconds:.1f} s" + (f", {failed} failed" if failed else "")
