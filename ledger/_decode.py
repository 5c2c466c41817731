"""Decode and verify many events, optionally on worker threads."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import TypeVar

from learnmesh.protocol import (
    BAD_SIGNATURE,
    Event,
    RemoteProtocolError,
    check_signature,
    decode_event,
)

# PyNaCl (cffi) releases the GIL while libsodium checks a signature, so threads
# give real parallelism for the costliest step without pickling events. The
# worker threads check signatures and nothing else: the strict decoding is
# Python that holds the GIL, so it runs on the caller's thread, and the workers
# spend their time where the GIL is free (decoding on them too measured slower
# than one thread: BENCHMARKS.md, "Ingest and replay per event").
__all__ = ["Decoder", "Refused", "event_id_of", "gc_paused"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_CHUNK = 64  # events per task: big enough to amortise the hand-off, small enough to overlap
_SIG_CHUNK = 256  # stored records per task in a signature pass (nothing to overlap with)


@dataclass(frozen=True, slots=True)
class Refused:
    """Bytes that are not a valid event of this network, and why."""

    id: bytes
    code: str
    reason: str


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while many events are folded: what the
    fold drops is freed by reference counting, but it allocates enough (and
    keeps enough alive in the state) that the collector's passes over it cost
    about a tenth of a replay (BENCHMARKS.md, "Ingest and replay per event").
    The collector runs again afterwards, over anything left."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def event_id_of(raw: object) -> bytes:
    """The id the bytes would have as an event (sha256), for reporting refusals."""
    if isinstance(raw, bytes | bytearray | memoryview):
        return hashlib.sha256(raw).digest()
    return bytes(32)


class Decoder:
    """Turns raw bytes into `Event`s or `Refused`, in input order."""

    def __init__(self, max_event_bytes: int, network: bytes, threads: int = 1) -> None:
        self.max_event_bytes = max_event_bytes
        self.network = network
        self.threads = max(1, threads)
        self._pool = (
            ThreadPoolExecutor(self.threads, thread_name_prefix="learnmesh-verify")
            if self.threads > 1
            else None
        )
        # Wall and CPU seconds the worker threads spent in their signature
        # tasks. The tasks do no I/O: the difference is time a worker waited
        # to get the GIL back after libsodium (bench ingest reports it).
        self._times_lock = threading.Lock()
        self.worker_wall_s = 0.0
        self.worker_cpu_s = 0.0

    def _timed(self, wall0: float, cpu0: float) -> None:
        wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
        with self._times_lock:
            self.worker_wall_s += wall
            self.worker_cpu_s += cpu

    def one(self, raw: bytes, verify: bool = True) -> Event | Refused:
        try:
            return decode_event(raw, self.max_event_bytes, self.network, verify=verify)
        except RemoteProtocolError as exc:
            return Refused(event_id_of(raw), exc.code, exc.reason)
        except Exception as exc:
            # A decoder bug must not let one peer's bytes take the node down.
            log.exception("decode_event raised on remote input")
            return Refused(event_id_of(raw), "internal", f"the decoder failed: {exc!r}")

    def _signatures(self, events: list[Event | Refused]) -> list[int]:
        """Positions of the events among `events` whose signature fails (a
        worker's task)."""
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        bad = [
            i
            for i, ev in enumerate(events)
            if isinstance(ev, Event) and not check_signature(ev.raw)
        ]
        self._timed(wall0, cpu0)
        return bad

    def _settle(
        self, chunk: list[tuple[T, Event | Refused]], bad: Future[list[int]]
    ) -> list[tuple[T, Event | Refused]]:
        for i in bad.result():
            tag, ev = chunk[i]
            chunk[i] = (tag, Refused(ev.id, "bad_signature", BAD_SIGNATURE))
        return chunk

    def decode(self, raws: Iterable[bytes], verify: bool = True) -> Iterator[Event | Refused]:
        """One result per input, in input order."""
        for _, item in self.decode_tagged(((None, r) for r in raws), verify):
            yield item

    def decode_tagged(
        self, pairs: Iterable[tuple[T, bytes]], verify: bool = True
    ) -> Iterator[tuple[T, Event | Refused]]:
        """Like `decode`, carrying a caller's tag with each input. With threads,
        this thread decodes (without the signature) and the workers check the
        signatures of each chunk while the caller works on earlier ones (a
        bounded window, so a long stream is never all in memory). The results
        are what `decode_event` with the signature check gives."""
        if self._pool is None or not verify:
            for tag, r in pairs:
                yield tag, self.one(r, verify)
            return
        window: deque[tuple[list[tuple[T, Event | Refused]], Future[list[int]]]] = deque()
        it = iter(pairs)
        while chunk := list(islice(it, _CHUNK)):
            decoded = [(tag, self.one(r, False)) for tag, r in chunk]
            window.append((decoded, self._pool.submit(self._signatures, [ev for _, ev in decoded])))
            if len(window) > 2 * self.threads:
                yield from self._settle(*window.popleft())
        while window:
            yield from self._settle(*window.popleft())

    def _bad_signatures(self, pairs: list[tuple[T, bytes]]) -> list[tuple[T, str]]:
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        out: list[tuple[T, str]] = []
        for tag, raw in pairs:
            ok = check_signature(raw)
            if ok is None:
                # Not laid out as an event: only a full decode can say if the
                # signature is what fails (anything else is for the fold's decode).
                item = self.one(raw, verify=True)
                if isinstance(item, Refused) and item.code == "bad_signature":
                    out.append((tag, item.reason))
            elif not ok:
                out.append((tag, BAD_SIGNATURE))
        self._timed(wall0, cpu0)
        return out

    def bad_signatures(self, pairs: Iterable[tuple[T, bytes]]) -> Iterator[tuple[T, str]]:
        """The inputs whose signature does not verify, with why, in input
        order: only the signature (`check_signature`), on every worker thread
        at once, while this thread only reads the next inputs. A pass over
        stored bytes whose other checks run elsewhere (`Ledger.verify`)."""
        it = iter(pairs)
        if self._pool is None:
            while chunk := list(islice(it, _SIG_CHUNK)):
                yield from self._bad_signatures(chunk)
            return
        window: deque[Future[list[tuple[T, str]]]] = deque()
        while chunk := list(islice(it, _SIG_CHUNK)):
            window.append(self._pool.submit(self._bad_signatures, chunk))
            if len(window) > 2 * self.threads:
                yield from window.popleft().result()
        while window:
            yield from window.popleft().result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
