"""One conversion over many files: inputs and outputs, worker processes, per-file failures.

A *task* turns one ``Job``'s input into its output bytes and a summary line. Tasks run in
worker processes (or in this one); this process writes every output whole
(``neuralzip.atomic``), so Ctrl-C or SIGTERM, which only this process handles
(``neuralzip.interrupt``), never leaves a partial file. A file that fails is reported in
one line and the others go on.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import signal
import sys
import warnings
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

from threadpoolctl import threadpool_limits
from tqdm import tqdm

from .atomic import OutputExists, check_writable, write_atomically
from .core.kernel import THREADS_ENV
from .core.metadata import MetadataWarning
from .interrupt import deferred
from .jobs import STDIO, File, Job, Outcome, Task, UserError, error_message, unique_outputs
from .urls import URL_NEEDS_CLUSTER, Url, is_url, plan_urls


def plan(
    sources: Sequence[str],
    suffixes: Collection[str],
    new_suffix: str,
    output: str | None,
    out_dir: Path | str | None,
    recursive: bool,
) -> tuple[list[Job], list[str]]:
    """Jobs for command-line ``sources`` and an error line for each source that gives none.

    A source is a file, a folder (its files whose suffix is in ``suffixes``; with
    ``recursive`` also those of its subfolders) or ``-`` (stdin, alone). An output is its
    input with ``new_suffix``, beside it or under ``out_dir`` (keeping the path below a
    folder source); ``output`` names the one output of a single input (``-``: stdout), and
    stdin goes to stdout unless ``output`` says otherwise. Raises UserError for a command
    line that cannot work.
    """
    if any(map(is_url, sources)) or is_url(out_dir) or is_url(output):
        return plan_urls(sources, suffixes, new_suffix, output, out_dir, recursive)
    if STDIO in sources and len(sources) > 1:
        raise UserError("- (standard input) cannot be combined with other inputs")
    inputs: list[tuple[Path | None, Path]] = []  # (input file, output path relative to out_dir)
    errors = []
    for source in sources:
        path = Path(source)
        if source == STDIO:
            inputs.append((None, Path()))
        elif path.is_dir():
            candidates = path.rglob("*") if recursive else path.iterdir()
            found = sorted(
                p for p in candidates if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith(".")
            )
            if not found:
                errors.append(f"{path}: no input files in this folder")
            inputs += [(p, p.relative_to(path).with_suffix(new_suffix)) for p in found]
        elif path.is_file() or path.is_fifo() or path.is_char_device():  # a named pipe, /dev/stdin
            inputs.append((path, Path(path.with_suffix(new_suffix).name)))
        elif path.exists():
            errors.append(f"{path}: not a file or folder")
        else:
            errors.append(f"{path}: no such file")
    if output is not None and len(inputs) > 1:
        raise UserError("-o/--output takes a single input (use --out-dir for several)")

    def target(file: Path | None, relative: Path) -> Path | None:
        if output is not None:
            return None if output == STDIO else Path(output)
        if file is None:
            return None
        return out_dir / relative if out_dir is not None else file.with_suffix(new_suffix)

    jobs = unique_outputs([Job(file, target(file, relative)) for file, relative in inputs], os.path.abspath, errors)
    if any(job.target is None for job in jobs) and sys.stdout is not None and sys.stdout.isatty():
        raise UserError("refusing to write binary data to a terminal (redirect stdout or use -o)")
    return jobs, errors


def default_workers() -> int:
    """The number of CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _local(file: File) -> Path:
    """A file of a plan without URLs, which is a ``Path`` (``run`` refuses a ``Url``; the
    workers of ``--cluster`` write those themselves)."""
    assert isinstance(file, Path), f"{file!r} is not a local file"
    return file


def writable_jobs(jobs: list[Job], errors: list[str], force: bool) -> tuple[list[Job], list[str]]:
    """(the jobs whose output may be written, failure lines): ``errors`` and every job whose
    output exists (without ``force``), each reported on stderr now."""
    failures = list(errors)
    ready = []
    for job in jobs:
        try:
            if job.target is not None:
                check_writable(_local(job.target), force)
            ready.append(job)
        except OutputExists as exc:
            failures.append(f"{job.source_name}: {error_message(exc)}")
    for line in failures:
        tqdm.write(f"neuralzip: error: {line}", file=sys.stderr)
    return ready, failures


def run(jobs: list[Job], errors: list[str], task: Task, workers: int, force: bool, quiet: bool = False) -> int:
    """Report ``errors``, run ``task`` on every job in up to ``workers`` processes and write
    the outputs (an existing one only with ``force``). Prints a summary line per file on
    stdout (on stderr when an output is stdout), one ``neuralzip: error:`` line per failed
    file and one ``neuralzip: warning:`` line per metadata left out (``MetadataWarning``)
    on stderr, and one progress bar on a terminal; with ``quiet`` only the error and
    warning lines. Returns the number of failures."""
    if any(isinstance(file, Url) for job in jobs for file in (job.source, job.target)):
        raise UserError(URL_NEEDS_CLUSTER)
    ready, failures = writable_jobs(jobs, errors, force)
    summaries = sys.stderr if sys.stdout is None or any(job.target is None for job in ready) else sys.stdout
    with tqdm(total=len(ready), unit="file", file=sys.stderr, disable=True if quiet or len(ready) < 2 else None) as bar:
        for job, outcome in _outcomes(ready, task, workers):
            if outcome.error is None:
                outcome.error = _write(job, outcome.data, force)
            for line in outcome.warnings:
                bar.write(f"neuralzip: warning: {job.source_name}: {line}", file=sys.stderr)
            if outcome.error is not None:
                failures.append(outcome.error)
                bar.write(f"neuralzip: error: {job.source_name}: {outcome.error}", file=sys.stderr)
            elif not quiet:
                bar.write(f"{job.source_name} -> {job.target_name}: {outcome.summary}", file=summaries)
            bar.update()
    return len(failures)


def _write(job: Job, data: bytes, force: bool) -> str | None:
    """Write a job's output; the error line if that fails."""
    try:
        if job.target is None:
            write_stdout(data)
        else:
            target = _local(job.target)
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(target, data, overwrite=force)
    except StdoutError as exc:
        return str(exc)
    except OSError as exc:
        return error_message(exc)
    return None


class StdoutError(OSError):
    """Standard output took less than all of the data."""


def write_stdout(data: bytes) -> None:
    """Write ``data`` to standard output whole and flush it, or raise StdoutError: a short
    write (an unbuffered stdout, ``PYTHONUNBUFFERED=1``, may take part of a buffer), a
    reader that closed the pipe (EPIPE) and a full disk are errors, never a truncated
    stream and success. After a failure stdout is pointed at /dev/null, so that Python's
    own flush at exit neither fails again nor prints a traceback."""
    if sys.stdout is None:
        raise StdoutError("cannot write to standard output: it is closed")
    out, view, written = sys.stdout.buffer, memoryview(data), 0
    try:
        while written < len(view):
            n = out.write(view[written:])
            if not n:  # None: a non-blocking stdout that would block; 0: nothing taken
                raise StdoutError(f"standard output took {written:,} of {len(view):,} bytes")
            written += n
        out.flush()
    except OSError as exc:
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        if isinstance(exc, StdoutError):
            raise
        reason = "the reader closed the pipe" if isinstance(exc, BrokenPipeError) else exc.strerror or str(exc)
        raise StdoutError(f"cannot write to standard output: {reason}") from None


def _attempt(task: Task, job: Job) -> tuple[Job, Outcome]:
    """Run ``task`` on ``job``, turning an expected failure into an error line and each
    MetadataWarning into a line of the outcome (other warnings are shown as usual)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            data, summary = task(job)
        except Exception as exc:
            message = error_message(exc)
            if message is None:
                raise
            return job, Outcome(error=message)
    for warning in caught:
        if not issubclass(warning.category, MetadataWarning):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return job, Outcome(data, summary, warnings=[str(w.message) for w in caught if w.category is MetadataWarning])


def _outcomes(jobs: list[Job], task: Task, workers: int) -> Iterator[tuple[Job, Outcome]]:
    """(job, outcome) of every job as they finish: in this process for one worker or one
    job, else in a pool of worker processes.

    Several files are coded with one BLAS thread each, in this process as in the workers:
    ``workers`` is the parallelism, and BLAS threads contending for a busy core make
    encoding several times slower. A single file may use every core.
    """
    attempt = functools.partial(_attempt, task)
    if len(jobs) < 2:
        yield from map(attempt, jobs)
    elif workers < 2:
        with threadpool_limits(1):
            yield from map(attempt, jobs)
    else:
        with _worker_pool(min(workers, len(jobs))) as pool:
            yield from pool.imap_unordered(attempt, jobs)


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threadpool_limits(1)  # numpy is loaded (the package imports it); see _outcomes
    os.environ[THREADS_ENV] = "1"  # the worker processes share the cores: one kernel thread each


@contextlib.contextmanager
def _worker_pool(size: int) -> Iterator[multiprocessing.pool.Pool]:
    """``size`` fresh worker processes, terminated when the block ends by an exception:
    Ctrl-C or SIGTERM to this process (``neuralzip.interrupt``) stops them too, also when
    it was sent to this process alone. They are started with SIGINT ignored, so even a
    Ctrl-C to the process group during their start-up prints nothing, and with SIGTERM's
    default action (which ``Pool.terminate`` sends). A signal to this process waits
    until the pool is made, so that a pool once made is always terminated."""
    pool = None
    try:
        with deferred():
            handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                pool = multiprocessing.get_context("spawn").Pool(size, initializer=_init_worker)
            finally:
                signal.signal(signal.SIGINT, handler)
        yield pool
    except BaseException:  # Ctrl-C, SIGTERM, a bug, or the caller stopped early
        if pool is not None:
            pool.terminate()
        raise
    else:
        pool.close()
    finally:
        if pool is not None:
            pool.join()
