"""Peak memory of one call, in MiB above what the process held before it.

On Linux the kernel's resident-set high-water mark (``VmHWM``) is reset before the call
(``/proc/self/clear_refs``) and read after it: this counts every allocation, C libraries'
included. Elsewhere ``tracemalloc`` is used, which sees only allocations made through
Python's allocators (numpy arrays included, C libraries' own buffers not).
"""

from __future__ import annotations

import re
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
MIB = 1 << 20
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int:
    return int(re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.M).group(1))


def _reset_rss_peak() -> bool:
    """Reset the kernel's RSS high-water mark; False where that is not possible."""
    try:
        _CLEAR_REFS.write_text("5")
        return _status_kib("VmHWM") > 0
    except (OSError, AttributeError):
        return False


def method() -> str:
    """How ``peak_mib`` measures, in words (for the results file)."""
    if _reset_rss_peak():
        return "peak RSS growth (Linux VmHWM reset through /proc/self/clear_refs before each call)"
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
