"""Helpers shared by tests that watch processes and decoders (imported as ``helpers``)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) a process has used; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class TookTooLong(Exception):
    """A decode that ran past its deadline."""


def deadline(seconds: float) -> Callable[[int, int], None]:
    """A progress callback that stops decoding (TookTooLong) once ``seconds`` have passed."""
    end = time.monotonic() + seconds

    def progress(done: int, total: int) -> None:
        if done < total and time.monotonic() > end:
            raise TookTooLong(f"still decoding after {seconds} s (step {done} of {total})")

    return progress
