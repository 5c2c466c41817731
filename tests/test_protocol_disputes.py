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
from hypothesis import given, settings
from hypothesis import strategies as st
from learnmesh.protocol import (
    APPEAL_JURY_SIZE,
    DISPUTE_WINDOW_MS,
    JURY_SIZE,
    MIN_BOND,
    DisputeBook,
    Event,
    LocalProtocolError,
    RemoteProtocolError,
    Replica,
    canonical_pack,
    dispute_outcomes,
    dispute_status,
    draw_jury,
    honest_reviews,
    panel_check,
    strict_unpack,
    trust_view,
    vote_commitment,
)
from learnmesh.protocol._disputes import (
    POINTS_JUROR,
    POINTS_OVERTURNED,
    dispute_body,
    dispute_claim_body,
    jury_commit_body,
    jury_reveal_body,
)
from learnmesh.protocol._kinds import KINDS, check_body
from learnmesh.protocol._reputation import reputation_points
from learnmesh.protocol._trust import jury_trust, review_judgements, trust_edges
from test_protocol_support import DAY, Net

MENTOR, WINNER, LOSER = 1, 2, 3  # LOSER's better work lost; LOSER disputes
REVIEWERS = (4, 5)
N = 14  # members 0..13; member 0 is the genesis's trusted account


@dataclass
class Story:
    """A network where members 6..13 (and MENTOR) earned trust in "python" from
    the trusted member 0 (so 6..13 are the jury pool), then MENTOR paid WINNER
    over LOSER."""

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
    # MENTOR learns too (so its award passes trust on).
    for learners, reviewers in (([*pool[:half], MENTOR], pool[half:]), (pool[half:], pool[:half])):
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


def _supply_ok(s: Story) -> None:
    assert s.state.total_supply() == s.net.genesis.total_supply
    assert s.state.check_invariants() == []


def _work_edges(s: Story) -> list[bytes]:
    return [e.dst for e in trust_edges(s.state) if e.bounty == s.bounty.id and e.kind == "work"]


# -- happy paths ---------------------------------------------------------------------------


def test_an_upheld_award_dispute_returns_the_bond_and_overturns_the_award(s: Story) -> None:
    before = s.state.balance(s.pk(LOSER))
    assert _work_edges(s) == [s.pk(WINNER)]
    mentor_points = reputation_points(s.state).get(s.pk(MENTOR), 0)
    winner_trust = trust_view(s.state).score(s.pk(WINNER), "python")
    assert winner_trust > 0
    d = s.dispute(LOSER, s.award, s.lose, bond=300)
    assert s.net.void(d) is None
    assert s.state.balance(s.pk(LOSER)) == before - 300
    assert s.state.disputes.disputes[d.id].escrow == 300
    _supply_ok(s)
    jurors = d.body["jurors"]
    assert len(jurors) == JURY_SIZE
    assert not set(jurors) & {s.pk(i) for i in (MENTOR, WINNER, LOSER)}
    assert panel_check(s.state, d.id)
    st0 = dispute_status(s.state, d.id, d.timestamp + 1)
    assert st0.phase == "voting" and st0.waiting == sorted((j, "commit") for j in jurors)
    assert st0.final is None and st0.panel_fair
    reveals = s.decide(d, ["uphold", "uphold", "reject"])
    assert all(s.net.void(e) is None for e in reveals)
    st1 = dispute_status(s.state, d.id, d.body["reveal_by"] + 1)
    assert st1.phase == "upheld" and st1.votes == {"uphold": 2, "reject": 1}
    assert st1.waiting == [(s.pk(LOSER), "claim")]
    assert st1.final == "upheld"
    with pytest.raises(LocalProtocolError):  # a juror has nothing to claim on an upheld dispute
        dispute_claim_body(s.state, d.id, jurors[0])
    c = s.claim(d, LOSER)
    assert s.net.void(c) is None
    assert s.state.credits[c.id] == {s.pk(LOSER): 300}
    assert s.state.balance(s.pk(LOSER)) == before
    assert s.state.disputes.disputes[d.id].escrow == 0
    _supply_ok(s)
    assert dispute_status(s.state, d.id, d.body["reveal_by"] + 1).paid == [(s.pk(LOSER), 300, c.id)]
    # the claim is a credit its owner spends later, like any payment
    t = s.net.transfer(LOSER, 0, before + 1, claims=[c.id])
    assert s.net.void(t) == "insufficient_funds"
    t = s.net.transfer(LOSER, 0, before, claims=[c.id])
    assert s.net.void(t) is None
    out = dispute_outcomes(s.state)
    assert out.final == {d.id: "upheld"} and out.verdicts == {d.id: "uphold"}
    assert out.overturned_awards == {s.award.id}
    assert out.upheld_submissions == {s.lose.id}
    assert out.points[s.pk(MENTOR)] == -POINTS_OVERTURNED
    assert out.points[jurors[0]] == out.points[jurors[1]] == POINTS_JUROR
    assert out.points[jurors[2]] == -POINTS_JUROR
    # in the reputation points (so the digest), and in trust: the award's work edge is gone
    assert reputation_points(s.state)[s.pk(MENTOR)] == mentor_points - POINTS_OVERTURNED
    assert _work_edges(s) == []
    assert trust_view(s.state).score(s.pk(WINNER), "python") < winner_trust
    assert jury_trust(s.state).score(s.pk(WINNER), "python") == winner_trust
    # tokens already paid stay paid
    assert s.state.balance(s.pk(WINNER)) >= 9000


def test_a_frivolous_dispute_is_rejected_and_its_jurors_share_the_bond(s: Story) -> None:
    d = s.dispute(LOSER, s.award, s.lose, bond=301)
    jurors = d.body["jurors"]
    before = {j: s.state.balance(j) for j in jurors}
    s.decide(d, ["reject", "reject", "uphold"])
    st = dispute_status(s.state, d.id, d.body["reveal_by"] + 1)
    assert st.phase == "rejected" and st.final == "rejected"
    assert st.waiting == sorted([(jurors[0], "claim"), (jurors[1], "claim")])
    # the disputant cannot take the bond back, the juror who lost cannot share it
    with pytest.raises(LocalProtocolError):
        dispute_claim_body(s.state, d.id, s.pk(LOSER))
    votes = dispute_claim_body(s.state, d.id, jurors[0])["votes"]
    bad = s.net.emit(LOSER, "dispute_claim", {"dispute": d.id, "votes": votes})
    assert s.net.void(bad) == "not_juror"
    bad = s.net.emit(s.who(jurors[2]), "dispute_claim", {"dispute": d.id, "votes": votes})
    assert s.net.void(bad) == "not_juror"
    for j in jurors[:2]:
        c = s.claim(d, s.who(j))
        assert s.net.void(c) is None
        assert s.state.balance(j) == before[j] + 301 // 3
        _supply_ok(s)
    # what no one can claim (the third share and the rounding) stays locked, in the supply
    assert s.state.disputes.disputes[d.id].escrow == 301 - 2 * (301 // 3)
    out = dispute_outcomes(s.state)
    assert out.final == {d.id: "rejected"}
    assert not out.overturned_awards and not out.upheld_submissions
    assert s.pk(MENTOR) not in out.points
    assert out.points[jurors[2]] == -POINTS_JUROR
    assert _work_edges(s) == [s.pk(WINNER)]


def test_a_careless_review_disputed_by_a_co_reviewer_is_overturned(s: Story) -> None:
    b = s.bounty
    careless = [s.net.review(i, b, s.lose, [0, 0]) for i in (12, 13)]
    # 900, 900, 0, 0: the median is 450 and no review of the work is honest
    assert not {r.id for r in s.reviews[:2]} & honest_reviews(s.state)
    reviewer_points = reputation_points(s.state).get(s.pk(13), 0)
    d = s.dispute(REVIEWERS[0], careless[1], s.reviews[0], bond=MIN_BOND)
    assert s.net.void(d) is None
    rec = s.state.disputes.disputes[d.id]
    assert rec.kind == "review" and rec.respondent == s.pk(13)
    assert set(rec.parties) == {s.pk(i) for i in (REVIEWERS[0], 13, MENTOR, LOSER)}
    s.decide(d, ["uphold", "uphold", "uphold"])
    out = dispute_outcomes(s.state)
    assert out.overturned_reviews == {careless[1].id}
    assert all(out.points[j] == POINTS_JUROR for j in d.body["jurors"])
    # without it: 900, 900, 0, median 900, the two careful reviews are honest again
    assert {r.id for r in s.reviews[:2]} <= honest_reviews(s.state)
    assert careless[1].id not in honest_reviews(s.state)
    pts = reputation_points(s.state)
    assert pts[s.pk(13)] == reviewer_points - POINTS_OVERTURNED
    judged = review_judgements(s.state, trust_view(s.state), b.id)[s.lose.id][1]
    gone = [j for j in judged if j.review == careless[1].id]
    assert gone and not gone[0].counts and not gone[0].near
    # the learner of the reviewed work disputes a review with its submission as subject
    d2 = s.dispute(LOSER, careless[0], s.lose, bond=MIN_BOND)
    assert s.net.void(d2) is None
    assert s.state.disputes.disputes[d2.id].respondent == s.pk(12)
    _supply_ok(s)


def test_an_appeal_has_five_other_jurors_a_double_bond_and_the_last_word(s: Story) -> None:
    d = s.dispute(LOSER, s.award, s.lose, bond=300)
    s.decide(d, ["reject", "reject", "reject"])
    assert dispute_outcomes(s.state).final == {d.id: "rejected"}
    first = set(d.body["jurors"])
    like = {"target": s.award.id, "subject": s.lose.id, "disputant": s.pk(LOSER), "appeal_of": d.id}
    drawn = draw_jury(s.state, like, None, APPEAL_JURY_SIZE)
    assert len(drawn) == APPEAL_JURY_SIZE and not first & set(drawn)
    low = s.dispute(LOSER, s.award, s.lose, bond=599, appeal_of=d.id, jurors=drawn)
    assert s.net.void(low) == "appeal_bond"
    a = s.dispute(LOSER, s.award, s.lose, bond=600, appeal_of=d.id)
    assert s.net.void(a) is None
    assert panel_check(s.state, a.id)
    s.decide(a, ["uphold", "uphold", "uphold", "reject"])
    st = dispute_status(s.state, d.id, a.body["reveal_by"] + 1)
    assert st.phase == "rejected" and st.appeals == [a.id] and st.final == "upheld"
    out = dispute_outcomes(s.state)
    assert out.verdicts == {d.id: "reject", a.id: "uphold"}
    assert out.final == {d.id: "upheld"}
    assert out.overturned_awards == {s.award.id}
    # every juror is judged against its own panel: the first jury voted with its majority
    assert all(out.points[j] == POINTS_JUROR for j in first)
    aj = a.body["jurors"]
    assert [out.points[j] for j in aj] == [1, 1, 1, -1, -1]
    # both bonds move: the first to its jurors, the appeal's back to the appellant
    for j in d.body["jurors"]:
        assert s.net.void(s.claim(d, s.who(j))) is None
    assert s.net.void(s.claim(a, LOSER)) is None
    assert s.state.disputes.disputes[d.id].escrow == 0
    assert s.state.disputes.disputes[a.id].escrow == 0
    _supply_ok(s)
    # an appeal is not appealed, and one appellant appeals once
    again = s.dispute(LOSER, s.award, s.lose, bond=1200, appeal_of=a.id, jurors=drawn)
    assert s.net.void(again) == "bad_appeal"
    twice = s.dispute(LOSER, s.award, s.lose, bond=600, appeal_of=d.id, jurors=drawn)
    assert s.net.void(twice) == "duplicate_dispute"


def test_an_appeal_by_the_respondent_that_is_upheld_restores_the_award(s: Story) -> None:
    d = s.dispute(LOSER, s.award, s.lose, bond=100)
    s.decide(d, ["uphold", "uphold", "reject"])
    assert dispute_outcomes(s.state).final == {d.id: "upheld"}
    a = s.dispute(MENTOR, s.award, s.lose, bond=200, appeal_of=d.id)
    assert s.net.void(a) is None
    rec = s.state.disputes.disputes[a.id]
    assert rec.disputant == s.pk(MENTOR) and rec.respondent == s.pk(LOSER)
    s.decide(a, ["uphold", "uphold", "uphold"])
    out = dispute_outcomes(s.state)
    assert out.final == {d.id: "rejected"} and not out.overturned_awards
    assert s.pk(MENTOR) not in out.points
    assert _work_edges(s) == [s.pk(WINNER)]
    assert s.net.void(s.claim(a, MENTOR)) is None
    _supply_ok(s)


def test_a_refund_after_delivery_can_be_disputed() -> None:
    net = story().net
    s = Story(net, *([None] * 5))  # type: ignore[arg-type]
    b = net.bounty(MENTOR)
    c = net.commit(LOSER, b)
    net.close(MENTOR, b, [c])
    r = net.emit(MENTOR, "refund", {"bounty": b.id})
    wrong = s.dispute(WINNER, r, c, jurors=[net.pk(i) for i in (6, 7, 8)])
    assert net.void(wrong) == "bad_subject"
    d = s.dispute(LOSER, r, c)
    assert net.void(d) is None
    s.decide(d, ["uphold", "uphold"])
    out = dispute_outcomes(net.state)
    assert out.overturned_refunds == {r.id}
    assert out.points[net.pk(MENTOR)] == -POINTS_OVERTURNED
    assert dispute_status(net.state, d.id, d.body["vote_by"]).waiting[-1] == (
        net.pk(LOSER),
        "claim",
    )


# -- every rule voids with its code -----------------------------------------------------------


def test_dispute_rules(s: Story) -> None:
    net = s.net
    jurors = draw_jury(
        s.state,
        {"target": s.award.id, "subject": s.lose.id, "disputant": s.pk(LOSER), "appeal_of": b""},
    )

    def check(code: str, **kw: Any) -> None:
        kw.setdefault("jurors", jurors)
        ev = s.dispute(
            kw.pop("by", LOSER), kw.pop("target", s.award), kw.pop("subject", s.lose), **kw
        )
        assert net.void(ev) == code, (code, net.state.void.get(ev.id))

    check("bad_target", target=s.bounty)
    check("bad_subject", subject=s.win)
    check("bad_subject", target=s.reviews[0], subject=s.reviews[2])  # reviewer 4's, other work
    check("window", ts=s.award.timestamp + DISPUTE_WINDOW_MS + 1)
    check("deadline", vote_in=0)
    check("deadline", reveal_in=31 * DAY)
    check("party_juror", jurors=[*jurors[:2], s.pk(WINNER)])  # the paid learner is a party
    check("party_juror", jurors=[*jurors[:2], s.pk(MENTOR)])
    check("insufficient_funds", bond=net.state.balance(s.pk(LOSER)) + 1)
    check("bad_claim", claims=[s.reviews[0].id])
    gift = net.transfer(0, LOSER, 50)
    net.transfer(LOSER, 0, 1, claims=[gift.id])  # claims the gift
    check("double_claim", claims=[gift.id])
    ok = s.dispute(LOSER, s.award, s.lose)
    assert net.void(ok) is None
    check("duplicate_dispute")
    five = [net.pk(i) for i in range(6, 11)]
    check("bad_appeal", appeal_of=s.bounty.id, bond=200, jurors=five)
    others = [j for j in draw_jury(s.state, {**_like(s, LOSER), "appeal_of": ok.id}, None, 5)]
    check(
        "bad_appeal",
        appeal_of=ok.id,
        bond=200,
        jurors=others,
        subject=s.reviews[0],
        target=s.reviews[2],
    )
    check("not_party", by=WINNER, appeal_of=ok.id, bond=200, jurors=others, subject=s.lose)
    check("appeal_bond", appeal_of=ok.id, bond=199, jurors=others)
    check("appeal_jurors", appeal_of=ok.id, bond=200, jurors=[*others[:4], jurors[0]])
    late = ok.body["reveal_by"] + DISPUTE_WINDOW_MS + 1
    check("window", appeal_of=ok.id, bond=200, jurors=others, ts=late)
    # a void target voids the dispute
    void_award = net.award(WINNER, s.bounty, [(s.win, 1)])
    assert net.void(void_award) == "not_mentor"
    check("void_dependency", target=void_award, by=WINNER, subject=s.win)
    _supply_ok(s)


def _like(s: Story, by: int) -> dict[str, Any]:
    return {"target": s.award.id, "subject": s.lose.id, "disputant": s.pk(by), "appeal_of": b""}


def test_jury_commit_and_reveal_rules(s: Story) -> None:
    net = s.net
    d = s.dispute(LOSER, s.award, s.lose)
    j0, j1, j2 = d.body["jurors"]
    body = jury_commit_body(d.id, j0, "uphold", j0[:16])
    e = net.emit(s.who(j0), "jury_commit", {**body, "dispute": s.award.id}, [s.award.id])
    assert net.void(e) == "unknown_dispute"
    e = net.emit(6 if net.pk(6) not in (j0, j1, j2) else 7, "jury_commit", body)
    e2 = net.emit(8 if net.pk(8) not in (j0, j1, j2) else 9, "jury_commit", body)
    assert {net.void(e), net.void(e2)} == {"not_juror"}
    late = net.emit(s.who(j2), "jury_commit", body, ts=d.body["vote_by"] + 1)
    assert net.void(late) == "late"
    c0 = s.vote(d, j0, "uphold")
    assert net.void(c0) is None
    assert net.void(s.vote(d, j0, "reject")) == "duplicate_vote"
    c1 = s.vote(d, j1, "reject")
    # reveals
    rb = jury_reveal_body(d.id, c0.id, "uphold", j0[:16])
    e = net.emit(s.who(j0), "jury_reveal", {**rb, "commit": d.id}, [d.id])
    assert net.void(e) == "bad_commit"
    e = net.emit(s.who(j1), "jury_reveal", rb)
    assert net.void(e) == "not_juror"
    e = net.emit(s.who(j0), "jury_reveal", {**rb, "verdict": "reject"})
    assert net.void(e) == "commitment_mismatch"
    e = net.emit(
        s.who(j1),
        "jury_reveal",
        jury_reveal_body(d.id, c1.id, "reject", j1[:16]),
        ts=d.body["reveal_by"] + 1,
    )
    assert net.void(e) == "late"
    assert net.void(s.reveal(d, c0, "uphold")) is None
    assert net.void(s.reveal(d, c0, "uphold")) == "duplicate_reveal"


def test_dispute_claim_rules(s: Story) -> None:
    net = s.net
    d = s.dispute(LOSER, s.award, s.lose)
    r = s.decide(d, ["uphold", "reject", "uphold"])
    e = net.emit(LOSER, "dispute_claim", {"dispute": s.award.id, "votes": [r[0].id]})
    assert net.void(e) == "unknown_dispute"
    e = net.emit(LOSER, "dispute_claim", {"dispute": d.id, "votes": [r[0].id, s.reviews[0].id]})
    assert net.void(e) == "bad_vote"
    e = net.emit(LOSER, "dispute_claim", {"dispute": d.id, "votes": [r[0].id, r[1].id]})
    assert net.void(e) == "split_vote"
    e = net.emit(LOSER, "dispute_claim", {"dispute": d.id, "votes": [r[0].id]})
    assert net.void(e) == "no_majority"
    e = net.emit(MENTOR, "dispute_claim", {"dispute": d.id, "votes": [r[0].id, r[2].id]})
    assert net.void(e) == "not_disputant"
    assert net.void(s.claim(d, LOSER)) is None
    e = net.emit(LOSER, "dispute_claim", {"dispute": d.id, "votes": [r[0].id, r[2].id]})
    assert net.void(e) == "duplicate_claim"
    _supply_ok(s)


def test_schemas_refuse_malformed_bodies(s: Story) -> None:
    jurors = [bytes([i]) * 32 for i in range(3)]
    good = dispute_body(s.award.id, s.lose.id, "x", MIN_BOND, jurors, 2, 3)
    kind = KINDS["dispute"]
    refs = (s.award.id, s.lose.id)
    check_body(kind, good, refs, s.pk(LOSER))
    bad = [
        {**good, "bond": MIN_BOND - 1},
        {**good, "jurors": jurors[:2]},
        {**good, "jurors": [*jurors[:2], jurors[0]]},
        {**good, "jurors": [*jurors, bytes(32), bytes([9]) * 32], "appeal_of": b""},
        {**good, "reveal_by": 2},
        {**good, "claim": ""},
        {**good, "subject": s.award.id},
        {**good, "evidence": [{"hash": bytes(32), "name": "a", "size": 1}] * 9},
    ]
    for b in bad:
        with pytest.raises(RemoteProtocolError):
            check_body(kind, b, refs, s.pk(LOSER))
    with pytest.raises(RemoteProtocolError):  # an appeal needs the appealed dispute in refs
        check_body(kind, {**good, "appeal_of": bytes([7]) * 32}, refs, s.pk(LOSER))
    rk = KINDS["jury_reveal"]
    rb = jury_reveal_body(bytes(32), bytes([1]) * 32, "maybe", bytes(16))
    with pytest.raises(RemoteProtocolError):
        check_body(rk, rb, (bytes([1]) * 32,), s.pk(6))
    with pytest.raises(RemoteProtocolError):
        check_body(rk, {**rb, "verdict": "uphold", "salt": bytes(8)}, (bytes([1]) * 32,), s.pk(6))
    ck = KINDS["dispute_claim"]
    for votes in ([], [bytes(32)] * 2, [bytes([i]) * 32 for i in range(6)]):
        with pytest.raises(RemoteProtocolError):
            check_body(ck, {"dispute": bytes([9]) * 32, "votes": votes}, (), s.pk(6))


# -- views --------------------------------------------------------------------------------------


def test_the_draw_leaves_out_vouch_relations_and_forked_accounts(s: Story) -> None:
    like = _like(s, LOSER)
    first = draw_jury(s.state, like)
    assert len(first) == JURY_SIZE and draw_jury(s.state, like) == first
    # the seed is not the dispute id: rewording the claim cannot change the jury
    d1 = s.dispute(LOSER, s.award, s.lose)
    assert d1.body["jurors"] == first
    # a juror that vouches for a party, or that a party vouches for, is out
    s.net.emit(s.who(first[0]), "vouch", {"account": s.pk(MENTOR)})
    s.net.emit(WINNER, "vouch", {"account": first[1]})
    second = draw_jury(s.state, like)
    assert first[0] not in second and first[1] not in second
    # the dispute filed before now fails the panel check only if its jurors fell far
    assert panel_check(s.state, d1.id) == (set(first) <= set(draw_jury(s.state, like, None, 6)))
    # too few eligible: the genesis's trusted accounts fill, then the draw comes up short
    big = draw_jury(s.state, like, None, 50)
    assert s.pk(0) in big and len(big) < 50
    with pytest.raises(LocalProtocolError):
        draw_jury(s.state, {**like, "subject": s.win.id})  # no standing: not LOSER's work


def test_dispute_book_round_trips_through_plain_data(s: Story) -> None:
    assert DisputeBook.from_plain(DisputeBook().to_plain()).to_plain() == [[], [], []]
    d = s.dispute(LOSER, s.award, s.lose)
    s.decide(d, ["uphold", "uphold", "reject"])
    s.claim(d, LOSER)
    a = s.dispute(MENTOR, s.award, s.lose, bond=200, appeal_of=d.id)
    s.decide(a, ["reject"])
    plain = s.state.disputes.to_plain()
    wire = strict_unpack(canonical_pack(plain), 1 << 20)
    book = DisputeBook.from_plain(wire)
    assert book.to_plain() == plain
    assert book.filed == s.state.disputes.filed
    assert book.escrow() == s.state.disputes.escrow()
    for broken in (
        [],
        [plain[0], plain[1]],
        [plain[0][:1], plain[1], plain[2]],  # commits of a missing dispute
        [plain[0], plain[1][::-1], plain[2]],  # not canonical
        [[[*plain[0][0][:10], -1, *plain[0][0][11:]]], plain[1], plain[2]],
    ):
        with pytest.raises(ValueError):
            DisputeBook.from_plain(broken)


def test_the_vote_commitment_is_bound_to_the_juror() -> None:
    d, j, salt = bytes([1]) * 32, bytes([2]) * 32, bytes(16)
    c = vote_commitment(d, j, "uphold", salt)
    assert c != vote_commitment(d, bytes([3]) * 32, "uphold", salt)
    assert c != vote_commitment(d, j, "reject", salt)
    import hashlib

    assert c == hashlib.sha256(b"learnmesh/vote\x00" + d + j + b"uphold" + salt).digest()


# -- properties ------------------------------------------------------------------------------


def _full_story() -> tuple[Story, list[Event]]:
    """Every path at once: an upheld award dispute appealed by the mentor and
    rejected, both bonds claimed and spent on; a review dispute decided while
    one of its jurors forks its chain at its reveal; a refund dispute."""
    s = story()
    net = s.net
    d = s.dispute(LOSER, s.award, s.lose, bond=300)
    s.decide(d, ["uphold", "uphold", "reject"])
    c = s.claim(d, LOSER)
    a = s.dispute(MENTOR, s.award, s.lose, bond=600, appeal_of=d.id)
    verdicts = ["reject", "reject", "uphold", "reject", "uphold"]
    s.decide(a, verdicts)
    aj = a.body["jurors"]
    paid = [s.claim(a, s.who(j)) for j, v in zip(aj, verdicts, strict=True) if v == "reject"]
    net.transfer(LOSER, 0, 250, claims=[c.id])
    net.transfer(s.who(a.body["jurors"][0]), LOSER, 100, claims=[paid[0].id])
    careless = net.review(13, s.bounty, s.lose, [0, 0])
    rd = s.dispute(REVIEWERS[0], careless, s.reviews[0], bond=MIN_BOND)
    j0, j1, j2 = rd.body["jurors"]
    c0, c1, c2 = (s.vote(rd, j, "uphold") for j in (j0, j1, j2))
    s.reveal(rd, c0, "uphold")
    w = net.writers[s.who(j1)]
    head = (w.seq, w.head)
    s.reveal(rd, c1, "uphold")
    w.resume(*head)  # j1 forks: a second event at the seq of its reveal
    net.emit(s.who(j1), "vouch", {"account": net.pk(0)})
    s.reveal(rd, c2, "uphold")
    b = net.bounty(MENTOR)
    cm = net.commit(LOSER, b)
    net.close(MENTOR, b, [cm])
    r = net.emit(MENTOR, "refund", {"bounty": b.id})
    rf = s.dispute(LOSER, r, cm)
    s.decide(rf, ["reject", "reject"])
    return s, list(net.events)


FULL, FULL_EVENTS = _full_story()


def test_the_full_story_is_what_it_says() -> None:
    st_ = FULL.state
    assert st_.forks  # the review juror's fork was seen
    out = dispute_outcomes(st_)
    d, _, rd, rf = sorted(st_.disputes.disputes.values(), key=lambda x: x.filed_at)
    assert out.final[d.id] == "upheld"  # the mentor's appeal was rejected
    assert out.overturned_awards == {FULL.award.id}
    assert out.final[rd.id] == "upheld"  # two honest reveals of three: still a majority
    assert len(rd.reveals) == 2
    assert out.final[rf.id] == "rejected"
    assert st_.check_invariants() == []
    assert not [v for v in st_.void.values() if v[0] not in ("equivocation",)]


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_jury_outcomes_balances_and_digest_are_the_same_in_any_order(data: st.DataObject) -> None:
    order = data.draw(st.permutations(range(len(FULL_EVENTS))), label="order")
    every = data.draw(st.integers(1, 15), label="look every")
    r = Replica(FULL.net.genesis)
    for n, i in enumerate(order):
        r.add(FULL_EVENTS[i])
        assert r.state.total_supply() == FULL.net.genesis.total_supply
        if n % every == 0:  # the views' caches follow the state as it grows
            r.digest()
            trust_view(r.state)
    ref = FULL.state
    fresh = Replica(FULL.net.genesis)
    for ev in FULL_EVENTS:
        fresh.add(ev)
    assert jury_trust(r.state).digest == jury_trust(fresh.state).digest
    assert trust_view(r.state).digest == trust_view(fresh.state).digest
    assert r.pending == {}
    assert r.digest() == FULL.net.replica.digest()
    assert r.state.void == ref.void
    assert dispute_outcomes(r.state) == dispute_outcomes(ref)
    assert r.state.disputes.to_plain() == ref.disputes.to_plain()
    assert trust_view(r.state).digest == trust_view(ref).digest
    assert {k: a.balance for k, a in r.state.accounts.items()} == {
        k: a.balance for k, a in ref.accounts.items()
    }
    for d in ref.disputes.disputes.values():
        assert draw_jury(r.state, d, None, d.panel) == draw_jury(ref, d, None, d.panel)
        assert panel_check(r.state, d) == panel_check(ref, d)
    assert r.state.check_invariants() == []


STANDINGS = ["award-loser", "award-winner", "review-learner", "review-coreviewer"]


@settings(max_examples=50, deadline=None)
@given(
    vouches=st.lists(st.tuples(st.integers(0, N - 1), st.integers(0, N - 1)), max_size=12),
    which=st.sampled_from(STANDINGS),
    swap=st.integers(0, JURY_SIZE - 1),
)
def test_a_party_never_sits_on_its_own_jury(
    vouches: list[tuple[int, int]], which: str, swap: int
) -> None:
    s = story()
    for i, j in vouches:
        if i != j:
            s.net.emit(i, "vouch", {"account": s.pk(j)})
    by, target, subject = {
        "award-loser": (LOSER, s.award, s.lose),
        "award-winner": (WINNER, s.award, s.win),
        "review-learner": (LOSER, s.reviews[0], s.lose),
        "review-coreviewer": (REVIEWERS[1], s.reviews[0], s.reviews[1]),
    }[which]
    like = {"target": target.id, "subject": subject.id, "disputant": s.pk(by), "appeal_of": b""}
    drawn = draw_jury(s.state, like, None, 2 * JURY_SIZE)
    parties = {s.pk(by), s.pk(MENTOR), target.author, subject.author}
    if which.startswith("award"):
        parties.add(s.pk(WINNER))  # the learner the award paid
    else:
        parties.add(s.pk(LOSER))  # the learner of the reviewed work
    related = {k for k, a in s.state.accounts.items() if a.vouches & parties}
    for p in parties:
        related |= s.state.accounts[p].vouches
    assert not set(drawn) & (parties | related)
    if len(drawn) < JURY_SIZE:
        return  # the vouches left too few: the node refuses to file
    jury = drawn[:JURY_SIZE]
    d = s.dispute(by, target, subject, jurors=jury)
    assert s.net.void(d) is None
    assert s.state.disputes.disputes[d.id].parties == tuple(sorted(parties))
    bad = list(jury)
    bad[swap] = sorted(parties)[swap % len(parties)]
    d2 = s.dispute(by, target, subject, jurors=bad)
    assert s.net.void(d2) in ("party_juror", "duplicate_dispute")
    assert s.net.void(d2) == "duplicate_dispute" or set(bad) & parties


def _dry_runs_agree(events: list[Event], genesis: Any) -> int:
    """Replay `events`, asking `would_void` before each is applied: the dry run
    (what a node asks before it signs) must give the fold's answer."""
    r = Replica(genesis)
    checked = 0
    for ev in events:
        ready = all(x in r.raw for x in ev.refs) and (ev.prev is None or ev.prev in r.raw)
        fork = r._by_slot.get((ev.author, ev.seq)) not in (None, ev.id)
        guess = r.state.would_void(ev) if ready and not fork else None
        out = r.add(ev)
        if ready and not fork and not out.rebuilt:
            assert guess == out.void.get(ev.id), (ev.kind.name, guess, out.void.get(ev.id))
            checked += 1
    return checked


def test_dry_runs_give_the_folds_answer() -> None:
    for rules in (test_dispute_rules, test_jury_commit_and_reveal_rules, test_dispute_claim_rules):
        s = story()
        rules(s)
        assert _dry_runs_agree(s.net.events, s.net.genesis) > 60
    assert _dry_runs_agree(FULL_EVENTS, FULL.net.genesis) > 60


def test_two_appeals_that_disagree_leave_the_first_round_standing(s: Story) -> None:
    d = s.dispute(LOSER, s.award, s.lose, bond=100)
    s.decide(d, ["uphold", "uphold", "reject"])
    by_mentor = s.dispute(MENTOR, s.award, s.lose, bond=200, appeal_of=d.id)
    by_learner = s.dispute(LOSER, s.award, s.lose, bond=200, appeal_of=d.id)
    assert s.net.void(by_mentor) is None and s.net.void(by_learner) is None
    s.decide(by_mentor, ["uphold"] * 3)  # the mentor is right: the award stands
    assert dispute_outcomes(s.state).final == {d.id: "rejected"}
    s.decide(by_learner, ["uphold"] * 3)  # the learner is right: it is overturned
    out = dispute_outcomes(s.state)
    assert out.final == {d.id: "upheld"}  # they disagree: the first round stands
    assert out.verdicts == {d.id: "uphold", by_mentor.id: "uphold", by_learner.id: "uphold"}
    _supply_ok(s)


def test_a_snapshot_round_trip_keeps_the_disputes_and_their_behaviour() -> None:
    import dataclasses

    from learnmesh.ledger import _snapshot as snapmod

    rep = FULL.net.replica
    data = snapmod.encode_snapshot(rep, len(rep.raw), len(rep.rejected))
    snap = snapmod.decode_snapshot(data, rep.network)
    slots = [(eid, *rep._slot[eid]) for eid in rep.raw]
    known = dict(rep.raw)

    class Raw(dict[bytes, bytes]):
        def __setitem__(self, key: bytes, _value: bytes) -> None:
            super().__setitem__(key, known.get(key, _value))

    out = snapmod.from_plain(snap.body, rep.genesis, slots, rep.rejected.items(), Raw())
    assert out.digest() == rep.digest()
    assert out.state.disputes.to_plain() == rep.state.disputes.to_plain()
    assert dispute_outcomes(out.state) == dispute_outcomes(rep.state)
    # and it goes on the same way: a juror of the rejected refund dispute claims its share
    rf = max(rep.state.disputes.disputes.values(), key=lambda d: d.filed_at)
    juror = next(j for j in rf.reveals if j not in rf.claims)
    w = dataclasses.replace(FULL.net.writers[FULL.who(juror)])
    body = dispute_claim_body(rep.state, rf.id, juror)
    ev = w.sign("dispute_claim", body, FULL.net.now + 1000, sorted({rf.id, *body["votes"]}))
    fresh = Replica(FULL.net.genesis)
    for e in FULL_EVENTS:
        fresh.add(e)
    for r in (out, fresh):
        assert r.add(ev).void == {}
    assert out.digest() == fresh.digest()
    assert out.state.disputes.to_plain() == fresh.state.disputes.to_plain()
    assert out.state.check_invariants() == []


def test_a_bond_can_be_funded_by_credits_claimed_in_refs(s: Story) -> None:
    net = s.net
    me = net.state.accounts[s.pk(LOSER)]
    net.transfer(LOSER, 0, me.spendable - 20)  # 20 left on its chain
    gift = net.transfer(0, LOSER, 500)
    short = s.dispute(LOSER, s.award, s.lose, bond=400)
    assert net.void(short) == "insufficient_funds"
    d = s.dispute(LOSER, s.award, s.lose, bond=400, claims=[gift.id])
    assert net.void(d) is None
    assert me.spendable == 120 and gift.id in me.claimed
    _supply_ok(s)
