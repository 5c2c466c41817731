"""The node: the node service, its runtime, and the domain commands a person uses.

- `node/_core.py`, **NodeCore**: the service. Everything the node decides
  (admission of every event, gossip forwarding, peers and bans, whom to sync
  with, held events, blobs to fetch again) as a pure object driven by inputs,
  answering with values and `Io` requests. `NodeCore.admit` is the one
  function where any event enters.
- `node/_runtime.py`, **Runtime**: trio and libp2p carrying inputs in and the
  service's requests out (gossip, sync sessions from `node/_sync.py`, blobs,
  dialing, pings).
- this module, **Node**: the ledger, keys and blobs, the domain commands
  (post, submit, reveal, review, award...) that author our own chain, and the
  reactions to applied events. The API, CLI and feature modules use it.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from learnmesh.ledger import BlobStore, Ledger
from learnmesh.protocol import (
    KINDS,
    Event,
    Genesis,
    KeyPair,
    RemoteProtocolError,
    award_body,
    commit_body,
    decode_event,
    make_event,
    reveal_body,
)
from learnmesh.protocol._kinds import check_body

from ._blocklist import Blocklist
from ._core import Admitted, CoreSettings, NodeCore, Now
from ._p2p import P2PHost
from ._relay_policy import default_relay_limit
from ._runtime import PeerSilent, Runtime
from ._wire import gossip_topic

__all__ = ["Admitted", "Node", "NodeSettings", "PeerSilent", "UserError"]

log = logging.getLogger("learnmesh.node")


class UserError(Exception):
    """A request the node refuses, with a sentence for the person who made it."""

    def __init__(self, message: str, status: int = 400, code: str = "bad_request") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


@dataclass
class NodeSettings:
    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    api_host: str = "127.0.0.1"
    api_port: int = 0
    bootstrap: list[str] = field(default_factory=list)
    log_level: str = "info"
    sync_interval: float = 3.0
    gossip_delay: float = 0.05  # batching window for outgoing events
    gossip_rate: float = 40.0  # gossip messages per second at most
    peer_msgs_per_s: float = 200.0  # inbound gossip messages per peer before dropping
    fetch_attachments: bool = True
    heartbeat_interval: float = 1.0
    mdns: bool = False  # discover peers on the local network
    min_peers: int = 3  # below this, remembered peers are dialed again
    redial_interval: float = 10.0
    future_hold_ms: int = 24 * 3600 * 1000  # hold events dated up to this past the skew
    max_held: int = 10_000  # events held aside until their time comes
    ping_interval: float = 10.0  # seconds between liveness pings of each peer
    ping_timeout: float = 10.0  # a peer that does not answer a ping in this long is dropped
    # node/_relay_policy.py (LEARNMESH_RELAY_PER_AUTHOR_PER_MIN overrides the default)
    relay_per_author_per_min: int = field(default_factory=default_relay_limit)

    def core(self) -> CoreSettings:
        return CoreSettings(
            sync_interval=self.sync_interval,
            peer_msgs_per_s=self.peer_msgs_per_s,
            future_hold_ms=self.future_hold_ms,
            max_held=self.max_held,
            relay_per_author_per_min=self.relay_per_author_per_min,
        )


class Node:
    def __init__(
        self,
        *,
        data_dir: Path,
        key: KeyPair,
        p2p_seed: bytes,
        genesis: Genesis,
        ledger: Ledger,
        blobs: BlobStore,
        settings: NodeSettings,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        restored_marker: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.key = key
        self.p2p_seed = p2p_seed
        self.genesis = genesis
        self.network = genesis.network_id
        self.ledger = ledger
        self.blobs = blobs
        self.settings = settings
        self.clock = clock
        self.monotonic = monotonic
        self.topic = gossip_topic(self.network)
        self.started_mono = monotonic()  # for uptime: the wall clock may be moved (devnets)
        # Moderation, a node policy (never in the state): whose events this node
        # hides and does not forward.
        self.blocklist = Blocklist(data_dir)
        self.core = NodeCore(
            genesis=genesis,
            store=ledger,
            settings=settings.core(),
            rng=random.Random(os.urandom(16)),
            blocked=self.blocklist.is_blocked,
        )
        self.runtime: Runtime | None = None
        # The service's parts, as the API and feature modules read them.
        self.stats = self.core.stats
        self.peers = self.core.peers
        self.relay = self.core.relay
        self.applied_log = self.core.applied_log
        self._author_lock = trio.Lock()
        self._own_head: tuple[bytes, int] | None = None  # (id, timestamp) of our last event
        self._synced_once = trio.Event()
        self._drafts_dir = data_dir / "drafts"
        # After `key import` the node must learn its own chain's head from a peer
        # before it signs, or it could fork its own chain (Scuttlebutt's failure).
        self._restored_marker = restored_marker
        self.key_imported = restored_marker is not None and restored_marker.exists()
        # Private messages (node/_messages.py): their own topic, stores and fetch protocol.
        from ._messages import Messages

        self.messages = Messages(self)

    # -- the running node -----------------------------------------------------------

    def now(self) -> Now:
        return Now(int(self.clock() * 1000), self.monotonic())

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    @property
    def p2p(self) -> P2PHost | None:
        return self.runtime.p2p if self.runtime is not None else None

    @property
    def peer_id(self) -> str:
        return self.p2p.peer_id if self.p2p else ""

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self.runtime = Runtime(
            self.core,
            settings=self.settings,
            p2p_seed=self.p2p_seed,
            blobs=self.blobs,
            data_dir=self.data_dir,
            now=self.now,
            on_applied=self._after_apply,
            on_synced=self._synced,
            on_host=self.messages.start,  # private messages: own topic, fetch protocol
            tasks=(
                lambda: _dispute_duties(self),  # node/_disputes.py: reveal, claim
                self.messages.run,  # fetch what peers hold for us
                self._reveal_loop,
            ),
        )
        await self.runtime.run(task_status=task_status)

    async def _reveal_loop(self) -> None:
        """Try unrevealed accepted drafts again now and then (a reveal that
        failed, say before an imported key's chain was synced); a close that
        arrives triggers one at once (`_after_apply`)."""
        while True:
            await trio.sleep(15.0)
            await self._reveal_ready()

    def _synced(self) -> None:
        self._synced_once.set()
        if self.key_imported and self._restored_marker is not None:
            self._restored_marker.unlink(missing_ok=True)
            self.key_imported = False

    def _spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        if self.runtime is not None:
            self.runtime.spawn(fn, *args)

    # -- peers (the service decides, the runtime carries out) -----------------------

    async def connect(self, addr: str) -> str:
        assert self.runtime is not None
        return await self.runtime.connect(addr)

    def connected_peers(self) -> list[str]:
        return self.runtime.connected_peers() if self.runtime else []

    def live_peers(self) -> list[str]:
        """Connected peers worth syncing with: not partitioned off, not banned,
        and not a peer whose last stream would not open (it left or hangs)."""
        return self.core.usable(self.connected_peers(), self.now())

    def mesh_peers(self) -> list[str]:
        """Neighbours grafted into this node's gossip mesh for the network topic."""
        return self.p2p.mesh_peers(self.topic) if self.p2p else []

    def dial_addrs(self) -> list[str]:
        """Addresses others can dial: a wildcard listen address becomes loopback
        (a LAN peer would use this machine's own address instead)."""
        addrs = self.p2p.listen_addrs() if self.p2p else []
        return [a.replace("/ip4/0.0.0.0/", "/ip4/127.0.0.1/") for a in addrs]

    def penalise(self, peer: str, reason: str, weight: float = 10.0) -> None:
        self.core.penalise(peer, reason, self.now(), weight)

    def partition(self, peers: Iterable[str]) -> None:
        """Admin: refuse these peers' connections (how devnet splits a network)."""
        self.core.partition(peers)

    def heal(self) -> None:
        self.core.heal()

    async def sync_with(self, peer: str) -> int:
        return await self.runtime.sync_with(peer) if self.runtime else 0

    def request_sync(self, peer: str, *, urgent: bool = True) -> None:
        self.core.request_sync(peer, self.now(), urgent=urgent)

    async def fetch_blob(self, h: bytes, expected_size: int | None = None) -> bool:
        if self.runtime is None:
            return self.blobs.has(h)
        return await self.runtime.fetch_blob(h, expected_size)

    # -- events in and out ----------------------------------------------------------

    def stored_event(self, eid: bytes) -> Event:
        """An applied event, decoded from the bytes this node verified when it stored them."""
        raw = self.ledger.replica.raw[eid]
        return decode_event(raw, self.genesis.params.max_event_bytes, self.network, verify=False)

    def decode_raws(self, raws: Iterable[Any]) -> tuple[list[Event], list[RemoteProtocolError]]:
        return self.core.decode(raws)

    def admit(self, events: Iterable[Event], peer: str | None = None) -> list[Admitted]:
        """`NodeCore.admit` at this moment: the one way in for every event."""
        return self.core.admit(events, peer, self.now())

    def held(self) -> list[Event]:
        return self.core.held.listed()

    def publish(self, raw: bytes) -> None:
        self.core.publish(raw)

    def _count(self, what: str, code: str | None) -> None:
        self.core.count(what, code)

    # -- writing our own chain -------------------------------------------------------------

    async def author(
        self,
        kind: str,
        body: dict[str, Any],
        refs: Iterable[bytes] = (),
        *,
        claims: bool = False,
    ) -> Event:
        """Sign, check, store and publish the next event of our chain. A rule the
        event would break is refused here, before it enters the chain. With
        `claims`, the credits to claim are read inside the same critical section
        that signs: two spends at once never claim one credit twice."""
        await self._wait_own_chain()
        async with self._author_lock:
            return self._author_locked(kind, body, refs, claims=claims)

    async def _wait_own_chain(self) -> None:
        if self.key_imported and not self._synced_once.is_set():
            with trio.move_on_after(30):
                await self._synced_once.wait()
            if not self._synced_once.is_set():
                raise UserError(
                    "this key was imported: the node must sync its own chain from a peer "
                    "before it writes (no peer answered yet)",
                    status=409,
                    code="not_synced",
                )

    def _author_locked(
        self, kind: str, body: dict[str, Any], refs: Iterable[bytes], *, claims: bool
    ) -> Event:
        """`author`'s work, run while holding `_author_lock` (so a caller that
        must write two events back to back, like a bounty and its terms, holds
        the lock across both)."""
        ev = self._sign_next(kind, body, refs, claims=claims)
        result = self.core.admit_own([ev], self.now())[0]  # and published
        if result.status != "applied":
            raise UserError(
                f"event not applied: {result.status} {result.reason or ''}".strip(),
                status=500,
                code="internal",
            )
        return ev

    def _sign_next(
        self, kind: str, body: dict[str, Any], refs: Iterable[bytes], *, claims: bool
    ) -> Event:
        """The next event of our chain, signed on the live state (head, claims),
        or UserError if the rules would make it void. Holds `_author_lock`."""
        replica = self.ledger.replica
        seq, head = replica.head(self.key.public_key)
        if head is None:
            last = 0
        elif self._own_head is not None and self._own_head[0] == head:
            last = self._own_head[1]  # kept in memory: no read of the head's bytes per event
        else:
            last = self.stored_event(head).timestamp
        ts = max(self.now_ms(), last + 1)  # our own chain's times never go backwards
        refs = sorted({*refs, *(self._claims() if claims else ())})
        missing = [r for r in refs if r not in replica.raw]
        if missing:
            raise UserError(
                f"unknown event {missing[0].hex()[:16]}", status=404, code="not_found"
            )
        try:
            ev = make_event(self.key, self.network, seq + 1, head, ts, kind, body, refs)
        except Exception as exc:  # LocalProtocolError: the user's input breaks a schema
            raise UserError(str(getattr(exc, "reason", exc)), code="invalid") from exc
        void = replica.state.would_void(ev)
        if void is not None:
            raise UserError(void[1], status=409, code=void[0])
        # Used only while it is still the replica's head (a fork rebuild or a
        # reload may change that; then the head's bytes are read back).
        self._own_head = (ev.id, ev.timestamp)
        return ev

    async def author_batch(
        self, items: list[tuple[str, dict[str, Any], bool]]
    ) -> tuple[list[Event], int | None, UserError | None]:
        """Sign, store and publish many events of our chain (kind, body,
        claims) in one ledger transaction. Each is made on the state the one
        before it left and goes through `admit` like any other; the first that
        the rules would refuse stops the batch: the events before it stay.
        Returns (events made, index of the refused item or None, its error)."""
        await self._wait_own_chain()
        made: list[Event] = []
        stop: list[tuple[int, UserError]] = []

        def make() -> Iterator[Event]:
            for i, (kind, body, claims) in enumerate(items):
                try:
                    ev = self._sign_next(kind, body, (), claims=claims)
                except UserError as exc:
                    stop.append((i, exc))
                    return
                made.append(ev)
                yield ev

        async with self._author_lock:
            results = self.core.admit_own(make(), self.now())  # and published
            for ev, r in zip(made, results, strict=True):
                if r.status != "applied":
                    raise UserError(
                        f"event {ev.id.hex()[:16]} not applied: {r.status} {r.reason or ''}",
                        status=500,
                        code="internal",
                    )
        return made, (stop[0][0] if stop else None), (stop[0][1] if stop else None)

    def _claims(self) -> list[bytes]:
        credits = self.ledger.replica.state.unclaimed_credits(self.key.public_key)
        return sorted(c for c, _ in credits)[:64]

    async def post_bounty(self, body: dict[str, Any], terms: dict[str, Any] | None = None) -> Event:
        """Post a bounty; with `terms` (a bounty_terms body without `bounty`), write
        them as the very next event of our chain, as PROTOCOL.md requires, in the
        same critical section so nothing of ours comes between."""
        if terms is None:
            return await self.author("bounty", body, claims=True)
        self._check_terms(terms)  # before the bounty: never a bounty without its terms
        async with self._author_lock:
            ev = self._author_locked("bounty", body, (), claims=True)
            t = {**terms, "bounty": ev.id}
            self._author_locked("bounty_terms", t, {ev.id, *t["prereq_bounties"]}, claims=False)
            return ev

    def _check_terms(self, terms: dict[str, Any]) -> None:
        probe = {**terms, "bounty": bytes(32)}
        refs = tuple(sorted({bytes(32), *terms.get("prereq_bounties", [])}))
        try:
            check_body(KINDS["bounty_terms"], probe, refs, self.key.public_key)
        except RemoteProtocolError as exc:
            raise UserError(exc.reason, code="invalid") from exc
        known = self.ledger.replica.state.bounties
        for p in terms["prereq_bounties"]:
            if p not in known:
                raise UserError(
                    f"prerequisite {p.hex()[:16]} is not a bounty this node knows",
                    status=404,
                    code="not_found",
                )

    async def transfer(self, to: bytes, amount: int, memo: str = "") -> Event:
        return await self.author(
            "transfer", {"to": to, "amount": amount, "memo": memo}, claims=True
        )

    async def submit(self, bounty: bytes, text: str, files: list[tuple[str, bytes]]) -> Event:
        """Commit now; keep content and salt; reveal by ourselves once the close lists us."""
        b = self.ledger.replica.state.bounties.get(bounty)
        if b is None:
            raise UserError("no such bounty", status=404, code="not_found")
        if self.now_ms() > b.submit_by:
            raise UserError("the submission deadline has passed", status=409, code="late")
        attachments: list[dict[str, Any]] = []
        for name, data in files:
            if len(data) > self.genesis.params.max_blob_bytes:
                raise UserError(f"{name} is over the network's attachment limit", code="too_large")
            h = self.blobs.put(data)
            attachments.append({"hash": h, "name": name[:128] or "file", "size": len(data)})
        salt = os.urandom(16)
        body = commit_body(bounty, self.key.public_key, text, attachments, salt)
        # The draft (content and salt) is on disk before the commit is signed:
        # a node killed in between still holds what it needs to reveal.
        draft: dict[str, Any] = {
            "bounty": bounty.hex(),
            "commitment": body["commitment"].hex(),
            "commit": None,
            "text": text,
            "salt": salt.hex(),
            "attachments": [
                {"hash": a["hash"].hex(), "name": a["name"], "size": a["size"]} for a in attachments
            ],
            "revealed": None,
        }
        self._save_draft(draft)
        try:
            ev = await self.author("commit", body, [bounty])
        except BaseException:
            (self._drafts_dir / f"{draft['commitment']}.json").unlink(missing_ok=True)
            raise
        draft["commit"] = ev.id.hex()
        self._save_draft(draft)
        return ev

    def _save_draft(self, d: dict[str, Any]) -> None:
        self._drafts_dir.mkdir(mode=0o700, exist_ok=True)
        path = self._drafts_dir / f"{d['commitment']}.json"
        tmp = path.with_suffix(".tmp")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(json.dumps(d))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def drafts(self) -> list[dict[str, Any]]:
        out = []
        if self._drafts_dir.exists():
            for p in sorted(self._drafts_dir.glob("*.json")):
                try:
                    out.append(json.loads(p.read_text()))
                except (OSError, ValueError):
                    log.warning("unreadable draft %s", p)
        return out

    def _after_apply(self, applied: list[Event]) -> None:
        """Reactions to new events: reveal our accepted drafts, fetch attachments."""
        if not applied or any(e.kind.name == "close" for e in applied):
            self._spawn(self._reveal_ready)
        if self.settings.fetch_attachments:
            for e in applied:
                if e.kind.name == "reveal":
                    for a in e.body["attachments"]:
                        if not self.blobs.has(a["hash"]):
                            self._spawn(self.fetch_blob, a["hash"], a["size"])
        self._after_apply_credentials(applied)

    def _after_apply_credentials(self, applied: list[Event]) -> None:
        """Credentials (node/_credentials.py): fetch the blobs `credential` events
        name; on start, sign those our own awards still lack."""
        from ._credentials import fetch_credential_blobs, issue_missing_credentials

        fetch_credential_blobs(self, applied)
        if not applied:
            self._spawn(issue_missing_credentials, self)

    async def _reveal_ready(self) -> None:
        state = self.ledger.replica.state
        me = state.accounts.get(self.key.public_key)
        for d in self.drafts():
            if d.get("revealed"):
                continue
            if d.get("commit") is None:  # killed between saving and signing: find it
                want = bytes.fromhex(d["commitment"])
                found = [
                    cid
                    for cid, c in state.commits.items()
                    if c.commitment == want and c.learner == self.key.public_key
                ]
                if not found:
                    continue
                d["commit"] = found[0].hex()
                self._save_draft(d)
            commit, bounty_id = bytes.fromhex(d["commit"]), bytes.fromhex(d["bounty"])
            b = state.bounties.get(bounty_id)
            if b is None or b.close_id is None or commit not in b.accepted:
                continue
            if me is not None and commit in me.revealed:
                self._mark_revealed(d, "already")
                continue
            atts = [
                {"hash": bytes.fromhex(a["hash"]), "name": a["name"], "size": a["size"]}
                for a in d["attachments"]
            ]
            body = reveal_body(
                bounty_id, commit, b.close_id, d["text"], atts, bytes.fromhex(d["salt"])
            )
            try:
                ev = await self.author("reveal", body, [commit, b.close_id])
            except UserError as exc:
                log.warning("could not reveal %s: %s", d["commit"][:12], exc.message)
                continue
            self._mark_revealed(d, ev.id.hex())
            log.info("revealed submission %s for bounty %s", ev.id.hex()[:12], d["bounty"][:12])

    def _mark_revealed(self, d: dict[str, Any], value: str) -> None:
        d["revealed"] = value
        self._save_draft(d)

    async def close(self, bounty: bytes, accept: list[bytes] | None = None) -> Event:
        b = self.ledger.replica.state.bounties.get(bounty)
        if b is None:
            raise UserError("no such bounty", status=404, code="not_found")
        if b.author != self.key.public_key:
            raise UserError("only the bounty's author closes it", status=403, code="not_mentor")
        accepted = sorted(b.commits) if accept is None else sorted(set(accept))
        return await self.author(
            "close", {"bounty": bounty, "accepted": accepted}, [bounty, *accepted]
        )

    async def review(self, submission: bytes, scores: dict[str, int], comment: str) -> Event:
        found = self.ledger.replica.state.find_submission(submission)
        if found is None:
            raise UserError(
                "no such submission (is it revealed yet?)", status=404, code="not_found"
            )
        b, _ = found
        names = [n for n, _ in b.rubric]
        unknown = set(scores) - set(names)
        if unknown:
            raise UserError(
                f"unknown rubric criteria {sorted(unknown)}; the rubric is {names}",
                code="bad_scores",
            )
        missing = [n for n in names if n not in scores]
        if missing:
            raise UserError(
                f"a score is needed for every criterion; missing {missing}", code="bad_scores"
            )
        body = {
            "bounty": b.id,
            "submission": submission,
            "scores": [scores[n] for n in names],
            "comment": comment,
        }
        return await self.author("review", body, [submission])

    async def award(
        self,
        bounty: bytes,
        winners: dict[bytes, int | None],
        reviewers: str = "median",
        min_trust: int = 0,
    ) -> Event:
        """Pay `winners`; the reviewers' share goes evenly to the reviews judged
        honest by `reviewers`: "median" (§6.4's plain median) or "trusted" (near
        the trust-weighted median of the reviews whose reviewer has at least
        `min_trust` in the bounty's skills, PROTOCOL.md §6.5)."""
        if reviewers not in ("median", "trusted"):
            raise UserError("reviewers is 'median' or 'trusted'", code="bad_request")
        state = self.ledger.replica.state
        try:
            if reviewers == "trusted":
                from learnmesh.protocol._trust import trust_view, trusted_award_body

                view = trust_view(state, self.now_ms())
                body = trusted_award_body(state, view, bounty, winners, min_trust)
            else:
                body = award_body(state, bounty, winners)
        except Exception as exc:
            raise UserError(str(getattr(exc, "reason", exc)), code="invalid") from exc
        refs = [
            bounty,
            *(w["submission"] for w in body["winners"]),
            *(r["review"] for r in body["reviewers"]),
        ]
        ev = await self.author("award", body, refs)
        from ._credentials import issue_credentials  # each winner's signed Open Badge

        await issue_credentials(self, ev)
        return ev

    async def refund(self, bounty: bytes) -> Event:
        return await self.author("refund", {"bounty": bounty}, [bounty])


async def _dispute_duties(node: Node) -> None:
    from ._disputes import duty_loop  # late: node/_disputes.py imports this module

    await duty_loop(node)
