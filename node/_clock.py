"""The node's wall clock, which a test or devnet may move forward.

A node started with `--admin` (devnets and tests only) reads its wall clock as
the system's time plus an offset that `POST /api/admin/clock` moves forward, so
a test can pass a dispute's `vote_by` and `reveal_by` without waiting for them.
Only the wall clock moves (event timestamps, deadlines); the node's monotonic
clock (timeouts, bans, rate limits) never does.

The offset is kept in `clock.json` in the data directory, so a node that restarts
comes back with its clock where it was; a harness advances a node that is down by
moving that file (`advance_offset_file`), so every node of a network keeps the
same clock. A node started without `--admin` never reads the file: its clock is
the system's.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "CLOCK_FILE",
    "MAX_ADVANCE_MS",
    "ClockError",
    "OffsetClock",
    "advance_offset_file",
    "check_advance",
    "read_offset",
]

CLOCK_FILE = "clock.json"
MAX_ADVANCE_MS = 24 * 3600 * 1000  # one call moves the clock at most a day


class ClockError(ValueError):
    """An advance the clock refuses, or an unreadable clock file; the message says why."""


def check_advance(ms: object) -> int:
    """`ms` as a forward step of the clock; `ClockError` (a readable reason) otherwise."""
    if not isinstance(ms, int) or isinstance(ms, bool):
        raise ClockError("advance_ms must be a whole number of milliseconds")
    if ms <= 0:
        raise ClockError("advance_ms must be > 0: the clock only moves forward")
    if ms > MAX_ADVANCE_MS:
        raise ClockError(
            f"advance_ms must be ≤ {MAX_ADVANCE_MS} (one day) per call; call again to go further"
        )
    return ms


def read_offset(data_dir: Path) -> int:
    """The offset (ms) kept in the data directory; 0 without a file."""
    path = data_dir / CLOCK_FILE
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return 0
    try:
        v = json.loads(raw)["offset_ms"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ClockError(f"{path} is not a clock file ({{\"offset_ms\": N}}): {exc}") from None
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ClockError(f"{path}: offset_ms must be a whole number ≥ 0, not {v!r}")
    return v


def _write_offset(data_dir: Path, offset_ms: int) -> None:
    path = data_dir / CLOCK_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"offset_ms": offset_ms}) + "\n")
    os.replace(tmp, path)


def advance_offset_file(data_dir: Path, ms: int) -> int:
    """Move the offset kept in `data_dir` forward by `ms` (for a node that is not
    running: it starts with it); the new offset."""
    off = read_offset(data_dir) + check_advance(ms)
    _write_offset(data_dir, off)
    return off


class OffsetClock:
    """A wall clock (seconds, like `time.time`): `base()` plus an offset that only
    moves forward, kept in `data_dir` when one is given."""

    def __init__(
        self, data_dir: Path | None = None, base: Callable[[], float] = time.time
    ) -> None:
        self._dir = data_dir
        self._base = base
        self._offset_ms = read_offset(data_dir) if data_dir is not None else 0

    def __call__(self) -> float:
        return self._base() + self._offset_ms / 1000

    @property
    def offset_ms(self) -> int:
        return self._offset_ms

    def advance(self, ms: int) -> int:
        """Move the clock forward by `ms` (checked: > 0, ≤ a day); the new time in ms.
        The offset is written to the data directory before it takes effect."""
        off = self._offset_ms + check_advance(ms)
        if self._dir is not None:
            _write_offset(self._dir, off)
        self._offset_ms = off
        return int(self() * 1000)
