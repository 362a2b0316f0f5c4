"""Writing a file all at once or not at all."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .interrupt import deferred

_UMASK = os.umask(0o022)  # read the process umask (os.umask can only swap it) ...
os.umask(_UMASK)  # ... and put it back


class OutputExists(FileExistsError):
    """The output file exists and overwriting was not asked for."""


def check_writable(path: Path, overwrite: bool) -> None:
    """Raise OutputExists if anything is at ``path`` (a symbolic link too, dangling or not)
    and ``overwrite`` is false."""
    if not overwrite and os.path.lexists(path):
        raise OutputExists(f"{path} already exists")


@contextlib.contextmanager
def atomic_output(path: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends normally, publish it as
    ``path``, else (an exception, Ctrl-C) delete it. The file gets the usual permissions
    (0o666 less the umask), not mkstemp's 0o600.

    Without ``overwrite`` the file is published with a no-clobber primitive (a hard link,
    or where the file system has none an ``O_EXCL`` create): of several processes writing
    the same path at once exactly one succeeds, the others raise OutputExists, and nothing
    that appeared at ``path`` meanwhile is replaced. With ``overwrite`` it is renamed over
    ``path``. A symbolic link at ``path`` is an existing output: refused without
    ``overwrite``, and with it the link itself is replaced by the file; its target is
    never written through.

    SIGINT and SIGTERM, as the command handles them (``neuralzip.interrupt``), remove the
    temporary file at any moment: none is left behind.
    """
    check_writable(path, overwrite)
    tmp = None
    try:
        with deferred():  # a signal (as the command handles them) waits until tmp is known
            try:
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
            except OSError as exc:  # named as the user's path, not the temporary one
                raise type(exc)(exc.errno, exc.strerror, str(path)) from None
            os.close(fd)
        os.chmod(tmp, 0o666 & ~_UMASK)
        yield Path(tmp)
        with deferred():  # published whole, and the temporary name removed, or neither
            if overwrite:
                os.replace(tmp, path)
            else:
                _publish_new(Path(tmp), path)
                os.unlink(tmp)
    finally:
        if tmp is not None:
            with deferred(), contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _publish_new(tmp: Path, path: Path) -> None:
    """Give ``tmp``'s file the name ``path`` unless something has that name already."""
    try:
        os.link(tmp, path, follow_symlinks=False)
        return
    except FileExistsError:
        raise OutputExists(f"{path} already exists") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            raise
    try:  # no hard links here (FAT, some network and FUSE file systems)
        out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    except FileExistsError:
        raise OutputExists(f"{path} already exists") from None
    try:
        with os.fdopen(out, "wb") as target, tmp.open("rb") as source:
            shutil.copyfileobj(source, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise


def write_atomically(path: Path, data: bytes, overwrite: bool) -> None:
    """Write ``data`` to ``path`` through ``atomic_output``."""
    with atomic_output(path, overwrite) as tmp:
        tmp.write_bytes(data)
