"""Shared builders for the protocol tests: a small network whose members write
their own chains, one bounty lifecycle at a time, with every event added to a
replica so a test can look at the outcome. Also hand-signing of arbitrary
event arrays, so a test can feed a well-signed event with one bad field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from learnmesh.protocol import (
    DOMAIN,
    WIRE_VERSION,
    ChainWriter,
    Event,
    Genesis,
    KeyPair,
    Outcome,
    Params,
    Replica,
    canonical_pack,
    commit_body,
    reveal_body,
)
from learnmesh.protocol._kinds import required_refs

T0 = 1_700_000_000_000
DAY = 86_400_000
RUBRIC = [{"name": "correctness", "max": 10}, {"name": "clarity", "max": 10}]


def key(i: int) -> KeyPair:
    return KeyPair(bytes([i + 1]) * 32)


def sign_fields(k: KeyPair, fields: list[Any]) -> bytes:
    """Encode a 10-field event array canonically and sign it as `make_event`
    would, whatever its fields hold (the last field is replaced)."""
    raw = canonical_pack([*fields[:9], bytes(64)])
    sig = k.sign(DOMAIN + raw[:-66])
    return raw[:-64] + sig


def event_fields(
    k: KeyPair,
    network: bytes,
    kind: int,
    body: Any,
    refs: list[bytes] | None = None,
    seq: int = 1,
    prev: bytes | None = None,
    ts: int = T0,
) -> list[Any]:
    return [WIRE_VERSION, network, k.public_key, seq, prev, ts, kind, body, refs or [], bytes(64)]


def refs_for(kind: str, body: dict[str, Any]) -> list[bytes]:
    try:
        return sorted(required_refs(kind, body))
    except (KeyError, TypeError):
        return []


@dataclass
class Lifecycle:
    bounty: Event
    commits: list[Event] = field(default_factory=list)
    close: Event | None = None
    reveals: list[Event] = field(default_factory=list)
    reviews: list[Event] = field(default_factory=list)
    award: Event | None = None


class Net:
    """A test network: members 0..n-1, each with `each` tokens; one replica."""

    def __init__(
        self,
        n: int = 6,
        each: int = 100_000,
        params: Params | None = None,
        trusted: int = 1,
        allocations: list[int] | None = None,
    ) -> None:
        self.keys = [key(i) for i in range(n)]
        amounts = allocations or [each] * n
        self.genesis = Genesis(
            name="test",
            created_ms=T0,
            allocations=tuple(
                sorted((k.public_key, a) for k, a in zip(self.keys, amounts, strict=True))
            ),
            trusted=tuple(sorted(k.public_key for k in self.keys[:trusted])),
            params=params or Params(),
        )
        self.network = self.genesis.network_id
        self.writers = [ChainWriter(k, self.network) for k in self.keys]
        self.replica = Replica(self.genesis)
        self.events: list[Event] = []
        self.now = T0 + 1000
        self.last: Outcome | None = None

    @property
    def state(self) -> Any:
        return self.replica.state

    def pk(self, who: int) -> bytes:
        return self.keys[who].public_key

    def emit(
        self,
        who: int,
        kind: str,
        body: dict[str, Any],
        refs: list[bytes] | tuple[bytes, ...] | None = None,
        ts: int | None = None,
        add: bool = True,
    ) -> Event:
        self.now += 1000
        ev = self.writers[who].sign(
            kind,
            body,
            self.now if ts is None else ts,
            refs_for(kind, body) if refs is None else refs,
        )
        self.events.append(ev)
        if add:
            self.last = self.replica.add(ev)
        return ev

    def void(self, ev: Event) -> str | None:
        v = self.state.void.get(ev.id)
        return None if v is None else str(v[0])

    # -- one step of a bounty's life each ------------------------------------------

    def bounty(
        self,
        who: int,
        reward: int = 10_000,
        share_bp: int = 1000,
        submit_in: int = DAY,
        review_in: int = 2 * DAY,
        quorum: int = 1,
        claims: list[bytes] | None = None,
        ts: int | None = None,
    ) -> Event:
        at = self.now + 1000 if ts is None else ts
        body = {
            "title": "Explain a concept",
            "description": "With an example.",
            "rubric": RUBRIC,
            "skills": ["python"],
            "reward": reward,
            "reviewer_share_bp": share_bp,
            "submit_by": at + submit_in,
            "review_by": at + review_in,
            "quorum": quorum,
        }
        return self.emit(who, "bounty", body, claims or [], ts=at)

    def commit(
        self, who: int, bounty: Event, text: str | None = None, ts: int | None = None
    ) -> Event:
        text = f"answer of {who}" if text is None else text
        salt = bytes([who]) * 16
        return self.emit(who, "commit", commit_body(bounty.id, self.pk(who), text, [], salt), ts=ts)

    def close(self, who: int, bounty: Event, accepted: list[Event]) -> Event:
        return self.emit(
            who, "close", {"bounty": bounty.id, "accepted": sorted(c.id for c in accepted)}
        )

    def reveal(
        self,
        who: int,
        bounty: Event,
        commit: Event,
        close: Event,
        text: str | None = None,
        ts: int | None = None,
        salt: bytes | None = None,
    ) -> Event:
        text = f"answer of {who}" if text is None else text
        salt = bytes([who]) * 16 if salt is None else salt
        return self.emit(
            who, "reveal", reveal_body(bounty.id, commit.id, close.id, text, [], salt), ts=ts
        )

    def review(
        self,
        who: int,
        bounty: Event,
        sub: Event,
        scores: list[int] | None = None,
        ts: int | None = None,
    ) -> Event:
        body = {
            "bounty": bounty.id,
            "submission": sub.id,
            "scores": [7, 8] if scores is None else scores,
            "comment": "ok",
        }
        return self.emit(who, "review", body, ts=ts)

    def award(
        self,
        who: int,
        bounty: Event,
        winners: list[tuple[Event, int]],
        reviewers: list[tuple[Event, int]] = (),  # type: ignore[assignment]
    ) -> Event:
        body = {
            "bounty": bounty.id,
            "winners": sorted(
                ({"submission": s.id, "amount": n} for s, n in winners),
                key=lambda w: w["submission"],
            ),
            "reviewers": [{"review": r.id, "amount": n} for r, n in reviewers],
        }
        return self.emit(who, "award", body)

    def transfer(self, who: int, to: int, amount: int, claims: list[bytes] | None = None) -> Event:
        body = {"to": self.pk(to), "amount": amount, "memo": ""}
        return self.emit(who, "transfer", body, claims or [])

    def lifecycle(
        self,
        mentor: int = 0,
        learners: tuple[int, ...] = (1, 2),
        reviewers: tuple[int, ...] = (3, 4),
        award: bool = True,
    ) -> Lifecycle:
        """post, commit, close, reveal, review every submission, award the first."""
        b = self.bounty(mentor)
        lc = Lifecycle(b)
        lc.commits = [self.commit(w, b) for w in learners]
        lc.close = self.close(mentor, b, lc.commits)
        lc.reveals = [
            self.reveal(w, b, c, lc.close) for w, c in zip(learners, lc.commits, strict=True)
        ]
        for r in reviewers:
            lc.reviews += [self.review(r, b, s) for s in lc.reveals]
        if award:
            lc.award = self.award(mentor, b, [(lc.reveals[0], 5000)], [(lc.reviews[0], 500)])
        return lc


def test_lifecycle_builder_makes_a_clean_history() -> None:
    net = Net()
    lc = net.lifecycle()
    assert lc.award is not None
    assert net.state.void == {}
    assert net.replica.pending == {}
    assert net.state.bounties[lc.bounty.id].phase == "awarded"
    assert net.state.check_invariants() == []
