"""The ``neuralzip`` command's entry point, kept outside the ``neuralzip`` package.

Importing the package (numpy, Pillow, constriction, Click) takes about half a second, and
a Ctrl-C or SIGTERM then would print a KeyboardInterrupt traceback or end the command
without a word. This module is all that Python imports before ``main`` runs: it handles
both signals first, so that during the imports they end the command at once with the
same one line as later (``neuralzip: error: interrupted``, exit status 130; ``...
terminated``, 143); nothing has been written yet. ``neuralzip.cli.entry`` then handles
them for the rest of the run (``neuralzip.interrupt``: outputs and worker processes are
cleaned up first). A signal ignored by the command's parent (``nohup``, ``cmd &`` in a
script) stays ignored.
"""

import os
import signal

_EXITS = {signal.SIGINT: ("interrupted", 130), signal.SIGTERM: ("terminated", 143)}  # as neuralzip.interrupt


def _exit_now(signum, frame):
    message, code = _EXITS[signum]
    os.write(2, f"neuralzip: error: {message}\n".encode())
    os._exit(code)


def main():
    for signum in _EXITS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _exit_now)
    from neuralzip.cli import entry

    entry()
