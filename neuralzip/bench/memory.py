"""Peak memory of one call, in MiB above what the process held before it.

On Linux the C heap's free pages are first given back to the system (glibc
``malloc_trim``), then the kernel's resident-set high-water mark (``VmHWM``) is reset
(``/proc/self/clear_refs``) and read after the call: this counts every allocation, C
libraries' included, less what the call reuses of memory the process still holds.
Elsewhere ``tracemalloc`` is used, which sees only allocations made through Python's
allocators (numpy arrays included, C libraries' own buffers not).
"""

from __future__ import annotations

import ctypes
import re
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
MIB = 1 << 20
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_malloc_trim: Callable[[int], int] | None
try:
    _malloc_trim = ctypes.CDLL(None).malloc_trim
except (AttributeError, OSError, TypeError):  # not glibc
    _malloc_trim = None


def _status_kib(field: str) -> int:
    found = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.M)
    if found is None:
        raise LookupError(f"{_STATUS} has no {field}")
    return int(found.group(1))


def _reset_rss_peak() -> bool:
    """Trim the C heap and reset the kernel's RSS high-water mark; False where that is not possible."""
    if _malloc_trim is not None:
        _malloc_trim(0)
    try:
        _CLEAR_REFS.write_text("5")
        return _status_kib("VmHWM") > 0
    except (OSError, LookupError):
        return False


def method() -> str:
    """How ``peak_mib`` measures, in words (for the results file)."""
    if _reset_rss_peak():
        return "peak RSS growth (Linux VmHWM, reset through /proc/self/clear_refs after malloc_trim before each call)"
    return "tracemalloc peak (Python and numpy allocations only)"


def peak_mib(call: Callable[[], T]) -> tuple[T, float]:
    """(``call()``, peak memory above the level before the call, MiB)."""
    if _reset_rss_peak():
        before = _status_kib("VmRSS")
        result = call()
        return result, max(0, _status_kib("VmHWM") - before) / 1024
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        result = call()
        return result, max(0, tracemalloc.get_traced_memory()[1] - base) / MIB
    finally:
        if not tracing:
            tracemalloc.stop()
