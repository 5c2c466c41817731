"""The sync protocol's client, written once as a generator (sans-IO).

A session with one peer is `session(core, peer)`: a generator that yields
`Step`s and is sent their results. It decides what to ask for and what to do
with each reply; it never touches a stream or a clock. Two runtimes drive it:
`node/_runtime.py` over a libp2p stream (`drive` below, with timeouts and the
signature checks on worker threads) and `node/_sim.py` over a simulated
network. The server side is `NodeCore.answer_sync`. PROTOCOL.md §11.5 has the
messages; this module is the order a node asks in:

1. `heads` (with ids): the peer's (author, seq, head id) for every chain it holds;
2. for each chain where the peer is ahead, `range` pages from our head on,
   pipelined (the next page is asked for before this one is verified and
   stored); a chain another session is fetching now is left to it and looked
   at again at the end, so sessions with several peers bring different chains;
3. for each chain where the peer's head is at our head's seq with another id
   (a fork neither side holds both branches of), that one event;
4. `get` for dependencies still missing (up to 20 rounds of 256 ids);
5. `forks`: equivocation proofs, admitted like any events.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from learnmesh.protocol import RemoteProtocolError, decode_event

from ._core import PAGE, NodeCore, Now
from ._wire import decode_msg, encode_msg

__all__ = [
    "Admit",
    "Ask",
    "Pause",
    "Recv",
    "Send",
    "Session",
    "Step",
    "SyncRefused",
    "run_in_process",
    "session",
]

# Pause steps (50 ms each in the real runtime) to wait for another session's
# chain before fetching it anyway: a session stuck on a dead connection holds
# its chains until its 20 s timeout, and waiting that long idled this one too.
PAUSES = 40


@dataclass(frozen=True, slots=True)
class Send:
    """Send this request; its reply is read by a later `Recv`."""

    msg: bytes


@dataclass(frozen=True, slots=True)
class Recv:
    """Read the reply to the oldest request sent and not yet read; the result
    is the decoded message (a dict with "t")."""


@dataclass(frozen=True, slots=True)
class Ask:
    """`Send` then `Recv`."""

    msg: bytes


@dataclass(frozen=True, slots=True)
class Admit:
    """Decode and verify these raw events (each on its own) and hand them to
    `NodeCore.take_page`; the result is the number of valid events."""

    raws: list[Any]


@dataclass(frozen=True, slots=True)
class Pause:
    """Another session is fetching a chain this one wants: come back a moment later."""


Step = Send | Recv | Ask | Admit | Pause
Session = Generator[Step, Any, int]


class SyncRefused(Exception):
    """The peer answered a request with an error (not its fault: it may lack
    the data or be busy)."""


def _reply(msg: Any, t: str) -> dict[str, Any]:
    if not isinstance(msg, dict) or "t" not in msg:
        raise RemoteProtocolError("sync", "a reply is a message with a type")
    if msg["t"] == "error":
        raise SyncRefused(f"peer refused {t}: {msg.get('reason')}")
    return msg


def _last_seq(core: NodeCore, raws: Any) -> int | None:
    """The seq of a page's last event (decoded, not yet verified: only to ask
    for the page after it), or None."""
    if not isinstance(raws, list) or not raws:
        return None
    try:
        limit = core.genesis.params.max_event_bytes
        return decode_event(raws[-1], limit, core.network, verify=False).seq
    except RemoteProtocolError:
        return None


def _events(msg: dict[str, Any]) -> list[Any]:
    raws = msg.get("events")
    if not isinstance(raws, list):
        raise RemoteProtocolError("sync", "events must be a list")
    return raws


def _fetch_chain(core: NodeCore, author: bytes, seq: int) -> Session:
    """Pull `author`'s events after our head up to `seq`, a page at a time;
    returns how many valid events came."""
    replica = core.store.replica
    got = 0
    mine = replica.heads.get(author, 0)
    asked = False  # a page asked for and not read yet
    while seq > mine or asked:
        if not asked:
            yield Send(encode_msg("range", author=author, start=mine + 1, limit=PAGE))
        raws = _events(_reply((yield Recv()), "range"))
        # Pipelined: the next page is asked for before this one is verified
        # and stored, so the peer reads and sends it meanwhile.
        last = _last_seq(core, raws)
        asked = last is not None and mine < last < seq
        if asked and last is not None:
            yield Send(encode_msg("range", author=author, start=last + 1, limit=PAGE))
        n: int = yield Admit(raws)
        got += n
        new = replica.heads.get(author, 0)
        if not n or new <= mine:  # nothing applied (waiting on deps): fetch those next
            if asked:  # the page already asked for is read (and taken) first
                rest = _events(_reply((yield Recv()), "range"))
                got += yield Admit(rest)
            break
        mine = new
    return got


def _valid_heads(heads: Any) -> list[tuple[bytes, int, bytes | None]]:
    """(author, seq, head id or None): `[author, seq]` entries, or `[author,
    seq, id]` from a server that was asked for ids."""
    # A peer's reply is remote data: a missing field or a wrong type is its
    # fault (RemoteProtocolError, penalised), never a KeyError/TypeError.
    if not isinstance(heads, list):
        raise RemoteProtocolError("sync", "malformed heads")
    out: list[tuple[bytes, int, bytes | None]] = []
    for entry in heads:
        if not (
            isinstance(entry, list)
            and len(entry) in (2, 3)
            and isinstance(entry[0], bytes)
            and len(entry[0]) == 32
            and isinstance(entry[1], int)
            and not isinstance(entry[1], bool)
            and (len(entry) == 2 or (isinstance(entry[2], bytes) and len(entry[2]) == 32))
        ):
            raise RemoteProtocolError("sync", "malformed heads")
        out.append((entry[0], entry[1], entry[2] if len(entry) == 3 else None))
    return out


def session(core: NodeCore, peer: str) -> Session:
    """One sync session with `peer`; returns the number of valid events taken in."""
    got = 0
    heads = _valid_heads(_reply((yield Ask(encode_msg("heads", ids=True))), "heads").get("heads"))
    replica = core.store.replica
    fetching = core.sync.fetching
    # Same seq, another id: the peer holds another branch of a fork neither
    # side has a proof of (seqs alone never show it). Its head event is
    # fetched below; admitting it records the fork, and its proof then travels.
    diverged: list[tuple[bytes, int]] = []
    for author, seq, theirs in heads:
        mine_seq, mine = replica.head(author)
        fork_unknown = author not in replica.proofs
        if theirs is not None and seq == mine_seq and mine not in (None, theirs) and fork_unknown:
            diverged.append((author, seq))
    todo: deque[tuple[bytes, int]] = deque((a, s) for a, s, _ in heads)
    deferred: set[bytes] = set()
    while todo:
        author, seq = todo.popleft()
        # Events held aside (dated ahead of our clock) are not stored, so our
        # head does not show them: without this they came again every round.
        if seq <= max(replica.heads.get(author, 0), core.held.top(author)):
            continue
        if fetching.get(author):
            if author not in deferred and todo:
                deferred.add(author)
                todo.append((author, seq))
                continue
            for _ in range(PAUSES):
                if not fetching.get(author):
                    break
                yield Pause()
        fetching[author] = fetching.get(author, 0) + 1
        try:
            got += yield from _fetch_chain(core, author, seq)
        finally:
            left = fetching.pop(author) - 1
            if left:
                fetching[author] = left
    for author, seq in diverged:
        ask = encode_msg("range", author=author, start=seq, limit=1)
        got += yield Admit(_events(_reply((yield Ask(ask)), "range")))
    for _ in range(20):
        missing = sorted(replica.missing_deps())[:256]
        if not missing:
            break
        n = yield Admit(_events(_reply((yield Ask(encode_msg("get", ids=missing))), "get")))
        if not n:
            break
        got += n
    proofs = _reply((yield Ask(encode_msg("forks"))), "forks").get("proofs")
    for pair in proofs if isinstance(proofs, list) else []:
        if not isinstance(pair, list):
            raise RemoteProtocolError("sync", "events must be a list")
        yield Admit(pair)  # fork evidence: not counted as events taken in
    return got


def run_in_process(
    steps: Session,
    client: NodeCore,
    answer: Callable[[bytes], bytes],
    peer: str,
    now: Now,
) -> tuple[int, int]:
    """Drive a session with each request answered at once by `answer` (a
    server's `serve_sync` or `answer_sync`, in this process): for tests of the
    sync code, the simulator's direct sync and `bench core`. No timeouts and
    no other sessions (a `Pause` is an error). Returns (events taken in,
    requests sent)."""
    replies: deque[bytes] = deque()
    sent = 0
    value: Any = None
    while True:
        try:
            step = steps.send(value)
        except StopIteration as done:
            got: int = done.value
            return got, sent
        value = None
        if isinstance(step, Send | Ask):
            sent += 1
            replies.append(answer(step.msg))
        if isinstance(step, Recv | Ask):
            value = decode_msg(replies.popleft())
        elif isinstance(step, Admit):
            events, bad = client.decode(step.raws)
            value = client.take_page(events, bad, peer, now)
        elif isinstance(step, Pause):
            raise RuntimeError("another session holds a chain: not in process")
