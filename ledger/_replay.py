"""The one replay: records in order (applied events, kept rejects, pending
events, fork proofs), decoded (signatures checked if asked), fed to a target,
one outcome out per record. Opening a ledger, `verify` and import all use it;
they differ only in their source, their target and what they do with outcomes.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple, Protocol

from learnmesh.protocol import (
    EquivocationProof,
    Event,
    Genesis,
    RemoteProtocolError,
    Replica,
    decode_event,
)

from ._decode import Decoder, Refused, gc_paused
from ._errors import CorruptLedgerError
from ._results import VerifyReport
from ._store import Store

__all__ = [
    "EXPECTED",
    "Outcome",
    "Record",
    "ReplicaTarget",
    "Result",
    "Target",
    "Verdict",
    "mismatch",
    "replay",
    "replay_stored",
    "stored_records",
    "verify_store",
]

# What each kind of record must do when a ledger's own records are replayed in order.
EXPECTED = {"event": "applied", "rejected": "rejected", "pending": "pending", "proof": "applied"}
_MISSING = "its prev or refs are missing"
_MAX_PROBLEMS = 50
_REPLAY_BATCH = 256


class Record(NamedTuple):
    """One thing to replay. `section` is event, rejected, pending or proof; `n`
    names it in messages (apply index, row or record number); a proof's two
    events are `raw` and `second`; `columns` are what the store says about an
    event (id, author, seq, kind code, timestamp), checked against its bytes."""

    section: str
    n: int
    raw: bytes
    second: bytes = b""
    columns: tuple[bytes, bytes, int, int, int] | None = None


class Result(Protocol):
    """What a target did with one event: an AppendResult, or a Verdict."""

    @property
    def status(self) -> str: ...
    @property
    def id(self) -> bytes: ...
    @property
    def code(self) -> str | None: ...
    @property
    def reason(self) -> str | None: ...


class Verdict(NamedTuple):
    """A Result without the cost of a frozen dataclass (one per replayed event)."""

    status: str
    id: bytes
    code: str | None = None
    reason: str | None = None


class Outcome(NamedTuple):
    record: Record
    event: Event | None  # None when the bytes did not decode (or for a proof)
    result: Result


class Target(Protocol):
    """Where replayed records go: a bare replica, or a ledger that stores them."""

    def add(self, events: Sequence[Event]) -> Sequence[Result]:
        """One result per event, in order."""
        ...

    def add_proof(self, proof: EquivocationProof) -> Sequence[Result]:
        """At least one result; status applied when the proof was taken."""
        ...


_NO_VOID = (None, None)


class ReplicaTarget:
    """Folds into a replica in memory (opening a ledger, verify)."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica

    def add(self, events: Sequence[Event]) -> list[Verdict]:
        out = []
        add = self.replica.add
        for ev in events:
            o = add(ev)
            if o.status == "applied":
                out.append(Verdict("applied", ev.id, *o.void.get(ev.id, _NO_VOID)))
            else:
                why = _MISSING if o.status == "pending" else "it was already there"
                out.append(Verdict(o.status, ev.id, *o.rejected.get(ev.id, (o.status, why))))
        return out

    def add_proof(self, proof: EquivocationProof) -> list[Verdict]:
        # A proof whose evidence is no longer held (a waiting event dropped from
        # the bounded pool) still proves the fork: the state must not forget it.
        try:
            self.replica.add_proof(proof)
        except RemoteProtocolError as exc:
            return [Verdict("rejected", b"", exc.code, exc.reason)]
        return [Verdict("applied", b"")]


def stored_records(
    store: Store, *, after_idx: int = 0, after_rejected: int = 0, columns: bool = False
) -> Iterator[Record]:
    """A ledger's own records in replay order: applied events after `after_idx`,
    kept rejects after row `after_rejected`, every pending event, every proof."""
    for idx, eid, author, seq, kind, ts, raw in store.stream_events(after_idx):
        yield Record("event", idx, raw, b"", (eid, author, seq, kind, ts) if columns else None)
    for n, _id, raw in store.stream_rejected(after_rejected):
        yield Record("rejected", n, raw)
    for n, _id, raw in store.stream_pending():
        yield Record("pending", n, raw)
    for n, p in enumerate(store.fork_proofs(), 1):
        yield Record("proof", n, p.first, p.second)


def replay(
    records: Iterable[Record],
    decoder: Decoder,
    target: Target,
    *,
    verify: bool,
    batch: int = 1,
) -> Iterator[Outcome]:
    """Decode each record (on the decoder's threads), feed events to `target`
    in batches of up to `batch` (never across a change of section), and yield
    one outcome per record, in order (a proof may yield more than one)."""
    recs: list[Record] = []
    evs: list[Event] = []
    section = ""

    def flush() -> Iterator[Outcome]:
        nonlocal recs, evs
        if evs:
            batch_recs, batch_evs = recs, evs
            recs, evs = [], []
            results = target.add(batch_evs)
            for rec, ev, res in zip(batch_recs, batch_evs, results, strict=True):
                yield Outcome(rec, ev, res)

    pairs = ((rec, rec.raw if rec.section != "proof" else b"") for rec in records)
    for rec, item in decoder.decode_tagged(pairs, verify=verify):
        if evs and (rec.section != section or len(evs) >= batch):
            yield from flush()
        section = rec.section
        if section == "proof":
            yield from flush()
            for res in target.add_proof(EquivocationProof(rec.raw, rec.second)):
                yield Outcome(rec, None, res)
        elif isinstance(item, Refused):
            yield from flush()
            yield Outcome(rec, None, Verdict("rejected", item.id, item.code, item.reason))
        else:
            recs.append(rec)
            evs.append(item)
    yield from flush()


def mismatch(o: Outcome) -> str | None:
    """Why a ledger's own record did not replay as it was stored, or None."""
    rec, res = o.record, o.result
    if o.event is not None and res.status == EXPECTED[rec.section]:
        return None  # the common case first
    if rec.section == "proof":
        if res.status == "applied":
            return None
        return f"a stored fork proof does not verify: {res.reason}"
    if o.event is None:
        what = {"event": "event #", "rejected": "rejected row ", "pending": "pending row "}
        eid = res.id.hex()[:12]
        return f"{what[rec.section]}{rec.n} ({eid}) fails verification: {res.reason}"
    if res.status == EXPECTED[rec.section]:
        return None
    short = o.event.short()
    if rec.section == "event":
        return f"event #{rec.n} ({short}) does not apply in order: {res.reason}"
    if rec.section == "rejected":
        return f"rejected row {rec.n} ({short}) is not a bad-prev event"
    return f"pending row {rec.n} ({short}) should not be pending"


class _Heads:
    """The replayed events no other replayed event names as its prev: the last
    of each chain (both branches of a fork). Their signatures are checked at
    the end: with the hash links the fold checks (each event names its
    predecessor's id, the hash of its bytes), one signature per chain covers
    every byte of the chain (PROTOCOL.md §10.1)."""

    def __init__(self) -> None:
        self.last: dict[bytes, tuple[int, Event]] = {}

    def see(self, o: Outcome) -> None:
        ev = o.event
        if ev is not None and o.record.section == "event" and o.result.status == "applied":
            if ev.prev is not None:
                self.last.pop(ev.prev, None)
            self.last[ev.id] = (o.record.n, ev)

    def problems(self, max_event_bytes: int, network: bytes) -> Iterator[str]:
        for n, ev in self.last.values():
            try:
                decode_event(ev.raw, max_event_bytes, network, verify=True)
            except RemoteProtocolError as exc:
                yield (
                    f"event #{n} ({ev.short()}), the last of its chain, fails its "
                    f"signature check ({exc.reason}): its bytes were changed"
                )


def replay_stored(store: Store, replica: Replica, *, after_idx: int, after_rejected: int) -> int:
    """Opening a ledger: its records after (after_idx, after_rejected), every
    pending event and every fork proof into `replica`, without a signature
    check per event (its own data, verified when it came in): the fold checks
    each chain's hash links, and the last replayed event of each chain has its
    signature checked, so a changed byte anywhere in what is replayed is found.
    Raises CorruptLedgerError at the first record that does not replay as it
    was stored; returns the number of events replayed."""
    with gc_paused():
        return _replay_stored(store, replica, after_idx, after_rejected)


def _replay_stored(store: Store, replica: Replica, after_idx: int, after_rejected: int) -> int:
    dec = Decoder(replica.max_event_bytes, replica.network)
    records = stored_records(store, after_idx=after_idx, after_rejected=after_rejected)
    replayed = 0
    heads = _Heads()
    for o in replay(records, dec, ReplicaTarget(replica), verify=False, batch=_REPLAY_BATCH):
        why = mismatch(o)
        if why is not None:
            raise CorruptLedgerError(f"the stored data does not replay: {why}")
        replayed += o.record.section == "event"
        heads.see(o)
    for why in heads.problems(replica.max_event_bytes, replica.network):
        raise CorruptLedgerError(f"the stored data does not replay: {why}")
    return replayed


def _signature_pass(store: Store, decoder: Decoder, problem: Callable[[str], None]) -> None:
    """Every stored event's signature (applied, kept rejects, pending), read
    straight from the tables and checked on all the decoder's threads; the
    fold that follows checks everything else about the same bytes."""
    what = {"event": "event #", "rejected": "rejected row ", "pending": "pending row "}
    rows = itertools.chain(
        ((("event", idx, eid), raw) for idx, eid, _a, _s, _k, _t, raw in store.stream_events()),
        ((("rejected", n, eid), raw) for n, eid, raw in store.stream_rejected()),
        ((("pending", n, eid), raw) for n, eid, raw in store.stream_pending()),
    )
    for (section, n, eid), why in decoder.bad_signatures(rows):
        problem(f"{what[section]}{n} ({eid.hex()[:12]}) fails verification: {why}")


def verify_store(
    store: Store,
    genesis: Genesis,
    decoder: Decoder,
    live: bytes,
    total: int,
    progress: Callable[[int, int], None] | None = None,
    full: bool = True,
) -> VerifyReport:
    """Replay every stored record from scratch into a fresh replica and check
    apply indexes, ids, columns, invariants and that the digest equals `live`
    and the count `total` (the running replica's). `full`: first every
    signature, in a pass of its own over the stored bytes on every thread
    (`_signature_pass`), then the fold; else, like opening, the fold's hash
    links and each chain's last signature. Problems are reported, not raised."""
    with gc_paused():
        return _verify_store(store, genesis, decoder, live, total, progress, full)


def _verify_store(
    store: Store,
    genesis: Genesis,
    decoder: Decoder,
    live: bytes,
    total: int,
    progress: Callable[[int, int], None] | None,
    full: bool,
) -> VerifyReport:
    t0 = time.perf_counter()
    problems: list[str] = []

    def problem(msg: str) -> None:
        if len(problems) < _MAX_PROBLEMS:
            problems.append(msg)
        elif len(problems) == _MAX_PROBLEMS:
            problems.append("… more problems not listed")

    if full:
        _signature_pass(store, decoder, problem)
    t_sig = time.perf_counter()
    rep = Replica(genesis)
    done = n_rejected = n_pending = 0
    expect = 1
    records = stored_records(store, columns=True)
    target = ReplicaTarget(rep)
    heads = _Heads()
    # The signatures are checked (full) or stand for themselves through the
    # heads (quick): the fold's decode never checks one.
    for o in replay(records, decoder, target, verify=False, batch=_REPLAY_BATCH):
        if not full:
            heads.see(o)
        rec, ev = o.record, o.event
        if rec.section == "event":
            done += 1
            if progress is not None and (done % 1000 == 0 or done == total):
                progress(done, total)
            if rec.n != expect:
                problem(f"apply index jumps from {expect - 1} to {rec.n}")
            expect = rec.n + 1
            if ev is not None and rec.columns is not None:
                eid, author, seq, kind, ts = rec.columns
                if ev.id != eid:
                    bad = f"stored id {eid.hex()[:12]} is not the hash of its bytes"
                    problem(f"event #{rec.n}: {bad}")
                if (ev.author, ev.seq, ev.kind.code, ev.timestamp) != (author, seq, kind, ts):
                    problem(f"event #{rec.n}: stored columns disagree with its bytes")
        elif rec.section == "rejected":
            n_rejected += 1
        elif rec.section == "pending":
            n_pending += 1
        why = mismatch(o)
        if why is not None:
            problem(why)
    for why in heads.problems(genesis.params.max_event_bytes, genesis.network_id):
        problem(why)
    if done != total:
        problem(f"{done} events read, {total} expected")
    problems.extend(rep.state.check_invariants())
    digest = rep.digest()
    if digest != live:
        problem(f"replayed digest {digest.hex()[:16]} != live digest {live.hex()[:16]}")
    return VerifyReport(
        ok=not problems,
        events=done,
        pending=n_pending,
        rejected=n_rejected,
        forks=len(rep.state.forks),
        void=len(rep.state.void),
        digest=digest,
        live_digest=live,
        seconds=time.perf_counter() - t0,
        problems=problems,
        signature_seconds=t_sig - t0 if full else 0.0,
    )
