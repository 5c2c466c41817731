"""node/_memtrim.py: freed heap pages go back to the system after a burst of
work, and the node's loop trims after a burst, not during one or when idle."""

from __future__ import annotations

import subprocess
import sys

import pytest
import trio
import trio.testing
from learnmesh.node import _memtrim


def test_malloc_trim_returns_freed_heap_pages() -> None:
    """In a fresh process: 60 MB of 1 KB buffers (glibc's heap, not Python's small
    object arenas), every other one freed, then the rest but the last: the heap
    top stays pinned, so only malloc_trim gives the holes back."""
    code = (
        "import psutil\n"
        "from learnmesh.node._memtrim import malloc_trim\n"
        "p = psutil.Process()\n"
        "bufs = [bytes(1000) + bytes([i % 256]) for i in range(60_000)]\n"
        "keep = bufs[-1]\n"
        "del bufs[1::2]\n"
        "del bufs[:-1]\n"
        "before = p.memory_info().rss\n"
        "ok = malloc_trim()\n"
        "after = p.memory_info().rss\n"
        "print(ok, (before - after) // 2**20)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    ok, freed_mb = out.stdout.split()
    assert ok == "True"
    assert int(freed_mb) >= 20


async def test_the_loop_trims_after_a_burst_and_not_during_one(
    monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    calls: list[int] = []
    counts = iter([0] + [0] * 3 + list(range(0, 5000, 500)) + [5000] * 5 + [5100] * 5)
    current = [0]

    def count() -> int:
        current[0] = next(counts, current[0])
        return current[0]

    def fake_trim() -> bool:
        calls.append(current[0])
        return True

    monkeypatch.setattr(_memtrim, "malloc_trim", fake_trim)
    with trio.move_on_after(60):
        await _memtrim.trim_after_bursts(count, poll_s=1.0)
    # Idle at 0: no trim; growing 0..4500: none while it grows; quiet at 5000: one;
    # 5100 is under TRIM_EVERY_EVENTS more: none.
    assert calls == [5000]
