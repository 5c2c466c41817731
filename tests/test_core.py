"""The node service (node/_core.py) and the sync client (node/_sync.py), in
process: no sockets, no trio, time passed in. Each service stores into a real
SQLite ledger; two services sync by a ten-line driver of the same generator
the libp2p runtime drives."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from learnmesh.ledger import Ledger
from learnmesh.node._core import (
    PAGE,
    Applied,
    Block,
    CoreSettings,
    FetchBlob,
    NodeCore,
    Now,
    Publish,
    SyncWanted,
    Unblock,
)
from learnmesh.node._peers import BAN_SECONDS
from learnmesh.node._sync import Ask, Session, SyncRefused, run_in_process, session
from learnmesh.node._wire import decode_msg, encode_gossip, encode_msg
from learnmesh.protocol import ChainWriter, Event, Genesis, KeyPair, RemoteProtocolError

T0 = 1_800_000_000_000  # wall clock of the tests, ms


def _keys(n: int) -> list[KeyPair]:
    return [KeyPair(bytes([i + 1]) * 32) for i in range(n)]


KEYS = _keys(4)
GENESIS = Genesis(
    name="core",
    created_ms=T0 - 3_600_000,
    allocations=tuple(sorted((k.public_key, 1000) for k in KEYS)),
)


def _core(tmp_path: Path, name: str, **settings: Any) -> NodeCore:
    ledger = Ledger.open(str(tmp_path / f"{name}.db"), GENESIS)
    return NodeCore(
        genesis=GENESIS,
        store=ledger,
        settings=CoreSettings(**settings),
        rng=random.Random(7),
    )


def _chain(key: KeyPair, n: int, start: int = T0 - 60_000) -> list[Event]:
    w = ChainWriter(key, GENESIS.network_id)
    return [
        w.sign("profile", {"name": f"m{i}", "bio": "", "skills": []}, start + i) for i in range(n)
    ]


def _now(ms: int = T0, mono: float = 100.0) -> Now:
    return Now(ms, mono)


def _io(core: NodeCore, kind: type) -> list[Any]:
    return [i for i in core.take_io() if isinstance(i, kind)]


# -- admission ------------------------------------------------------------------------


def test_admit_applies_holds_and_refuses_by_the_clock(tmp_path: Path) -> None:
    core = _core(tmp_path, "a")
    skew = GENESIS.params.max_clock_skew_ms
    w = ChainWriter(KEYS[0], GENESIS.network_id)
    now_ev = w.sign("profile", {"name": "a", "bio": "", "skills": []}, T0)
    ahead = w.sign("profile", {"name": "b", "bio": "", "skills": []}, T0 + skew + 60_000)
    far = ChainWriter(KEYS[1], GENESIS.network_id).sign(
        "profile", {"name": "c", "bio": "", "skills": []}, T0 + skew + 2 * 86_400_000
    )
    got = core.admit([now_ev, ahead, far], None, _now())
    assert [a.status for a in got] == ["applied", "held", "rejected"]
    assert got[2].code == "future" and "refused" in (got[2].reason or "")
    assert core.store.replica.heads == {KEYS[0].public_key: 1}
    assert [e.id for e in core.held.listed()] == [ahead.id]
    # the same event again: held once
    assert core.admit([ahead], None, _now())[0].status == "held"
    assert core.stats["events_held"] == 1
    # its time comes: a tick admits it and passes it on
    core.take_io()
    core.tick(_now(T0 + 60_001, 101.0), [], [])
    assert core.store.replica.heads == {KEYS[0].public_key: 2}
    assert core.held.listed() == []
    assert [p.raw for p in _io(core, Publish)] == [ahead.raw]
    assert core.stats["events_applied_held"] == 1


def test_admission_reports_every_event_in_input_order(tmp_path: Path) -> None:
    core = _core(tmp_path, "a")
    evs = _chain(KEYS[0], 3)
    # the second alone waits for the first (pending); then all three
    assert core.admit([evs[1]], "p", _now())[0].status == "pending"
    got = core.admit([evs[0], evs[1], evs[2]], "p", _now())
    assert [a.status for a in got] == ["applied", "duplicate", "applied"]
    assert core.store.replica.heads == {KEYS[0].public_key: 3}
    applied = [e.id for io in _io(core, Applied) for e in io.events]
    assert sorted(applied) == sorted(e.id for e in evs)


def test_own_events_are_published_only_when_applied(tmp_path: Path) -> None:
    core = _core(tmp_path, "a")
    evs = _chain(KEYS[0], 2)
    assert [a.status for a in core.admit_own(evs, _now())] == ["applied", "applied"]
    assert [p.raw for p in _io(core, Publish)] == [e.raw for e in evs]
    assert core.stats["events_applied_own"] == 2
    assert core.admit_own(evs[:1], _now())[0].status == "duplicate"
    assert _io(core, Publish) == []


# -- gossip ----------------------------------------------------------------------


def test_gossip_with_a_forged_event_is_not_forwarded_and_costs_the_sender(
    tmp_path: Path,
) -> None:
    core = _core(tmp_path, "a")
    evs = _chain(KEYS[0], 2)
    forged = bytearray(evs[1].raw)
    forged[-1] ^= 1  # the signature's last byte
    msg = encode_gossip(GENESIS.network_id, [evs[0].raw, bytes(forged)])
    assert core.on_gossip("peerX", msg, _now()) is False
    assert core.peers.score("peerX", 100.0) == pytest.approx(10.0)
    assert core.queued == 1  # the valid event is still admitted
    assert core.admit_queued(_now()) is True and core.admit_queued(_now()) is False
    assert core.store.replica.heads == {KEYS[0].public_key: 1}
    # undecodable gossip costs the sender too
    assert core.on_gossip("peerX", b"\x93garbage", _now()) is False
    assert core.peers.score("peerX", 100.0) == pytest.approx(20.0)
    good = encode_gossip(GENESIS.network_id, [evs[1].raw])
    assert core.on_gossip("peerY", good, _now()) is True


def test_a_ban_blocks_the_peer_and_its_end_unblocks_it(tmp_path: Path) -> None:
    core = _core(tmp_path, "a")
    core.take_io()
    for i in range(5):
        core.penalise("bad", f"offence {i}", _now(mono=100.0))
    assert [b.peer for b in _io(core, Block)] == ["bad"]
    assert core.usable(["bad", "good"], _now(mono=100.0)) == ["good"]
    core.tick(_now(mono=100.0 + BAN_SECONDS + 1), ["good"], ["good"])
    assert [u.peer for u in _io(core, Unblock)] == ["bad"]
    assert core.usable(["bad"], _now(mono=100.0 + BAN_SECONDS + 1)) == ["bad"]


def test_partition_and_heal_go_out_as_block_and_unblock(tmp_path: Path) -> None:
    core = _core(tmp_path, "a")
    core.take_io()
    core.partition(["p1", "p2"])
    assert core.on_gossip("p1", b"", _now()) is False  # refused before any decoding
    assert core.heal() == ["p1", "p2"]
    io = core.take_io()
    assert [type(i).__name__ for i in io] == ["Block", "Block", "Unblock", "Unblock"]


# -- whom to sync with -------------------------------------------------------------


def test_new_peers_are_synced_at_once_and_one_at_random_each_interval(tmp_path: Path) -> None:
    core = _core(tmp_path, "a", sync_interval=3.0)
    core.tick(_now(mono=10.0), ["p1", "p2", "js"], ["p1", "p2"])  # js has no sync
    assert _io(core, SyncWanted)
    assert core.sync.take_wanted(set()) == ["p1", "p2"]
    # half a second later: nobody new, the interval not over
    core.tick(_now(mono=10.5), ["p1", "p2", "js"], ["p1", "p2"])
    assert core.sync.take_wanted(set()) == []
    core.tick(_now(mono=13.1), ["p1", "p2", "js"], ["p1", "p2"])
    assert core.sync.take_wanted(set()) in (["p1"], ["p2"])
    # a peer with a session running stays wanted until it ends
    core.request_sync("p1", _now(mono=13.2))
    assert core.sync.take_wanted({"p1"}) == []
    assert core.sync.take_wanted(set()) == ["p1"]


def test_a_deps_sync_is_not_asked_again_right_after_a_sync(tmp_path: Path) -> None:
    core = _core(tmp_path, "a")
    core.tick(_now(mono=10.0), ["p1"], ["p1"])
    core.sync.take_wanted(set())
    core.sync_ended("p1", 0, _now(mono=11.0))
    evs = _chain(KEYS[0], 3)
    core.admit([evs[1]], "p1", _now(mono=11.5))  # pending: its prev is missing
    assert core.sync.take_wanted(set()) == []  # within SYNC_BACKOFF of the last sync
    core.admit([evs[2]], "p1", _now(mono=14.0))
    assert core.sync.take_wanted(set()) == ["p1"]


def test_a_blob_no_peer_had_is_asked_for_again_backing_off(tmp_path: Path) -> None:
    core = _core(tmp_path, "a")
    h = b"\x11" * 32
    core.blob_failed(h, 10, _now(mono=0.0))
    core.tick(_now(mono=1.0), [], [])
    assert _io(core, FetchBlob) == []
    core.tick(_now(mono=2.5), [], [])
    assert _io(core, FetchBlob) == [FetchBlob(h, 10)]
    core.tick(_now(mono=3.0), [], [])  # in flight: not asked twice
    assert _io(core, FetchBlob) == []
    core.blob_failed(h, 10, _now(mono=3.0))  # second failure: 4 s
    core.tick(_now(mono=6.0), [], [])
    assert _io(core, FetchBlob) == []
    core.tick(_now(mono=7.5), [], [])
    assert _io(core, FetchBlob) == [FetchBlob(h, 10)]
    core.blob_fetched(h)
    core.tick(_now(mono=1000.0), [], [])
    assert _io(core, FetchBlob) == []


# -- the sync protocol, both sides, in process ---------------------------------------


def _drive(
    steps: Session, client: NodeCore, server: NodeCore, peer: str, now: Now | None = None
) -> tuple[int, int]:
    """What a runtime does with a session, with the server answering in
    process (node/_sync.py's driver). Returns (events taken in, requests sent)."""
    t = now or _now()
    return run_in_process(steps, client, lambda m: server.serve_sync("c", m, t)[0], peer, t)


def test_a_session_fetches_every_chain_in_pages_and_converges(tmp_path: Path) -> None:
    server, client = _core(tmp_path, "s"), _core(tmp_path, "c")
    n = PAGE * 2 + 17  # three pages for one chain
    chains = [_chain(KEYS[0], n), _chain(KEYS[1], 5), _chain(KEYS[2], 1)]
    for c in chains:
        assert {a.status for a in server.admit(c, None, _now())} == {"applied"}
    client.admit(chains[1][:2], None, _now())  # it has some already
    got, sent = _drive(session(client, "s"), client, server, "s")
    assert got == n + 3 + 1
    assert client.store.replica.digest() == server.store.replica.digest()
    assert not client.store.replica.pending
    # heads, three pages, one page for each other chain, forks
    assert sent == 1 + 3 + 1 + 1 + 1
    # nothing new: just heads and forks
    assert _drive(session(client, "s"), client, server, "s") == (0, 2)


def test_fork_evidence_travels_by_sync(tmp_path: Path) -> None:
    server, client = _core(tmp_path, "s"), _core(tmp_path, "c")
    evs = _chain(KEYS[0], 2)
    twin = ChainWriter(KEYS[0], GENESIS.network_id)
    twin.resume(1, evs[0].id)
    other = twin.sign("profile", {"name": "twin", "bio": "", "skills": []}, T0 - 50_000)
    server.admit(evs, None, _now())
    server.admit([other], None, _now())
    assert KEYS[0].public_key in server.store.replica.proofs
    _drive(session(client, "s"), client, server, "s")
    assert KEYS[0].public_key in client.store.replica.proofs
    assert client.store.replica.digest() == server.store.replica.digest()


def test_a_fork_at_equal_heads_is_found_by_sync(tmp_path: Path) -> None:
    """Each side holds one branch at the same seq and no proof: heads alone
    (author, seq) look equal, so the head ids decide; both end with the proof
    and the same digest."""
    a, b = _core(tmp_path, "a"), _core(tmp_path, "b")
    evs = _chain(KEYS[0], 2)
    twin = ChainWriter(KEYS[0], GENESIS.network_id)
    twin.resume(1, evs[0].id)
    other = twin.sign("profile", {"name": "twin", "bio": "", "skills": []}, T0 - 50_000)
    a.admit(evs, None, _now())
    b.admit([evs[0], other], None, _now())
    assert a.store.replica.heads == b.store.replica.heads  # equal seqs, other ids
    assert a.store.replica.digest() != b.store.replica.digest()
    _drive(session(b, "a"), b, a, "a")
    assert KEYS[0].public_key in b.store.replica.proofs
    _drive(session(a, "b"), a, b, "b")  # the proof travels back by `forks`
    assert KEYS[0].public_key in a.store.replica.proofs
    assert a.store.replica.digest() == b.store.replica.digest()
    # a server asked without ids answers [author, seq] as before
    plain = decode_msg(a.answer_sync({"t": "heads"}))["heads"]
    assert plain == [[KEYS[0].public_key, 2]]


def test_held_events_are_not_fetched_again_each_round(tmp_path: Path) -> None:
    """Found by the simulator: a node whose clock is behind holds a peer's
    newest events (not stored, so its head does not show them) and fetched
    them again every round."""
    server, client = _core(tmp_path, "s"), _core(tmp_path, "c")
    skew = GENESIS.params.max_clock_skew_ms
    evs = _chain(KEYS[0], 3, start=T0 - 10)
    late = _now(T0 - skew - 60_000)  # the client's clock: a minute too far behind
    server.admit(evs, None, _now(T0 + 10))
    assert _drive(session(client, "s"), client, server, "s", late) == (3, 3)
    assert client.store.replica.heads == {}  # all three held
    assert len(client.held.listed()) == 3 and client.held.top(KEYS[0].public_key) == 3
    # next round: heads and forks only, no page of events it holds already
    assert _drive(session(client, "s"), client, server, "s", late) == (0, 2)
    client.tick(_now(T0 + 10, 200.0), [], [])  # their time comes
    assert client.store.replica.heads == {KEYS[0].public_key: 3}
    assert client.held.top(KEYS[0].public_key) == 0


def test_a_server_that_serves_forged_events_is_penalised(tmp_path: Path) -> None:
    server, client = _core(tmp_path, "s"), _core(tmp_path, "c")
    evs = _chain(KEYS[0], 3)
    server.admit(evs, None, _now())
    real = server.answer_sync

    def lying(req: dict[str, Any]) -> bytes:
        if req["t"] == "range":  # the chain from `start`, its third event forged
            forged = bytearray(evs[2].raw)
            forged[-1] ^= 1
            chain = [evs[0].raw, evs[1].raw, bytes(forged)]
            return encode_msg("reply", events=chain[req["start"] - 1 :])
        return real(req)

    server.answer_sync = lying  # type: ignore[method-assign]
    got, _ = _drive(session(client, "s"), client, server, "s")
    assert got == 2  # the valid ones are kept
    assert client.store.replica.heads == {KEYS[0].public_key: 2}
    # each page with a forged event costs the server: the first, then the
    # one asked for after the valid events (the forged one again); then it stops
    assert client.peers.score("s", 100.0) == pytest.approx(20.0)


def test_malformed_replies_are_the_peers_fault_and_refusals_are_not(tmp_path: Path) -> None:
    core = _core(tmp_path, "c")
    for reply, error in (
        ({"t": "reply", "heads": "nope"}, RemoteProtocolError),
        ({"t": "reply", "heads": [[b"x", 1]]}, RemoteProtocolError),
        ({"t": "reply", "heads": [[b"x" * 32, True]]}, RemoteProtocolError),
        ({"heads": []}, RemoteProtocolError),
        ({"t": "error", "reason": "busy"}, SyncRefused),
    ):
        s = session(core, "p")
        assert isinstance(next(s), Ask)
        with pytest.raises(error):
            s.send(reply)


def test_answer_sync_refuses_what_breaks_the_protocol(tmp_path: Path) -> None:
    core = _core(tmp_path, "s")
    for req in (
        {"t": "range", "author": "x", "start": 1, "limit": 5},
        {"t": "get", "ids": [b"x"] * 513},
        {"t": "nonsense"},
    ):
        with pytest.raises(RemoteProtocolError):
            core.answer_sync(req)
    reply = decode_msg(core.answer_sync({"t": "heads"}))
    assert (reply["t"], reply["heads"]) == ("reply", [])
    # from a peer: a bad request costs it, is answered with `error`, and closes
    out, close = core.serve_sync("p", encode_msg("nonsense"), _now())
    assert close and decode_msg(out)["t"] == "error"
    assert core.peers.score("p", 100.0) == pytest.approx(10.0)
    out, close = core.serve_sync("p", b"\xc1", _now())  # not even msgpack
    assert close and decode_msg(out)["t"] == "error"
    out, close = core.serve_sync("p", encode_msg("heads"), _now())
    assert not close and decode_msg(out)["t"] == "reply"


# -- purity -----------------------------------------------------------------------------

NODE = Path(__file__).resolve().parent.parent / "node"
_IO = {"trio", "libp2p", "socket", "time", "os", "threading", "asyncio", "httpx",
       "subprocess", "sqlalchemy", "sqlite3", "pathlib", "learnmesh.ledger"}


@pytest.mark.parametrize("module", ["_core", "_sync", "_peers"])
def test_the_service_imports_nothing_that_does_io(module: str) -> None:
    """The service and the sync client (and the peer book they use) import no
    event loop, socket, clock, file or database code (types only, under
    TYPE_CHECKING), and use `random` only for the type of the generator
    they are handed."""
    import ast

    tree = ast.parse((NODE / f"{module}.py").read_text())
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            typing_only |= {id(n) for b in node.body for n in ast.walk(b)}
    imported: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module)
    bad = {m for m in imported if m.split(".")[0] in _IO or m.startswith("learnmesh.ledger")}
    assert not bad, f"{module} imports {sorted(bad)}"
    uses = {
        n.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and getattr(n.value, "id", "") == "random"
    }
    assert uses <= {"Random"}, f"{module} draws from the random module: {sorted(uses)}"
