"""fsspec URLs as inputs and outputs (``s3://``, ``gs://``, ``file://``): how a command line
of URLs plans its jobs. The workers of ``--cluster`` read and write them (``cluster``);
a local run refuses them in one line (``URL_NEEDS_CLUSTER``)."""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import TypeGuard

from .jobs import STDIO, Job, UserError, unique_outputs

FSSPEC_HINT = "URLs need fsspec, which is not installed: pip install 'neuralzip[cluster]'"
URL_NEEDS_CLUSTER = "URLs are read and written by the workers of --cluster only (try --cluster local)"
# a file of some 10 kB takes milliseconds to code, as long as a task's round trip: such
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/")  # two letters or more: not a drive letter


def is_url(path: str | os.PathLike | None) -> TypeGuard[str]:
    """Whether a command-line path is an fsspec URL (``scheme://...``), not a local path."""
    return isinstance(path, str) and "://" in path and bool(_SCHEME.match(path))


def _fsspec():
    """The ``fsspec`` module; UserError saying how to install it if it is missing."""
    try:
        import fsspec
    except ImportError:
        raise UserError(FSSPEC_HINT) from None
    return fsspec


def _filesystem(url: str):
    """(fsspec file system, path within it) of a URL; UserError for one fsspec cannot open
    (an unknown protocol, a backend that is not installed)."""
    fsspec = _fsspec()
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise UserError(f"{url}: {exc}") from None


@dataclass(frozen=True)
class Url:
    """A file named by an fsspec URL, with the bit of ``Path`` that jobs use (a name, a
    suffix, ``open``, ``stat``, ``read_bytes``); ``size``, when the listing gave it, spares
    a request."""

    url: str
    size: int | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return self.url

    def _split(self) -> tuple[str, str]:
        head, _, tail = self.url.rpartition("/")
        return head, tail

    @property
    def name(self) -> str:
        return self._split()[1]

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    def with_suffix(self, suffix: str) -> Url:
        head, name = self._split()
        return Url(f"{head}/{PurePosixPath(name).with_suffix(suffix)}")

    def __truediv__(self, relative: str | os.PathLike) -> Url:
        return Url(f"{self.url.rstrip('/')}/{PurePosixPath(relative).as_posix()}")

    def fs(self):
        return _filesystem(self.url)

    def open(self, mode: str = "rb"):
        fs, path = self.fs()
        return fs.open(path, mode)

    def read_bytes(self) -> bytes:
        fs, path = self.fs()
        return fs.cat_file(path)

    def stat(self) -> SimpleNamespace:
        if self.size is not None:
            return SimpleNamespace(st_size=self.size)
        fs, path = self.fs()
        return SimpleNamespace(st_size=fs.size(path))


def plan_urls(
    sources: Sequence[str],
    suffixes: Collection[str],
    new_suffix: str,
    output: str | None,
    out_dir: str | os.PathLike | None,
    recursive: bool,
) -> tuple[list[Job], list[str]]:
    """``batch.plan`` where a source or ``out_dir`` is a URL: the same jobs and error
    lines, of ``Url`` files, the folders listed through fsspec (local paths among them are
    taken as ``file://`` URLs, which the workers must see at the same place)."""
    if STDIO in sources:
        raise UserError("- (standard input) cannot be combined with URLs")
    inputs: list[tuple[Url, PurePosixPath]] = []
    errors = []
    for source in sources:
        url = source if is_url(source) else Path(source).absolute().as_uri()
        fs, path = _filesystem(url)
        try:
            info = fs.info(path)
        except FileNotFoundError:
            errors.append(f"{source}: no such file")
            continue
        if info["type"] == "directory":
            listing = fs.find(path, detail=True) if recursive else fs.ls(path, detail=True)
            if isinstance(listing, dict):
                listing = list(listing.values())
            root = PurePosixPath(path.rstrip("/"))
            found = sorted(
                (PurePosixPath(entry["name"]), entry.get("size")) for entry in listing if entry["type"] == "file"
            )
            found = [(p, size) for p, size in found if p.suffix.lower() in suffixes and not p.name.startswith(".")]
            if not found:
                errors.append(f"{source}: no input files in this folder")
            inputs += [
                (Url(fs.unstrip_protocol(str(p)), size), p.relative_to(root).with_suffix(new_suffix))
                for p, size in found
            ]
        else:
            inputs.append((Url(url, info.get("size")), PurePosixPath(PurePosixPath(path).name).with_suffix(new_suffix)))
    if output is not None and len(inputs) > 1:
        raise UserError("-o/--output takes a single input (use --out-dir for several)")
    base = None
    if out_dir is not None:
        base = Url(out_dir if is_url(out_dir) else Path(out_dir).absolute().as_uri())

    def target(file: Url, relative: PurePosixPath) -> Url | None:
        if output is not None:
            if output == STDIO:
                return None
            return Url(output if is_url(output) else Path(output).absolute().as_uri())
        return base / relative if base is not None else file.with_suffix(new_suffix)

    return unique_outputs([Job(file, target(file, relative)) for file, relative in inputs], str, errors), errors
