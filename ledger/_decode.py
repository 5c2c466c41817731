"""Decode and verify many events, optionally on worker threads."""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import TypeVar

from learnmesh.protocol import Event, RemoteProtocolError, decode_event

# PyNaCl (cffi) releases the GIL while libsodium checks a signature, so threads
# give real parallelism for the costliest step without pickling events.
__all__ = ["Decoder", "Refused", "event_id_of"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_CHUNK = 64  # events per task: big enough to amortise the hand-off, small enough to overlap


@dataclass(frozen=True, slots=True)
class Refused:
    """Bytes that are not a valid event of this network, and why."""

    id: bytes
    code: str
    reason: str


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

    def one(self, raw: bytes, verify: bool = True) -> Event | Refused:
        try:
            return decode_event(raw, self.max_event_bytes, self.network, verify=verify)
        except RemoteProtocolError as exc:
            return Refused(event_id_of(raw), exc.code, exc.reason)
        except Exception as exc:
            # A decoder bug must not let one peer's bytes take the node down.
            log.exception("decode_event raised on remote input")
            return Refused(event_id_of(raw), "internal", f"the decoder failed: {exc!r}")

    def _chunk(self, pairs: list[tuple[T, bytes]], verify: bool) -> list[tuple[T, Event | Refused]]:
        return [(tag, self.one(r, verify)) for tag, r in pairs]

    def decode(self, raws: Iterable[bytes], verify: bool = True) -> Iterator[Event | Refused]:
        """One result per input, in input order."""
        for _, item in self.decode_tagged(((None, r) for r in raws), verify):
            yield item

    def decode_tagged(
        self, pairs: Iterable[tuple[T, bytes]], verify: bool = True
    ) -> Iterator[tuple[T, Event | Refused]]:
        """Like `decode`, carrying a caller's tag with each input. With threads,
        later chunks are decoded while the caller works on earlier ones (a
        bounded window, so a long stream is never all in memory)."""
        if self._pool is None:
            for tag, r in pairs:
                yield tag, self.one(r, verify)
            return
        window: deque[Future[list[tuple[T, Event | Refused]]]] = deque()
        it = iter(pairs)
        while chunk := list(islice(it, _CHUNK)):
            window.append(self._pool.submit(self._chunk, chunk, verify))
            if len(window) > 2 * self.threads:
                yield from window.popleft().result()
        while window:
            yield from window.popleft().result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
