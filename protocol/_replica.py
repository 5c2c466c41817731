"""A replica: the set of events one node holds, and the state folded from it.

Sans-IO: events in (already decoded and signature-checked), outcomes out. An
event waits until its prev and refs are applied; a second event at an
(author, seq) that is already taken is a fork, recorded as an equivocation
proof. When a fork voids events that were already folded, the state is rebuilt
from the events in their original apply order, which is a valid causal order.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field

from ._errors import RemoteProtocolError
from ._event import Event, decode_event
from ._genesis import Genesis
from ._state import State

__all__ = ["EquivocationProof", "Outcome", "Replica"]

_BAD_PREV = ("bad_prev", "prev is not the author's previous event")


@dataclass(frozen=True, slots=True)
class EquivocationProof:
    """Two validly signed events by one author with the same seq. Anyone can
    check it alone with `verify` (no ledger needed)."""

    first: bytes
    second: bytes

    def verify(self, network: bytes, max_event_bytes: int = 1 << 20) -> tuple[bytes, int]:
        """Return (author, seq) if this proves a fork, else raise RemoteProtocolError."""
        a = decode_event(self.first, max_event_bytes, network)
        b = decode_event(self.second, max_event_bytes, network)
        if a.author != b.author or a.seq != b.seq:
            raise RemoteProtocolError(
                "bad_proof", "the two events are not at the same author and seq"
            )
        if a.id == b.id:
            raise RemoteProtocolError("bad_proof", "the two events are the same event")
        return a.author, a.seq


@dataclass(slots=True)
class Outcome:
    """What one `add` did: applied lists every event that took its place in the
    fold (the added one and any waiters it released), void holds the reasons of
    those among them that had no effect."""

    status: str  # applied | pending | duplicate | rejected
    applied: list[Event] = field(default_factory=list)
    void: dict[bytes, tuple[str, str]] = field(default_factory=dict)
    rejected: dict[bytes, tuple[str, str]] = field(default_factory=dict)
    missing: set[bytes] = field(default_factory=set)
    forks: list[EquivocationProof] = field(default_factory=list)
    rebuilt: bool = False


class Replica:
    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.network = genesis.network_id
        self.max_event_bytes = genesis.params.max_event_bytes
        self.state = State(genesis)
        # Applied events, in apply order. A store may swap in a mapping that keeps
        # only the ids in memory and reads the bytes back (ledger._StoredRaw).
        self.raw: MutableMapping[bytes, bytes] = {}
        # The two per-event indexes share one (author, seq) tuple per event, and
        # each chain one author bytes object, taken from its prev's slot (_slot_of):
        # about 0.13 KB per event less than a tuple and an author copy per index
        # (issue 14, memory). No new attribute: ledger/_snapshot.py checks the shape.
        self._slot: dict[bytes, tuple[bytes, int]] = {}  # applied id -> (author, seq)
        self._by_slot: dict[tuple[bytes, int], bytes] = {}  # first id seen at (author, seq)
        self.heads: dict[bytes, int] = {}  # author -> highest applied seq
        self.pending: dict[bytes, Event] = {}
        self._missing: dict[bytes, int] = {}  # pending id -> deps still missing
        self._waiters: dict[bytes, list[bytes]] = {}  # missing dep -> pending ids
        self.proofs: dict[bytes, EquivocationProof] = {}  # author -> proof at its lowest fork
        # Events refused for a bad prev: still signed claims at their (author, seq),
        # so kept as fork evidence, or a fork would be seen in one order and not another.
        self.rejected: dict[bytes, bytes] = {}

    # -- reading ----------------------------------------------------------------

    def has(self, eid: bytes) -> bool:
        return eid in self.raw or eid in self.pending

    def head(self, author: bytes) -> tuple[int, bytes | None]:
        """(seq, id) of the author's latest applied event, (0, None) if none."""
        seq = self.heads.get(author, 0)
        return seq, (self._by_slot.get((author, seq)) if seq else None)

    def missing_deps(self) -> set[bytes]:
        """Ids that waiting events need and this replica does not hold at all
        (a dependency that is itself waiting is not missing: its own missing
        dependencies are listed instead)."""
        return {d for d in self._waiters if d not in self.pending}

    def digest(self) -> bytes:
        return self.state.digest()

    # -- writing ----------------------------------------------------------------

    def add(self, ev: Event) -> Outcome:
        if ev.network != self.network:
            return Outcome(
                "rejected", rejected={ev.id: ("wrong_network", "event belongs to another network")}
            )
        if ev.id in self.raw or ev.id in self.pending:
            return Outcome("duplicate")
        if ev.id in self.rejected:
            return Outcome("rejected", rejected={ev.id: _BAD_PREV})
        out = Outcome("pending")
        slot = self._detect_fork(ev, out)
        deps = set(ev.refs)
        if ev.prev is not None:
            deps.add(ev.prev)
        missing = {d for d in deps if d not in self.raw}
        if missing:
            self.pending[ev.id] = ev
            self._missing[ev.id] = len(missing)
            for d in missing:
                self._waiters.setdefault(d, []).append(ev.id)
            out.missing = missing
            return out
        self._apply_ready(ev, out, slot)
        if ev.id in self.raw:
            out.status = "applied"
        elif ev.id in out.rejected:
            out.status = "rejected"
        return out

    def _slot_of(self, ev: Event) -> tuple[bytes, int]:
        """(author, seq), with the author bytes object of ev's prev when it is held."""
        if ev.prev is not None:
            prev = self._slot.get(ev.prev)
            if prev is not None and prev[0] == ev.author:
                return (prev[0], ev.seq)
        return (ev.author, ev.seq)

    def _detect_fork(self, ev: Event, out: Outcome) -> tuple[bytes, int]:
        """Record ev's claim on its (author, seq); returns that slot."""
        slot = self._slot_of(ev)
        other = self._by_slot.get(slot)
        if other is None:
            self._by_slot[slot] = ev.id
            return slot
        other_raw = self.raw.get(other) or self.rejected.get(other)
        if other_raw is None:
            pend = self.pending.get(other)
            if pend is None:
                return slot
            other_raw = pend.raw
        proof = EquivocationProof(other_raw, ev.raw)
        out.forks.append(proof)
        known = self.state.forks.get(ev.author)
        if known is None or ev.seq < known:
            self.proofs[ev.author] = proof
            self.state.forks[ev.author] = ev.seq
            if any(a == ev.author and s >= ev.seq for a, s in self._slot.values()):
                self.rebuild()
                out.rebuilt = True
        return slot

    def add_proof(self, proof: EquivocationProof) -> bool:
        """Record a fork from its proof alone (the evidence need not be held):
        True when it lowered the author's fork seq. Raises RemoteProtocolError
        for a proof that does not verify."""
        author, seq = proof.verify(self.network, self.max_event_bytes)
        known = self.state.forks.get(author)
        if known is not None and known <= seq:
            return False
        self.proofs[author] = proof
        self.state.forks[author] = seq
        if any(a == author and s >= seq for a, s in self._slot.values()):
            self.rebuild()
        return True

    def _apply_ready(self, ev: Event, out: Outcome, slot: tuple[bytes, int]) -> None:
        queue = [ev]
        while queue:
            e = queue.pop()
            e_slot = slot if e is ev else self._slot_of(e)
            if e.prev is not None:
                prev = self._slot.get(e.prev)
                if prev != (e.author, e.seq - 1):
                    # Its dependents will wait forever: they are garbage too.
                    out.rejected[e.id] = _BAD_PREV
                    self.rejected[e.id] = e.raw
                    continue
            void = self.state.apply(e)
            self.raw[e.id] = e.raw
            self._slot[e.id] = e_slot
            if e.seq > self.heads.get(e.author, 0):
                self.heads[e.author] = e.seq
            out.applied.append(e)
            if void is not None:
                out.void[e.id] = void
            for w in self._waiters.pop(e.id, ()):
                n = self._missing[w] - 1
                if n:
                    self._missing[w] = n
                else:
                    del self._missing[w]
                    queue.append(self.pending.pop(w))

    def drop_pending(self, eid: bytes) -> None:
        """Forget a waiting event (the caller's memory bound)."""
        ev = self.pending.pop(eid, None)
        if ev is None:
            return
        del self._missing[eid]
        for d in {*ev.refs, *([ev.prev] if ev.prev else [])}:
            ws = self._waiters.get(d)
            if ws and eid in ws:
                ws.remove(eid)
                if not ws:
                    del self._waiters[d]
        if self._by_slot.get((ev.author, ev.seq)) == eid:
            del self._by_slot[(ev.author, ev.seq)]

    def rebuild(self) -> None:
        """Fold every applied event again, in apply order, under the current forks."""
        forks = dict(self.state.forks)
        self.state = State(self.genesis)
        self.state.forks.update(forks)
        for raw in self.raw.values():
            self.state.apply(decode_event(raw, self.max_event_bytes, self.network, verify=False))

    def load(self, raws: Iterable[bytes], verify: bool = False) -> None:
        """Re-apply events already known valid, in their stored apply order (restart)."""
        for raw in raws:
            ev = decode_event(raw, self.max_event_bytes, self.network, verify=verify)
            out = self.add(ev)
            if out.status not in ("applied", "duplicate"):
                raise RemoteProtocolError(
                    "replay", f"stored event {ev.id.hex()[:12]} did not apply: {out.status}"
                )
