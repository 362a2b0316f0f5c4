"""What a conversion of many files is made of: jobs (one input, one output), the task run
on each, and how an expected failure is reported in one line. Shared by ``batch`` (local
processes) and ``cluster`` (Dask), and by ``urls`` (fsspec inputs and outputs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Protocol, overload

from PIL import Image, UnidentifiedImageError

from .atomic import OutputExists
from .core.codec import DecodeError, UnsupportedImage
from .core.fields import FormatError
from .core.metadata import MetadataError
from .zoo import ModelNotFound

STDIO = "-"


class UserError(Exception):
    """A problem with the user's input, reported as one line."""


@overload
def error_message(exc: OutputExists) -> str: ...
@overload
def error_message(exc: BaseException) -> str | None: ...
def error_message(exc: BaseException) -> str | None:
    """The one-line report of an expected failure; None for anything else (a bug)."""
    if isinstance(exc, OutputExists):
        return f"{exc} (use --force to overwrite)"
    expected = (UserError, FormatError, DecodeError, UnsupportedImage, MetadataError, ModelNotFound)
    if isinstance(exc, (*expected, Image.DecompressionBombError)):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "not enough memory for this image (see --max-pixels)"
    if isinstance(exc, UnidentifiedImageError):
        return f"not a readable image: {exc}"
    if isinstance(exc, OSError) and exc.strerror:  # "path: Permission denied", not "[Errno 13] ..."
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    if isinstance(exc, (OSError, ValueError)):
        return f"{type(exc).__name__}: {exc}"
    return None


class Stat(Protocol):
    """What jobs read of a file's ``stat()``."""

    @property
    def st_size(self) -> int: ...


class File(Protocol):
    """A job's input or output, as far as jobs and tasks use it: a local ``Path``, or a
    ``urls.Url`` (an fsspec URL) of a plan that names URLs."""

    @property
    def name(self) -> str: ...

    @property
    def suffix(self) -> str: ...

    def open(self, mode: str) -> IO[Any]: ...

    def stat(self) -> Stat: ...

    def read_bytes(self) -> bytes: ...


@dataclass(frozen=True)
class Job:
    """One file to convert; a ``source`` or ``target`` of None is stdin or stdout."""

    source: File | None
    target: File | None

    @property
    def source_name(self) -> str:
        return "<stdin>" if self.source is None else str(self.source)

    @property
    def target_name(self) -> str:
        return "<stdout>" if self.target is None else str(self.target)


@dataclass
class Outcome:
    """What a task gave for one job: output bytes and a summary, or an error line; and
    the lines of the MetadataWarnings it gave (metadata left out)."""

    data: bytes = b""
    summary: str = ""
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


Task = Callable[[Job], tuple[bytes, str]]


def unique_outputs(jobs: list[Job], key: Callable[[Any], str], errors: list[str]) -> list[Job]:
    """``jobs`` less those whose output (compared by ``key``) an earlier job already writes,
    each of which gets a line in ``errors``."""
    kept: list[Job] = []
    first_job_of: dict[str, Job] = {}
    for job in jobs:
        if job.target is not None:
            if key(job.target) in first_job_of:
                errors.append(
                    f"{job.source_name}: {job.target} is also the output of {first_job_of[key(job.target)].source_name}"
                )
                continue
            first_job_of[key(job.target)] = job
        kept.append(job)
    return kept
