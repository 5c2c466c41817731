"""A seeded, realistic mix of valid events: mentors post bounties, learners
commit and reveal, peers review, mentors close and award or refund, people
transfer tokens and vouch. Used by the benchmark, the tests and the simulator.

Deterministic: the seed and the start time decide every byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ._author import ChainWriter, award_body, commit_body, reveal_body
from ._event import Event
from ._genesis import Genesis, Params
from ._identity import KeyPair
from ._prng import SplitMix64
from ._replica import Replica

__all__ = ["Workload", "make_genesis"]

_DAY = 86_400_000
_SKILLS = ["python", "rust", "math", "writing", "design", "networks", "music", "biology"]


def make_genesis(
    keys: list[KeyPair],
    name: str = "workload",
    created_ms: int = 1_700_000_000_000,
    each: int = 1_000_000,
    trusted: int = 2,
    params: Params | None = None,
) -> Genesis:
    return Genesis(
        name=name,
        created_ms=created_ms,
        allocations=tuple(sorted((k.public_key, each) for k in keys)),
        trusted=tuple(sorted(k.public_key for k in keys[:trusted])),
        params=params or Params(),
    )


@dataclass
class _Task:
    """One bounty's life, advanced one event at a time."""

    mentor: int
    learners: list[int]
    reviewers: list[int]
    refund: bool
    step: int = 0
    bounty: Event | None = None
    commits: dict[int, tuple[Event, str, bytes]] = field(default_factory=dict)
    close: Event | None = None
    reveals: list[Event] = field(default_factory=list)
    todo: list[tuple[bytes, int]] = field(default_factory=list)


class Workload:
    """Generates valid events in causal order, checking each against a replica."""

    def __init__(
        self, seed: int = 1, actors: int = 24, start_ms: int = 1_700_000_000_000, check: bool = True
    ) -> None:
        self.rng = SplitMix64(seed)
        self.keys = [KeyPair(SplitMix64(seed * 1000 + i).bytes(32)) for i in range(actors)]
        self.genesis = make_genesis(self.keys, created_ms=start_ms)
        self.network = self.genesis.network_id
        self.writers = [ChainWriter(k, self.network) for k in self.keys]
        self.replica = Replica(self.genesis)
        self.now = start_ms + 1000
        self.check = check
        self.tasks: list[_Task] = []

    def _emit(
        self,
        who: int,
        kind: str,
        body: dict[str, Any],
        refs: list[bytes] | tuple[bytes, ...] = (),
    ) -> Event:
        self.now += 1000
        ev = self.writers[who].sign(kind, body, self.now, refs)
        out = self.replica.add(ev)
        if self.check and (out.status != "applied" or out.void):
            raise AssertionError(f"workload made a bad {kind}: {out.status} {out.void}")
        return ev

    def _claims(self, who: int) -> list[bytes]:
        return sorted(
            c for c, _ in self.replica.state.unclaimed_credits(self.keys[who].public_key)
        )[:64]

    def _new_task(self) -> _Task:
        n = len(self.keys)
        mentor = self.rng.below(n)
        others = [i for i in range(n) if i != mentor]
        self.rng.shuffle(others)
        k = 1 + self.rng.below(4)
        return _Task(mentor, others[:k], others[k : k + 3], refund=self.rng.chance(150))

    def events(self, count: int) -> Iterator[Event]:
        """Yield `count` valid events."""
        made = 0
        while made < count:
            r = self.rng.below(100)
            if r < 8:
                yield self._side_event()
                made += 1
                continue
            if len(self.tasks) < 6:
                self.tasks.append(self._new_task())
            t = self.tasks[self.rng.below(len(self.tasks))]
            ev = self._advance(t)
            if ev is None:
                self.tasks.remove(t)
                continue
            yield ev
            made += 1

    def _side_event(self) -> Event:
        n = len(self.keys)
        who = self.rng.below(n)
        r = self.rng.below(10)
        pk = self.keys[who].public_key
        if r < 6 and self.replica.state.account(pk).spendable > 10:
            to = (who + 1 + self.rng.below(n - 1)) % n
            claims = self._claims(who)
            return self._emit(
                who,
                "transfer",
                {
                    "to": self.keys[to].public_key,
                    "amount": 1 + self.rng.below(10),
                    "memo": "thanks",
                },
                claims,
            )
        if r < 8:
            to = (who + 1 + self.rng.below(n - 1)) % n
            return self._emit(who, "vouch", {"account": self.keys[to].public_key})
        skills = [self.rng.choice(_SKILLS)]
        return self._emit(
            who, "profile", {"name": f"member {who}", "bio": "learning in public", "skills": skills}
        )

    def _advance(self, t: _Task) -> Event | None:
        if t.bounty is None:
            reward = 1000 * (1 + self.rng.below(20))
            body = {
                "title": f"Task {self.rng.below(10_000)}: explain a concept",
                "description": "Write a short explanation with an example. " * 4,
                "rubric": [{"name": "correctness", "max": 10}, {"name": "clarity", "max": 10}],
                "skills": sorted({self.rng.choice(_SKILLS), self.rng.choice(_SKILLS)}),
                "reward": reward,
                "reviewer_share_bp": 1000,
                "submit_by": self.now + _DAY,
                "review_by": self.now + 2 * _DAY,
                "quorum": 1,
            }
            t.bounty = self._emit(t.mentor, "bounty", body, self._claims(t.mentor))
            return t.bounty
        if len(t.commits) < len(t.learners):
            who = t.learners[len(t.commits)]
            text = f"My answer from member {who}: " + "lorem ipsum " * (5 + self.rng.below(20))
            salt = self.rng.bytes(16)
            ev = self._emit(
                who,
                "commit",
                commit_body(t.bounty.id, self.keys[who].public_key, text, [], salt),
                [t.bounty.id],
            )
            t.commits[who] = (ev, text, salt)
            return ev
        if t.refund and t.close is None:
            t.close = t.bounty  # marker: refund path has no close
            return self._emit(t.mentor, "refund", {"bounty": t.bounty.id}, [t.bounty.id])
        if t.refund:
            return None
        if t.close is None:
            accepted = sorted(c.id for c, _, _ in t.commits.values())
            t.close = self._emit(
                t.mentor,
                "close",
                {"bounty": t.bounty.id, "accepted": accepted},
                [t.bounty.id, *accepted],
            )
            return t.close
        if len(t.reveals) < len(t.learners):
            who = t.learners[len(t.reveals)]
            c, text, salt = t.commits[who]
            body = reveal_body(t.bounty.id, c.id, t.close.id, text, [], salt)
            ev = self._emit(who, "reveal", body, [c.id, t.close.id])
            t.reveals.append(ev)
            t.todo = [
                (r.id, rv) for r in t.reveals for rv in t.reviewers if rv != self._author_index(r)
            ]
            return ev
        if t.todo:
            sid, rv = t.todo.pop(0)
            if sid in self.replica.state.account(self.keys[rv].public_key).reviewed:
                return self._advance(t)
            scores = [5 + self.rng.below(6), 4 + self.rng.below(7)]
            return self._emit(
                rv,
                "review",
                {
                    "bounty": t.bounty.id,
                    "submission": sid,
                    "scores": scores,
                    "comment": "clear and correct",
                },
                [sid],
            )
        if t.step == 0:
            t.step = 1
            winners: dict[bytes, int | None] = {
                r.id: None for r in t.reveals[: 1 + self.rng.below(len(t.reveals))]
            }
            award = award_body(self.replica.state, t.bounty.id, winners)
            refs = [
                award["bounty"],
                *(w["submission"] for w in award["winners"]),
                *(r["review"] for r in award["reviewers"]),
            ]
            return self._emit(t.mentor, "award", award, refs)
        return None

    def _author_index(self, ev: Event) -> int:
        for i, k in enumerate(self.keys):
            if k.public_key == ev.author:
                return i
        raise KeyError(ev.author)
