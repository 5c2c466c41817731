"""Disputes and juries (issue 12): the fold's rules (each void code once), the
happy paths (an upheld award dispute, a frivolous dispute rejected, a review
dispute, an appeal), supply through bonds and claims, the book's snapshot
round trip, the views (draw, panel check, status, outcomes) and, under
hypothesis, that the jury, the outcomes, balances and the digest are the same
in any arrival order and that a party never sits on its own jury."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from learnmesh.protocol import (
    APPEAL_JURY_SIZE,
    JURY_SIZE,
    Event,
    dispute_outcomes,
    dispute_status,
    draw_jury,
    panel_check,
)
from learnmesh.protocol._disputes import (
    POINTS_JUROR,
    POINTS_OVERTURNED,
    dispute_body,
    dispute_claim_body,
    jury_commit_body,
    jury_reveal_body,
)
from test_protocol_support import DAY, Net

MENTOR, WINNER, LOSER = 1, 2, 3  # LOSER's better work lost; LOSER disputes
REVIEWERS = (4, 5)
N = 14  # members 0..13; member 0 is the genesis's trusted account


@dataclass
class Story:
    """A network where members 6..13 earned trust in "python" from the trusted
    member 0 (so they are the jury pool), then MENTOR paid WINNER over LOSER."""

    net: Net
    bounty: Event
    win: Event  # WINNER's submission
    lose: Event  # LOSER's submission
    reviews: list[Event]  # REVIEWERS' reviews of `lose`, then of `win`
    award: Event
    salts: dict[bytes, bytes] = field(default_factory=dict)

    @property
    def state(self) -> Any:
        return self.net.state

    def pk(self, i: int) -> bytes:
        return self.net.pk(i)

    def who(self, acct: bytes) -> int:
        return [k.public_key for k in self.net.keys].index(acct)

    def dispute(
        self,
        by: int,
        target: Event | bytes,
        subject: Event | bytes,
        bond: int = 100,
        jurors: list[bytes] | None = None,
        appeal_of: bytes = b"",
        vote_in: int = DAY,
        reveal_in: int = 2 * DAY,
        claims: list[bytes] = (),  # type: ignore[assignment]
        ts: int | None = None,
    ) -> Event:
        tid = target if isinstance(target, bytes) else target.id
        sid = subject if isinstance(subject, bytes) else subject.id
        at = self.net.now + 1000 if ts is None else ts
        if jurors is None:
            like = {"target": tid, "subject": sid, "disputant": self.pk(by), "appeal_of": appeal_of}
            size = APPEAL_JURY_SIZE if appeal_of else JURY_SIZE
            jurors = draw_jury(self.state, like, None, size)
        body = dispute_body(
            tid,
            sid,
            "the better work lost",
            bond,
            jurors,
            at + vote_in,
            at + reveal_in,
            appeal_of=appeal_of,
        )
        refs = sorted({tid, sid} | ({appeal_of} if appeal_of else set()) | set(claims))
        return self.net.emit(by, "dispute", body, refs, ts=at)

    def vote(self, d: Event, juror: bytes, verdict: str, ts: int | None = None) -> Event:
        salt = juror[:16]
        return self.net.emit(
            self.who(juror), "jury_commit", jury_commit_body(d.id, juror, verdict, salt), ts=ts
        )

    def reveal(self, d: Event, commit: Event, verdict: str, ts: int | None = None) -> Event:
        salt = commit.author[:16]
        body = jury_reveal_body(d.id, commit.id, verdict, salt, "read both")
        return self.net.emit(self.who(commit.author), "jury_reveal", body, ts=ts)

    def decide(self, d: Event, verdicts: list[str]) -> list[Event]:
        """Each juror of `d` commits its verdict, then reveals it."""
        jurors = d.body["jurors"]
        commits = [self.vote(d, j, v) for j, v in zip(jurors, verdicts, strict=False)]
        return [self.reveal(d, c, v) for c, v in zip(commits, verdicts, strict=False)]

    def claim(self, d: Event, by: int) -> Event:
        return self.net.emit(by, "dispute_claim", dispute_claim_body(self.state, d.id, self.pk(by)))


def story(n: int = N) -> Story:
    net = Net(n=n, trusted=1)
    # Warm-up: member 0 (trusted) pays members 6.. for work and reviews in python.
    pool = list(range(6, n))
    half = len(pool) // 2
    for learners, reviewers in ((pool[:half], pool[half:]), (pool[half:], pool[:half])):
        b = net.bounty(0)
        commits = [net.commit(w, b) for w in learners]
        close = net.close(0, b, commits)
        reveals = [net.reveal(w, b, c, close) for w, c in zip(learners, commits, strict=True)]
        reviews = [net.review(r, b, s) for s in reveals for r in reviewers]
        each = 8000 // len(reveals)
        net.award(0, b, [(s, each) for s in reveals], [(r, 1000 // len(reviews)) for r in reviews])
    # The disputed bounty.
    b = net.bounty(MENTOR)
    cw = net.commit(WINNER, b, text="a thin answer")
    cl = net.commit(LOSER, b, text="a thorough answer")
    close = net.close(MENTOR, b, [cw, cl])
    win = net.reveal(WINNER, b, cw, close, text="a thin answer")
    lose = net.reveal(LOSER, b, cl, close, text="a thorough answer")
    reviews = [net.review(r, b, lose, [9, 9]) for r in REVIEWERS]
    reviews += [net.review(r, b, win, [3, 3]) for r in REVIEWERS]
    award = net.award(MENTOR, b, [(win, 9000)])
    assert net.state.void == {}
    return Story(net, b, win, lose, reviews, award)


@pytest.fixture
def s() -> Story:
    return story()


def test_an_upheld_award_dispute_returns_the_bond_and_overturns_the_award(s: Story) -> None:
    supply = s.state.total_supply()
    before = s.state.balance(s.pk(LOSER))
    d = s.dispute(LOSER, s.award, s.lose, bond=300)
    assert s.net.void(d) is None
    assert s.state.balance(s.pk(LOSER)) == before - 300
    assert s.state.disputes.disputes[d.id].escrow == 300
    assert s.state.total_supply() == supply
    jurors = d.body["jurors"]
    assert len(jurors) == JURY_SIZE
    assert not set(jurors) & {s.pk(i) for i in (MENTOR, WINNER, LOSER)}
    assert panel_check(s.state, d.id)
    st0 = dispute_status(s.state, d.id, d.timestamp + 1)
    assert st0.phase == "voting" and st0.waiting == sorted((j, "commit") for j in jurors)
    reveals = s.decide(d, ["uphold", "uphold", "reject"])
    assert all(s.net.void(e) is None for e in reveals)
    st1 = dispute_status(s.state, d.id, d.body["reveal_by"] + 1)
    assert st1.phase == "upheld" and st1.votes == {"uphold": 2, "reject": 1}
    assert st1.waiting == [(s.pk(LOSER), "claim")]
    assert st1.final == "upheld"
    c = s.claim(d, LOSER)
    assert s.net.void(c) is None
    assert s.state.credits[c.id] == {s.pk(LOSER): 300}
    assert s.state.balance(s.pk(LOSER)) == before
    assert s.state.disputes.disputes[d.id].escrow == 0
    assert s.state.total_supply() == supply
    assert s.state.check_invariants() == []
    # the claim is a credit its owner spends later, like any payment
    t = s.net.transfer(LOSER, 0, before + 1, claims=[c.id])
    assert s.net.void(t) == "insufficient_funds"
    t = s.net.transfer(LOSER, 0, before, claims=[c.id])
    assert s.net.void(t) is None
    out = dispute_outcomes(s.state)
    assert out.final == {d.id: "upheld"}
    assert out.overturned_awards == {s.award.id}
    assert out.upheld_submissions == {s.lose.id}
    assert out.points[s.pk(MENTOR)] == -POINTS_OVERTURNED
    assert out.points[jurors[0]] == out.points[jurors[1]] == POINTS_JUROR
    assert out.points[jurors[2]] == -POINTS_JUROR
