"""The simulator: the second runtime of the node service.

Many nodes in one process, on one simulated clock, over a simulated network.
Each node is the real `NodeCore` (node/_core.py) over its own SQLite `Ledger`
(`store="file"`: a file in a temporary folder, in RAM under /dev/shm when it
has room, which takes the ledger's fast append path as a real node does, about
twice as fast; `store="memory"`: `sqlite://`), and its sync client is the real
session generator (node/_sync.py), answered by the peer's real
`NodeCore.answer_sync`. What differs from
node/_runtime.py is only what carries inputs in and `Io` out:

- **Clock:** integer simulated milliseconds; one heap of timed deliveries and
  timers; no trio, no sockets, no sleeping. Each node's `Now` is the simulated
  time plus a small fixed offset of its own (within the network's
  `max_clock_skew_ms`), or, for `late_clocks` nodes, an offset past it (they
  hold events dated ahead of them until their time comes).
- **Topology:** every node linked to `degree` random others (and the graph
  connected). A link is down while a partition cuts it (`partitions`:
  `(start_ms, end_ms, group)`) or while either end blocks the other (a ban):
  messages on a down link are lost, and its peers are not in the `connected`
  set `tick` is given (as when connections close).
- **Gossip:** what a node publishes at one instant goes out as one gossip
  message (`encode_gossip`, split like the runtime's batches) to its linked
  peers, each copy with its own delay, loss and duplication. A node handles a
  message once (a seen-set keyed by SHA-256 of its bytes, the message id, kept
  for `SEEN_TTL_MS` like GossipSub's seen cache): `NodeCore.on_gossip`, then
  the admission queue is drained; True forwards the same bytes to its other
  linked peers. GossipSub's IHAVE/IWANT repair is not modelled: a lost
  message is recovered by sync alone.
- **Sync:** `SyncWanted` starts sessions (`core.sync.take_wanted`, at most
  `MAX_SESSIONS` running per node, others wait, like the runtime's limiter).
  A session's requests and replies travel like stream frames (in order, each
  after a delay, not lost unless `sync_loss_pm` says so: streams are reliable);
  a lost frame (a connection that died silently, or a link going down) leaves
  the session waiting until its 20 s timeout, then `core.sync_failed`. The
  server side is `answer_sync`; a `RemoteProtocolError` there penalises the
  asker and answers with an error, as `Runtime._serve_sync` does. Opening a
  stream costs no round trip, and a peer always speaks the sync protocol.
- **Authoring:** the workload's events are made at their author's home node,
  spread over time, through `core.admit_own`. A person cannot act on what
  they have not seen: an event waits at its home node until its prev and refs
  are applied there. Equivocations: a second, validly signed event at an
  author's last seq, made on another node; every node must record the fork.
- **Hostile nodes** (optional): they send malformed, foreign and badly signed
  gossip and answer sync with malformed replies; the others penalise and ban
  them, and still converge.
- **Not modelled:** blobs (`FetchBlob` is dropped), the node's domain
  reactions to `Applied`, the runtime's outgoing pacing (`gossip_delay`,
  `gossip_rate`), ping liveness and redialing, CPU time (a node handles
  anything in zero simulated time), nodes that stop or restart.

Decoding an event (and its signature check) is a pure function of its bytes,
so it is memoised across nodes (`verify=False` skips the signature checks for
speed). Everything is seeded from `seed`, and sets are iterated in sorted
order: the same seed gives the same report, in any interpreter.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import random
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from learnmesh.ledger import Ledger
from learnmesh.protocol import (
    Event,
    Genesis,
    RemoteProtocolError,
    decode_event,
    make_event,
)
from learnmesh.protocol._workload import Workload

from ._core import (
    Block,
    CoreSettings,
    NodeCore,
    Now,
    Publish,
    SyncWanted,
    Unblock,
)
from ._sync import Admit, Ask, Pause, Recv, Send, Session, SyncRefused, run_in_process, session
from ._wire import MAX_GOSSIP_BYTES, decode_msg, encode_gossip, encode_msg

__all__ = ["Partition", "SimError", "SimReport", "Simulation", "sync_directly"]

TICK_MS = 500  # NodeCore.tick, as the runtime's _tick_loop
ASK_TIMEOUT_MS = 20_000  # one sync request and its reply, as the runtime's _ASK_TIMEOUT
PAUSE_MS = 50  # a Pause step, as the runtime's
MAX_SESSIONS = 3  # sync sessions running at once per node, as the runtime's limiter
SEEN_TTL_MS = 120_000  # GossipSub's seen cache
CHECK_MS = 250  # how often convergence is checked once every event is out

_COUNTERS = (
    "authoring_waits",
    "gossip_sent",
    "gossip_dropped",
    "gossip_duplicated",
    "gossip_delivered",
    "gossip_seen",
    "sync_started",
    "sync_ended",
    "sync_failed",
    "sync_timeouts",
    "sync_frames",
    "sync_frames_lost",
    "sync_pauses",
    "sync_events_received",
    "hostile_messages",
)

# kinds of heap entries
_GOSSIP, _TICK, _AUTHOR, _REQ, _REPLY, _TIMEOUT, _RESUME, _CHECK = range(8)


class SimError(ValueError):
    """Parameters a simulation cannot run with (a readable reason)."""


@dataclass(frozen=True, slots=True)
class Partition:
    """From `start_ms` (inclusive) to `end_ms` (exclusive), links between nodes
    in `group` and nodes outside it are cut."""

    start_ms: int
    end_ms: int
    group: frozenset[int]

    def cuts(self, a: int, b: int, t: int) -> bool:
        return self.start_ms <= t < self.end_ms and ((a in self.group) != (b in self.group))


@dataclass(frozen=True)
class SimReport:
    """What a run did. Deterministic: no wall-clock time in it."""

    seed: int
    nodes: int
    honest: int  # nodes that run NodeCore (the others are hostile)
    events: int  # authored: the workload's events plus fork twins
    expected: bytes  # the digest of a replica holding every authored event
    digests: tuple[bytes, ...]  # per honest node, at the end
    pending: tuple[int, ...]  # events waiting for deps, per honest node
    forks: tuple[int, ...]  # forked authors recorded, per honest node
    held: tuple[int, ...]  # events held (dated ahead of the node's clock), per honest node
    converged: bool  # every honest node on `expected` with nothing pending
    converged_at_ms: int | None  # simulated time when that was first seen
    last_authored_ms: int  # simulated time the last event was authored
    healed_at_ms: int  # the end of the last partition (0 if none)
    sim_ms: int  # simulated time at the end of the run
    spread_p50_ms: int | None  # from authoring to applied on every honest node, over
    spread_p99_ms: int | None  # the events every honest node applied (None: no such event)
    spread_max_ms: int | None
    authoring_waits: int  # times an event waited at its home node for its deps
    gossip_sent: int  # copies put on links (one per linked peer)
    gossip_dropped: int  # lost: chance, or the link was down
    gossip_duplicated: int  # extra copies delivered
    gossip_delivered: int  # copies that reached a node
    gossip_seen: int  # delivered copies a node had seen already (not handled again)
    sync_started: int
    sync_ended: int  # sessions that ran to the end
    sync_failed: int  # refused, malformed, timed out, or the link was down
    sync_timeouts: int
    sync_frames: int  # requests and replies sent
    sync_frames_lost: int
    sync_pauses: int  # Pause steps: a session waiting for a chain another one fetches
    sync_events_received: int  # raw events in sync replies (taken in or not)
    events_in_gossip: int  # events applied from gossip, all honest nodes
    events_in_sync: int  # events applied from sync pages
    events_in_own: int  # events applied as their author's own
    events_in_held: int  # held events applied when their time came
    penalties: int
    bans: int
    hostile_messages: int  # junk gossip messages and replies the hostile nodes sent
    crashes: tuple[str, ...]  # exceptions the core or sync code raised (bugs), first few

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["expected"] = self.expected.hex()
        out["digests"] = sorted({d.hex() for d in self.digests})
        for k in ("pending", "forks", "held"):
            out[k] = list(out[k])
        out["crashes"] = list(self.crashes)
        out["time_to_converge_ms"] = self.time_to_converge_ms
        return out

    @property
    def time_to_converge_ms(self) -> int | None:
        """From the last event authored (or the last heal, if later) to convergence."""
        if self.converged_at_ms is None:
            return None
        return self.converged_at_ms - max(self.last_authored_ms, self.healed_at_ms)


@dataclass
class _Session:
    """One sync session a node runs with a peer (the client side)."""

    sid: int
    node: int
    peer: int
    gen: Session
    inbox: deque[bytes] = field(default_factory=deque)
    waiting: bool = False  # waiting in a Recv
    token: int = 0  # the current timeout's token: an older timer is void
    req_at: int = 0  # when the last request arrives (frames stay in order)
    reply_at: int = 0
    broken: bool = False  # a frame was lost: nothing more arrives
    closed_by_server: bool = False


class _SimNode:
    def __init__(self, index: int, name: str, core: NodeCore | None, offset_ms: int) -> None:
        self.index = index
        self.name = name
        self.core = core  # None: a hostile node
        self.offset_ms = offset_ms
        self.links: list[int] = []  # sorted
        self.blocked: set[int] = set()  # peers this node refuses (bans)
        self.seen: dict[bytes, int] = {}  # gossip message id -> until when
        self.sessions: dict[int, _Session] = {}  # peer -> running session
        self.waiting: deque[int] = deque()  # peers whose sessions wait for a slot
        self.outbox: list[bytes] = []


def _ram_dir() -> str | None:
    """/dev/shm if it has room for a few MB per node (SQLite's WAL), else the
    default temporary folder (a container's /dev/shm may be 64 MB)."""
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return None
    return "/dev/shm" if st.f_bavail * st.f_frsize > (2 << 30) else None


def sync_directly(client: NodeCore, server: NodeCore, server_name: str, now: Now) -> int:
    """One sync session of `client` with `server`, no network in between (for
    tests of the sync code itself). Returns what the session returns; raises
    what it raises."""
    def answer(msg: bytes) -> bytes:
        return server.answer_sync(decode_msg(msg))

    got, _ = run_in_process(session(client, server_name), client, answer, server_name, now)
    client.sync_ended(server_name, got, now)
    return got


class Simulation:
    """`nodes` simulated nodes exchanging a `Workload`'s events under faults.

    loss_pm / dup_pm: per-mille chance a gossip copy is lost / delivered twice;
    sync_loss_pm: per-mille chance a sync frame is lost (streams are reliable:
    a lost frame stands for a connection that died silently, and its session
    waits for the 20 s timeout); delays are uniform in
    [min_delay_ms, max_delay_ms]; partitions: (start_ms, end_ms, group of node
    indexes); actors: the workload's members; spacing_ms: simulated time
    between two authored events; equivocations: authors that sign a second
    event at their last seq on another node; late_clocks: nodes whose clock is
    behind by more than the network's skew; hostile: nodes that send junk;
    verify: check signatures (memoised across nodes)."""

    def __init__(
        self,
        seed: int,
        nodes: int = 50,
        *,
        degree: int = 4,
        loss_pm: int = 0,
        dup_pm: int = 0,
        sync_loss_pm: int = 0,
        min_delay_ms: int = 5,
        max_delay_ms: int = 80,
        partitions: Sequence[tuple[int, int, Iterable[int]] | Partition] = (),
        actors: int = 12,
        spacing_ms: int = 100,
        equivocations: int = 0,
        late_clocks: int = 0,
        hostile: int = 0,
        verify: bool = True,
        store: str = "file",
        settings: CoreSettings | None = None,
    ) -> None:
        honest = nodes - hostile
        if nodes < 2 or honest < 2:
            raise SimError("a simulation needs at least two honest nodes")
        if not 1 <= degree < nodes:
            raise SimError(f"degree must be between 1 and {nodes - 1} (the other nodes)")
        if not (0 <= loss_pm < 1000 and 0 <= sync_loss_pm < 1000 and 0 <= dup_pm <= 1000):
            raise SimError("losses must be in [0, 1) and duplication in [0, 1]")
        if not 0 <= min_delay_ms <= max_delay_ms:
            raise SimError("delays: 0 <= min_delay_ms <= max_delay_ms")
        if actors < 2:
            raise SimError("the workload needs at least two actors")
        if spacing_ms < 0 or not 0 <= late_clocks <= honest or hostile < 0:
            raise SimError("spacing_ms, late_clocks and hostile must be >= 0")
        if store not in ("memory", "file"):
            raise SimError(f"store is 'memory' or 'file', not {store!r}")
        if not 0 <= equivocations <= actors:
            raise SimError(f"equivocations must be between 0 and {actors} (the actors)")
        self.seed = seed
        self.rng = random.Random(seed)
        self.net_rng = random.Random(self.rng.getrandbits(64))  # delays, loss, duplication
        self.loss_pm, self.dup_pm, self.sync_loss_pm = loss_pm, dup_pm, sync_loss_pm
        self.min_delay, self.max_delay = min_delay_ms, max_delay_ms
        self.spacing_ms = spacing_ms
        self.equivocations = equivocations
        self.verify = verify
        self.partitions = [
            p if isinstance(p, Partition) else Partition(p[0], p[1], frozenset(p[2]))
            for p in partitions
        ]
        for p in self.partitions:
            if p.end_ms < p.start_ms or any(not 0 <= i < nodes for i in p.group):
                raise SimError(f"a partition needs start <= end and node indexes < {nodes}")
        self.store = store
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.ledgers: list[Ledger] = []
        self.workload = Workload(seed=seed, actors=actors)
        self.genesis: Genesis = self.workload.genesis
        self.network = self.genesis.network_id
        self.max_event_bytes = self.genesis.params.max_event_bytes
        skew = self.genesis.params.max_clock_skew_ms
        # hostile nodes are the last indexes; late clocks the first ones
        self.nodes: list[_SimNode] = []
        for i in range(nodes):
            name = f"n{i:03d}"
            if i >= honest:
                self.nodes.append(_SimNode(i, name, None, 0))
                continue
            offset = self.rng.randint(-skew // 4, skew // 4)
            if i < late_clocks:
                offset = -(skew + 20_000 + self.rng.randint(0, 20_000))
            ledger = self._open_ledger(name)
            core = NodeCore(
                genesis=self.genesis,
                store=ledger,
                settings=settings or CoreSettings(),
                rng=random.Random(self.rng.getrandbits(64)),
                decode_one=self._decode,  # memoised across nodes: a pure function
            )
            self.nodes.append(_SimNode(i, name, core, offset))
        self.honest = honest
        self.by_name = {n.name: n.index for n in self.nodes}
        self._link(degree)
        self.home = [self.rng.randrange(honest) for _ in range(actors)]
        self.t = 0
        self.clock_base = 0  # set by run: the workload's dates sit just before the clock
        self._heap: list[tuple[int, int, int, tuple[Any, ...]]] = []
        self._n = 0
        self._sid = 0
        self._sessions: dict[int, _Session] = {}
        self._decoded: dict[bytes, Event | RemoteProtocolError] = {}
        self._author_q: dict[int, deque[Event]] = {}
        self._authored_at: dict[bytes, int] = {}
        self._actor_of = {k.public_key: i for i, k in enumerate(self.workload.keys)}
        self.c: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        self.crashes: list[str] = []

    # -- set-up ---------------------------------------------------------------------

    def _open_ledger(self, name: str) -> Ledger:
        """An in-memory SQLite ledger, or (store="file") a SQLite file in a
        temporary folder (in RAM under /dev/shm where there is one): the real
        node's kind of database, and its faster append path (`_fast_append`
        is only taken for file databases)."""
        if self.store == "memory":
            ledger = Ledger.open("sqlite://", self.genesis, verify_threads=1)
        else:
            if self._tmp is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="learnmesh-sim-", dir=_ram_dir())
            folder = Path(self._tmp.name)
            ledger = Ledger.open(
                folder / f"{name}.db",
                self.genesis,
                verify_threads=1,
                synchronous="NORMAL",
                snapshot_path=folder / f"{name}.snapshot",
                snapshot_every=1 << 40,
            )
        self.ledgers.append(ledger)
        return ledger

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the ledgers (and the temporary folder of store="file")."""
        for ledger in self.ledgers:
            ledger.close()
        self.ledgers.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _link(self, degree: int) -> None:
        """A random spanning tree (connected), then random links until every
        node has `degree` of them."""
        n = len(self.nodes)
        links: set[tuple[int, int]] = set()
        order = list(range(n))
        self.rng.shuffle(order)
        for k in range(1, n):
            a, b = order[k], order[self.rng.randrange(k)]
            links.add((min(a, b), max(a, b)))
        count = [0] * n
        for a, b in links:
            count[a] += 1
            count[b] += 1
        for a in range(n):
            tries = 0
            while count[a] < degree and tries < 20 * n:
                tries += 1
                b = self.rng.randrange(n)
                pair = (min(a, b), max(a, b))
                if b == a or pair in links:
                    continue
                links.add(pair)
                count[a] += 1
                count[b] += 1
        for a, b in sorted(links):
            self.nodes[a].links.append(b)
            self.nodes[b].links.append(a)
        for node in self.nodes:
            node.links.sort()

    def _decode(self, raw: Any) -> Event | RemoteProtocolError:
        """decode_event, memoised by the raw bytes (a pure function)."""
        key = raw if isinstance(raw, bytes) else None
        if key is not None and key in self._decoded:
            return self._decoded[key]
        try:
            out: Event | RemoteProtocolError = decode_event(
                raw, self.max_event_bytes, self.network, verify=self.verify
            )
        except RemoteProtocolError as exc:
            out = exc
        if key is not None:
            self._decoded[key] = out
        return out

    # -- the clock and the heap -------------------------------------------------------

    def now(self, node: _SimNode) -> Now:
        return Now(self.clock_base + self.t + node.offset_ms, 1000.0 + self.t / 1000)

    def _at(self, t: int, kind: int, *args: Any) -> None:
        self._n += 1
        heapq.heappush(self._heap, (t, self._n, kind, args))

    def _delay(self) -> int:
        return self.net_rng.randint(self.min_delay, self.max_delay)

    def _lost(self, pm: int) -> bool:
        return pm > 0 and self.net_rng.randrange(1000) < pm

    # -- links ------------------------------------------------------------------------

    def up(self, a: int, b: int) -> bool:
        if b in self.nodes[a].blocked or a in self.nodes[b].blocked:
            return False
        return not any(p.cuts(a, b, self.t) for p in self.partitions)

    def connected(self, node: _SimNode) -> list[str]:
        return [self.nodes[p].name for p in node.links if self.up(node.index, p)]

    # -- gossip -----------------------------------------------------------------------

    def _gossip_out(self, node: _SimNode, data: bytes, skip: int = -1) -> None:
        node.seen[hashlib.sha256(data).digest()] = self.t + SEEN_TTL_MS
        for p in node.links:
            if p == skip:
                continue
            self.c["gossip_sent"] += 1
            if not self.up(node.index, p) or self._lost(self.loss_pm):
                self.c["gossip_dropped"] += 1
                continue
            copies = 2 if self.dup_pm and self.net_rng.randrange(1000) < self.dup_pm else 1
            self.c["gossip_duplicated"] += copies - 1
            for _ in range(copies):
                self._at(self.t + self._delay(), _GOSSIP, node.index, p, data)

    def _publish_outbox(self, node: _SimNode) -> None:
        """What the node published at this instant, in batches like the runtime's."""
        out, node.outbox = node.outbox, []
        while out:
            batch: list[bytes] = []
            size = 64
            while out and size + len(out[0]) + 8 < MAX_GOSSIP_BYTES:
                raw = out.pop(0)
                batch.append(raw)
                size += len(raw) + 8
            if not batch:  # larger than a gossip message: sync carries it
                out.pop(0)
                continue
            assert node.core is not None
            node.core.stats["gossip_published"] += 1
            node.core.stats["gossip_events_out"] += len(batch)
            self._gossip_out(node, encode_gossip(self.network, batch))

    def _on_gossip(self, src: int, dst: int, data: bytes) -> None:
        node = self.nodes[dst]
        if not self.up(src, dst):
            self.c["gossip_dropped"] += 1
            return
        self.c["gossip_delivered"] += 1
        mid = hashlib.sha256(data).digest()
        if node.seen.get(mid, -1) > self.t:
            self.c["gossip_seen"] += 1
            return
        node.seen[mid] = self.t + SEEN_TTL_MS
        core = node.core
        if core is None:
            return  # hostile nodes relay nothing
        now = self.now(node)
        forward = self._guard(lambda: core.on_gossip(self.nodes[src].name, data, now), False)
        while self._guard(lambda: core.admit_queued(now), False):
            pass
        if forward:
            self._gossip_out(node, data, skip=src)
        self._flush(node)

    def _guard(self, fn: Callable[[], Any], default: Any) -> Any:
        """Call into the node's code; an exception is a bug: recorded, not fatal."""
        try:
            return fn()
        except Exception as exc:
            self._crash(exc)
            return default

    def _crash(self, exc: BaseException) -> None:
        if len(self.crashes) < 20:
            self.crashes.append(f"t={self.t} ms: {type(exc).__name__}: {exc}")

    # -- carrying out the core's Io -------------------------------------------------------

    def _flush(self, node: _SimNode) -> None:
        core = node.core
        if core is None:
            return
        while core.io:
            item = core.io.popleft()
            if isinstance(item, Publish):
                node.outbox.append(item.raw)
            elif isinstance(item, SyncWanted):
                self._start_wanted(node)
            elif isinstance(item, Block):
                p = self.by_name.get(item.peer)
                if p is not None:
                    node.blocked.add(p)
            elif isinstance(item, Unblock):
                p = self.by_name.get(item.peer)
                if p is not None:
                    node.blocked.discard(p)
            # Applied (domain reactions) and FetchBlob (no attachments here): nothing to do
        if node.outbox:
            self._publish_outbox(node)

    # -- sync ---------------------------------------------------------------------------

    def _start_wanted(self, node: _SimNode) -> None:
        assert node.core is not None
        running = {self.nodes[p].name for p in (*node.sessions, *node.waiting)}
        for name in node.core.sync.take_wanted(running):
            node.waiting.append(self.by_name[name])
        while node.waiting and len(node.sessions) < MAX_SESSIONS:
            self._open_session(node, node.waiting.popleft())

    def _open_session(self, node: _SimNode, peer: int) -> None:
        core = node.core
        assert core is not None
        name = self.nodes[peer].name
        now = self.now(node)
        if name in core.peers.partitioned:
            return
        self.c["sync_started"] += 1
        if not self.up(node.index, peer):
            self.c["sync_failed"] += 1
            core.sync_failed(name, "connection closed", now, peer_at_fault=False)
            return
        self._sid += 1
        s = _Session(self._sid, node.index, peer, session(core, name))
        s.req_at = s.reply_at = self.t
        node.sessions[peer] = s
        self._sessions[s.sid] = s
        self._advance(s, None)

    def _advance(self, s: _Session, value: Any) -> None:
        """Drive the session's generator until it waits on the network."""
        node = self.nodes[s.node]
        core = node.core
        assert core is not None
        name = self.nodes[s.peer].name
        while True:
            try:
                step = s.gen.send(value)
            except StopIteration as done:
                self.c["sync_ended"] += 1
                core.sync_ended(name, int(done.value), self.now(node))
                self._end(s)
                return
            except (SyncRefused, RemoteProtocolError) as exc:
                reason = exc.reason if isinstance(exc, RemoteProtocolError) else str(exc)
                self._fail(s, reason, isinstance(exc, RemoteProtocolError))
                return
            except Exception as exc:  # a bug in the sync code: the runtime logs and drops it
                self._crash(exc)
                self._end(s)
                return
            value = None
            if isinstance(step, Send | Ask):
                self._send_request(s, step.msg)
            if isinstance(step, Recv | Ask):
                if not s.inbox:
                    s.waiting = True
                    s.token += 1
                    self._at(self.t + ASK_TIMEOUT_MS, _TIMEOUT, s.sid, s.token)
                    return
                try:
                    value = decode_msg(s.inbox.popleft())
                except RemoteProtocolError as exc:
                    self._fail(s, exc.reason, True)
                    return
            elif isinstance(step, Admit):
                self.c["sync_events_received"] += len(step.raws)
                events, bad = core.decode(step.raws)
                value = core.take_page(events, bad, name, self.now(node))
            elif isinstance(step, Pause):
                self.c["sync_pauses"] += 1
                self._at(self.t + PAUSE_MS, _RESUME, s.sid)
                return

    def _send_request(self, s: _Session, msg: bytes) -> None:
        self.c["sync_frames"] += 1
        if (
            s.broken
            or s.closed_by_server
            or not self.up(s.node, s.peer)
            or self._lost(self.sync_loss_pm)
        ):
            s.broken = True
            self.c["sync_frames_lost"] += 1
            return
        s.req_at = max(s.req_at, self.t + self._delay())
        self._at(s.req_at, _REQ, s.sid, msg)

    def _arrived(self, sid: int) -> _Session | None:
        """The session a frame arrives for, if it still stands: a link that went
        down under it breaks it (the frame is lost with the connection)."""
        s = self._sessions.get(sid)
        if s is None or s.broken:
            return None
        if not self.up(s.node, s.peer):
            s.broken = True
            self.c["sync_frames_lost"] += 1
            return None
        return s

    def _on_request(self, sid: int, msg: bytes) -> None:
        s = self._arrived(sid)
        if s is None:
            return
        server = self.nodes[s.peer]
        client = self.nodes[s.node].name
        if server.core is None:
            reply = self._hostile_reply()
        else:
            core = server.core
            if client in core.peers.partitioned:
                s.closed_by_server = True
                return
            try:
                reply, close = core.serve_sync(client, msg, self.now(server))
                s.closed_by_server = s.closed_by_server or close
            except Exception as exc:  # a bug in the server: the stream is reset
                self._crash(exc)
                s.broken = True
                self._flush(server)
                return
            self._flush(server)
        self.c["sync_frames"] += 1
        if not self.up(s.node, s.peer) or self._lost(self.sync_loss_pm):
            s.broken = True
            self.c["sync_frames_lost"] += 1
            return
        s.reply_at = max(s.reply_at, self.t + self._delay())
        self._at(s.reply_at, _REPLY, sid, reply)

    def _on_reply(self, sid: int, reply: bytes) -> None:
        s = self._arrived(sid)
        if s is None:
            return
        s.inbox.append(reply)
        if not s.waiting:
            return
        s.waiting = False
        s.token += 1
        try:
            value = decode_msg(s.inbox.popleft())
        except RemoteProtocolError as exc:
            self._fail(s, exc.reason, True)
        else:
            self._advance(s, value)
        self._flush(self.nodes[s.node])

    def _on_timeout(self, sid: int, token: int) -> None:
        s = self._sessions.get(sid)
        if s is None or not s.waiting or s.token != token:
            return
        self.c["sync_timeouts"] += 1
        self._fail(s, "the peer did not answer in time", False, silent=True)
        self._flush(self.nodes[s.node])

    def _on_resume(self, sid: int) -> None:
        s = self._sessions.get(sid)
        if s is not None:
            self._advance(s, None)
            self._flush(self.nodes[s.node])

    def _fail(self, s: _Session, reason: str, at_fault: bool, *, silent: bool = False) -> None:
        node = self.nodes[s.node]
        assert node.core is not None
        self.c["sync_failed"] += 1
        node.core.sync_failed(
            self.nodes[s.peer].name,
            reason,
            self.now(node),
            peer_at_fault=at_fault,
            silent=silent,
        )
        self._end(s)

    def _end(self, s: _Session) -> None:
        s.gen.close()  # its `finally` releases the chains it was fetching
        node = self.nodes[s.node]
        self._sessions.pop(s.sid, None)
        node.sessions.pop(s.peer, None)
        assert node.core is not None
        if node.core.sync.wanted or node.waiting:
            self._start_wanted(node)

    # -- authoring ------------------------------------------------------------------------

    def _on_author(self, actor: int, ev: Event) -> None:
        self._author_q.setdefault(actor, deque()).append(ev)
        self._author_ready(actor)

    def _author_ready(self, actor: int) -> None:
        """Make the actor's waiting events at its home node, in order, while the
        node holds what each one builds on."""
        q = self._author_q.get(actor)
        while q:
            ev = q[0]
            node = self.nodes[self._home_of(ev)]
            core = node.core
            assert core is not None
            replica = core.store.replica
            deps = [*ev.refs, *([ev.prev] if ev.prev is not None else [])]
            if not all(replica.has(d) and d not in replica.pending for d in deps):
                self.c["authoring_waits"] += 1
                return
            q.popleft()
            self._authored_at[ev.id] = self.t
            try:
                core.admit_own([ev], self.now(node))
            except Exception as exc:
                self._crash(exc)
            self._flush(node)

    def _home_of(self, ev: Event) -> int:
        twin = self._twin_home.get(ev.id)
        return twin if twin is not None else self.home[self._actor_of[ev.author]]

    def _twins(self) -> list[Event]:
        """Forks: a second, validly signed event at an author's last seq."""
        w = self.workload
        authors = [i for i, wr in enumerate(w.writers) if wr.seq > 0]
        self.rng.shuffle(authors)
        out: list[Event] = []
        for i in sorted(authors[: self.equivocations]):
            last = w.replica.head(w.keys[i].public_key)[1]
            assert last is not None
            orig = decode_event(w.replica.raw[last], self.max_event_bytes, self.network)
            twin = make_event(
                w.keys[i],
                w.network,
                orig.seq,
                orig.prev,
                orig.timestamp + 1,
                "profile",
                {"name": f"twin of member {i}", "bio": "a restored key", "skills": []},
            )
            w.replica.add(twin)  # the reference holds every event, twins too
            home = self.home[i]
            self._twin_home[twin.id] = (home + 1 + self.rng.randrange(self.honest - 1)) % (
                self.honest
            )
            out.append(twin)
        return out

    # -- hostile nodes ------------------------------------------------------------------------

    def _hostile_tick(self, node: _SimNode) -> None:
        """Junk to every linked peer: a malformed message, a message for another
        network, a badly signed event (in turns)."""
        # each message differs, or the seen-set would drop the repeats unread
        n = self.t // TICK_MS
        if n % 3 == 0:
            data = b"\x93\xa3lmg\x01junk" + n.to_bytes(8, "big")
        elif n % 3 == 1:
            data = encode_gossip(b"\x00" * 32, [b"not an event %d" % n])
        else:
            raw = bytearray(self._sample_raw)
            raw[-1 - n % 32] ^= 1 + n % 255  # the signature no longer matches
            data = encode_gossip(self.network, [bytes(raw)])
        self.c["hostile_messages"] += 1
        self._gossip_out(node, data)

    def _hostile_reply(self) -> bytes:
        self.c["hostile_messages"] += 1
        return encode_msg("reply", heads=[["not an author", "nor a seq"]])

    # -- running --------------------------------------------------------------------------

    def _converged(self, expected: bytes) -> bool:
        for node in self.nodes[: self.honest]:
            assert node.core is not None
            replica = node.core.store.replica
            if replica.pending or replica.digest() != expected:
                return False
        return True

    def run(self, events: int = 200, max_ms: int = 600_000) -> SimReport:
        """Author `events` workload events (plus twins), then run until every
        honest node converges or `max_ms` of simulated time pass."""
        if events < 1 or max_ms < 1:
            raise SimError("events and max_ms must be positive")
        if self._heap or self.t:
            raise SimError("a Simulation runs once; make a new one")
        self._twin_home: dict[bytes, int] = {}
        made = list(self.workload.events(events))
        self._sample_raw = made[0].raw
        made += self._twins()
        expected = self.workload.replica.digest()
        last_authored = (len(made) - 1) * self.spacing_ms
        # The clock reads just after each event's date when it is authored
        # (the workload dates its events a second apart).
        last_ts = max(ev.timestamp for ev in made)
        self.clock_base = last_ts + 1000 - last_authored
        for i, ev in enumerate(made):
            self._at(i * self.spacing_ms, _AUTHOR, self._actor_of[ev.author], ev)
        n = len(self.nodes)
        for node in self.nodes:
            self._at(TICK_MS * node.index // n, _TICK, node.index)
        healed = max((p.end_ms for p in self.partitions), default=0)
        self._at(max(last_authored, healed), _CHECK)
        converged_at: int | None = None
        while self._heap:
            t, _, kind, args = heapq.heappop(self._heap)
            if t > max_ms:
                break
            self.t = t
            if kind == _GOSSIP:
                self._on_gossip(*args)
            elif kind == _TICK:
                self._tick(self.nodes[args[0]])
            elif kind == _AUTHOR:
                self._on_author(*args)
            elif kind == _REQ:
                self._on_request(*args)
            elif kind == _REPLY:
                self._on_reply(*args)
            elif kind == _TIMEOUT:
                self._on_timeout(*args)
            elif kind == _RESUME:
                self._on_resume(*args)
            elif kind == _CHECK:
                if self._converged(expected):
                    converged_at = t
                    break
                self._at(t + CHECK_MS, _CHECK)
        return self._report(len(made), expected, converged_at, last_authored, healed)

    def _tick(self, node: _SimNode) -> None:
        self._at(self.t + TICK_MS, _TICK, node.index)
        if node.core is None:
            self._hostile_tick(node)
            return
        connected = self.connected(node)
        core = node.core
        now = self.now(node)
        self._guard(lambda: core.tick(now, connected, connected), None)
        self._flush(node)
        for actor, q in sorted(self._author_q.items()):
            if q and self._home_of(q[0]) == node.index:
                self._author_ready(actor)

    def _spread(self) -> list[int]:
        """Per event applied by every honest node: from its authoring to the
        last node applying it (simulated ms), sorted."""
        last: dict[bytes, int] = {}
        count: dict[bytes, int] = {}
        for node in self.nodes[: self.honest]:
            assert node.core is not None
            for eid, _ts, wall, _arrived in node.core.applied_log:
                t = wall - self.clock_base - node.offset_ms
                last[eid] = max(last.get(eid, t), t)
                count[eid] = count.get(eid, 0) + 1
        return sorted(
            last[eid] - at for eid, at in self._authored_at.items() if count.get(eid) == self.honest
        )

    def _report(
        self, authored: int, expected: bytes, converged_at: int | None, last: int, healed: int
    ) -> SimReport:
        cores = [n.core for n in self.nodes[: self.honest] if n.core is not None]

        def total(key: str) -> int:
            return sum(c.stats.get(key, 0) for c in cores)

        spread = self._spread()

        def pct(q: float) -> int | None:
            return spread[min(len(spread) - 1, int(q * len(spread)))] if spread else None

        return SimReport(
            seed=self.seed,
            nodes=len(self.nodes),
            honest=self.honest,
            events=authored,
            expected=expected,
            digests=tuple(c.store.replica.digest() for c in cores),
            pending=tuple(len(c.store.replica.pending) for c in cores),
            forks=tuple(len(c.store.replica.state.forks) for c in cores),
            held=tuple(c.stats["events_held"] for c in cores),
            converged=converged_at is not None,
            converged_at_ms=converged_at,
            last_authored_ms=last,
            healed_at_ms=healed,
            sim_ms=self.t,
            spread_p50_ms=pct(0.5),
            spread_p99_ms=pct(0.99),
            spread_max_ms=spread[-1] if spread else None,
            events_in_gossip=total("events_applied_gossip"),
            events_in_sync=total("events_applied_sync"),
            events_in_own=total("events_applied_own"),
            events_in_held=total("events_applied_held"),
            penalties=total("peer_penalties"),
            bans=total("peers_banned"),
            crashes=tuple(self.crashes),
            **self.c,
        )
