"""One append: fold events into the replica and write what changed in one
transaction. The in-memory bookkeeping follows only after the commit."""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Iterable
from typing import Any

from learnmesh.protocol import EquivocationProof, Event, Replica

from ._decode import Decoder, Refused, gc_paused
from ._results import AppendResult, AppendResults
from ._store import EventInsert, Store, StoredRaw

__all__ = ["Appender", "proof_key"]

log = logging.getLogger(__name__)

_BAD_PREV = ("bad_prev", "prev is not the author's previous event")
_NO_VOID = (None, None)


def proof_key(first: bytes, second: bytes) -> bytes:
    """Names a fork proof whichever order its two events come in."""
    a, b = sorted((hashlib.sha256(first).digest(), hashlib.sha256(second).digest()))
    return hashlib.sha256(a + b).digest()


def _unpend(eid: bytes, new_pending: dict[bytes, bytes], gone: list[bytes]) -> None:
    """An event left the pending set: drop it from this call's inserts, or
    delete its stored row (it was stored by an earlier call)."""
    if new_pending.pop(eid, None) is None:
        gone.append(eid)


class Appender:
    """What appends need to know about the store besides the replica: the next
    apply index, the rejects and proofs already stored, the pending bound."""

    def __init__(self, store: Store, decoder: Decoder, max_pending: int) -> None:
        self.store = store
        self.decoder = decoder
        self.max_pending = max_pending
        self.pending_dropped = 0
        self.next_idx = 1
        self.rejected_ids: set[bytes] = set()
        self.proof_keys: set[bytes] = set()

    def reset(self, top_idx: int, rejected_ids: set[bytes], proof_keys: set[bytes]) -> None:
        self.next_idx = top_idx + 1
        self.rejected_ids = rejected_ids
        self.proof_keys = proof_keys

    def ingest(
        self, rep: Replica, items: Iterable[Event | Refused], durable: bool = True
    ) -> AppendResults:
        """Fold and store (`durable`: see `Store.commit`). If this raises, the
        replica may hold what the store does not: the caller folds it again from
        the store."""
        with gc_paused():
            return self._ingest(rep, items, durable)

    def _ingest(
        self, rep: Replica, items: Iterable[Event | Refused], durable: bool
    ) -> AppendResults:
        max_bytes = rep.max_event_bytes
        results: list[AppendResult] = []
        rows: list[EventInsert] = []
        void_of: dict[bytes, tuple[str, str]] = {}
        new_pending: dict[bytes, bytes] = {}
        gone_pending: list[bytes] = []
        new_rejected: dict[bytes, bytes] = {}
        new_proofs: dict[bytes, dict[str, Any]] = {}
        applied_events: list[Event] = []
        idx = self.next_idx
        for item in items:
            if isinstance(item, Refused):
                results.append(AppendResult("rejected", item.id, item.code, item.reason))
                continue
            ev = item
            if len(ev.raw) > max_bytes:
                results.append(
                    AppendResult("rejected", ev.id, "oversize", f"over {max_bytes} bytes")
                )
                continue
            out = rep.add(ev)
            for e in out.applied:
                void = out.void.get(e.id)
                if void is not None:
                    void_of[e.id] = void
                # In the order of the store's EVENT_COLUMNS.
                rows.append(
                    (
                        idx,
                        e.id,
                        e.author,
                        e.seq,
                        e.kind.code,
                        e.timestamp,
                        e.raw,
                        *(void or _NO_VOID),
                    )
                )
                idx += 1
                applied_events.append(e)
                if e.id != ev.id:
                    _unpend(e.id, new_pending, gone_pending)
            for rid in out.rejected:
                kept = rep.rejected.get(rid)
                if kept is not None and rid not in self.rejected_ids:
                    new_rejected[rid] = kept
                if rid != ev.id:
                    _unpend(rid, new_pending, gone_pending)
            if out.status == "pending":
                new_pending[ev.id] = ev.raw
            for p in out.forks:
                key = proof_key(p.first, p.second)
                if key not in self.proof_keys and key not in new_proofs:
                    a = self.decoder.one(p.first, verify=False)
                    author, seq = (a.author, a.seq) if isinstance(a, Event) else (ev.author, ev.seq)
                    new_proofs[key] = {
                        "key": key,
                        "author": author,
                        "seq": seq,
                        "first": p.first,
                        "second": p.second,
                    }
            code, reason = out.rejected.get(ev.id, (None, None))
            results.append(AppendResult(out.status, ev.id, code, reason))
        over = len(rep.pending) - self.max_pending
        if over > 0:
            # Events waiting for dependencies that may never come (anyone can sign
            # orphans): the oldest go first, from memory and disk. A real one is
            # fetched again by sync once its dependencies are here.
            for eid in list(itertools.islice(rep.pending, over)):
                rep.drop_pending(eid)
                _unpend(eid, new_pending, gone_pending)
            self.pending_dropped += over
            log.warning("pending pool over %d: dropped the %d oldest", self.max_pending, over)
        # Inputs that waited and were released later in this same call.
        for i, r in enumerate(results):
            if r.status == "pending":
                if r.id in rep.raw:
                    v = void_of.get(r.id)
                    results[i] = AppendResult("applied", r.id, *(v or (None, None)))
                elif r.id in rep.rejected:
                    results[i] = AppendResult("rejected", r.id, *_BAD_PREV)
            elif r.status == "applied" and r.id in void_of:
                results[i] = AppendResult("applied", r.id, *void_of[r.id])
        self.store.commit(
            rows, gone_pending, new_pending, new_rejected, list(new_proofs.values()), durable
        )
        # Committed: from here on the in-memory bookkeeping may follow.
        self.next_idx = idx
        if isinstance(rep.raw, StoredRaw):
            rep.raw.committed()
        self.rejected_ids.update(new_rejected)
        self.proof_keys.update(new_proofs)
        # Everything this call applied that no result reports as applied: waiters
        # released by an input, including a waiter whose re-sent copy came back
        # "duplicate" (gossip, then the same event in a sync page).
        reported = {r.id for r in results if r.status == "applied"}
        released = [e for e in applied_events if e.id not in reported]
        fresh = [EquivocationProof(p["first"], p["second"]) for p in new_proofs.values()]
        return AppendResults(results, released, fresh)
