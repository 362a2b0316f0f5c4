"""SIGINT (Ctrl-C) and SIGTERM in the ``neuralzip`` command: clean up, then one line.

``install()`` (the command calls it first thing) makes both signals raise ``Interrupted``
in the main thread. It is not a KeyboardInterrupt, so Click does not turn it into
"Aborted!" and ``except Exception`` does not catch it: it unwinds every ``finally`` on its
way (temporary files removed, worker processes terminated) up to the command's entry,
which prints ``neuralzip: error: interrupted`` (exit status 130) or ``... terminated``
(143). A second signal while that clean-up runs is ignored, and so is one once the
command's work is over (``done()``). A signal that the command's parent ignores
(``nohup``, ``cmd &`` in a script) stays ignored.

``deferred()`` holds a signal for the few system calls that must not be separated
(creating a temporary file and noting its name; publishing it and removing its temporary
name) and raises it when they are done.

Without ``install()`` (neuralzip used as a library) nothing here changes how Python
handles signals.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

EXITS: dict[int, tuple[str, int]] = {signal.SIGINT: ("interrupted", 130), signal.SIGTERM: ("terminated", 143)}

_state = threading.local()  # only the main thread's is used: signal handlers run there
_pending: list[int] = []  # a signal held by deferred()
_stopping = False  # Interrupted has been raised: the command is cleaning up


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; ``message`` and ``exit_code`` are the command's."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.message, self.exit_code = EXITS[signum]
        super().__init__(self.message)


def install() -> None:
    """Handle SIGINT and SIGTERM as described above (from the main thread)."""
    for signum in EXITS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _handler)


def done() -> None:
    """Ignore SIGINT and SIGTERM from here on: the command's work is over (or its clean-up
    has begun). Python's exit would otherwise restore their default action, and a signal
    in its last moments would end the process without its exit status."""
    global _stopping
    _stopping = True
    for signum in EXITS:
        signal.signal(signum, signal.SIG_IGN)


def _handler(signum: int, frame: object) -> None:
    global _stopping
    if _stopping:
        return
    if getattr(_state, "deferring", 0):
        if not _pending:
            _pending.append(signum)
        return
    _stopping = True
    raise Interrupted(signum)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM (as ``install()`` handles them) until the block ends, then
    raise Interrupted. Blocks nest; in a thread other than the main one this does
    nothing (no signal handler runs there)."""
    global _stopping
    _state.deferring = getattr(_state, "deferring", 0) + 1
    try:
        yield
    finally:
        _state.deferring -= 1
        if not _state.deferring and _pending and threading.current_thread() is threading.main_thread():
            signum = _pending.pop()
            _stopping = True
            raise Interrupted(signum)
