"""Writing a file all at once or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_UMASK = os.umask(0o022)  # read the process umask (os.umask can only swap it) ...
os.umask(_UMASK)  # ... and put it back


class OutputExists(FileExistsError):
    """The output file exists and overwriting was not asked for."""


def check_writable(path: Path, overwrite: bool) -> None:
    """Raise OutputExists if ``path`` exists and ``overwrite`` is false."""
    if path.exists() and not overwrite:
        raise OutputExists(f"{path} already exists")


@contextlib.contextmanager
def atomic_output(path: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends normally, rename it to
    ``path``, else (an exception, Ctrl-C) delete it. Checks ``check_writable`` first.
    The file gets the usual permissions (0o666 less the umask), not mkstemp's 0o600."""
    check_writable(path, overwrite)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_atomically(path: Path, data: bytes, overwrite: bool) -> None:
    """Write ``data`` to ``path`` through ``atomic_output``."""
    with atomic_output(path, overwrite) as tmp:
        tmp.write_bytes(data)
