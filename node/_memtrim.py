"""Give freed heap memory back to the system after a burst of work (issue 14).

A catch-up or a batch of writes allocates and frees many small buffers (decoded
pages, SQL rows, msgpack, signatures); glibc keeps the freed pages of its main
heap mapped unless they are at the very top, so a node's RSS stays at its
high-water mark. `malloc_trim(0)` releases every whole free page. Measured on
four bench nodes right after `bench sync --events 10000` (gdb-attached calls,
2026-11-29): 1.5-3 MB each, in a few milliseconds.

The loop below trims once the ledger has grown by TRIM_EVERY_EVENTS since the
last trim and then gone quiet for a poll, so a node trims after a catch-up or a
burst of writes, not in the middle of one, and never when idle. Where glibc's
malloc_trim is missing (macOS, musl), it does nothing.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable

import trio

__all__ = ["TRIM_EVERY_EVENTS", "malloc_trim", "trim_after_bursts"]

log = logging.getLogger(__name__)

TRIM_EVERY_EVENTS = 1000
_POLL_S = 0.5


def _load() -> Callable[[int], int] | None:
    # The process's own symbols: libc is loaded already. (ctypes.util.find_library
    # ran `ldconfig -p` in a subprocess, 12 ms of every node's start.)
    try:
        fn = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


_TRIM = _load()


def malloc_trim() -> bool:
    """Release free heap pages to the system; False where glibc's malloc_trim
    is not available."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


async def trim_after_bursts(count: Callable[[], int], poll_s: float = _POLL_S) -> None:
    """Forever: trim once `count()` (the ledger's events) has grown by at least
    TRIM_EVERY_EVENTS since the last trim and did not change during the last poll."""
    if _TRIM is None:
        return
    trimmed_at = last = count()
    while True:
        await trio.sleep(poll_s)
        now = count()
        if now == last and now - trimmed_at >= TRIM_EVERY_EVENTS:
            malloc_trim()
            trimmed_at = now
            log.debug("malloc_trim after %d events", now)
        last = now
