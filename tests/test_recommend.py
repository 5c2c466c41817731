"""Recommendations (node/_recommend.py) over a real protocol State: every
history below is made of signed events added to a Replica (tests/
test_protocol_support.py's Net), never of hand-built state objects.

Learners with different histories get different, sensible lists: work in
their skills first, prerequisites met before advanced work (an advanced bounty
whose prerequisite the learner has not done ranks below and names what is
missing; once the learner's work on the prerequisite is awarded it rises),
nothing the learner committed to or posted, nothing closed, refunded, awarded
or past its submission deadline; the same inputs give the same list."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from _nodes import cli
from learnmesh.node._recommend import Recommendation, learner_profile, rank, recommend
from learnmesh.protocol import KINDS, Event, Replica, commit_body, reveal_body
from learnmesh.protocol._trust import trust_view
from test_protocol_support import DAY, RUBRIC, Net

HOUR = 3_600_000


class World(Net):
    """Net with bounties that have titles and skills, and whole stories."""

    def post(
        self,
        mentor: int,
        title: str,
        skills: list[str],
        reward: int = 10_000,
        submit_in: int = 5 * DAY,
        prereq_bounties: list[Event] | None = None,
        prereq_skills: list[str] | None = None,
    ) -> Event:
        at = self.now + 1000
        body = {
            "title": title,
            "description": "With an example.",
            "rubric": RUBRIC,
            "skills": skills,
            "reward": reward,
            "reviewer_share_bp": 1000,
            "submit_by": at + submit_in,
            "review_by": at + submit_in + 2 * DAY,
            "quorum": 1,
        }
        b = self.emit(mentor, "bounty", body, [], ts=at)
        assert self.void(b) is None, self.state.void.get(b.id)
        if prereq_bounties is not None or prereq_skills is not None:
            self.terms(mentor, b, prereq_bounties or [], prereq_skills or [])
        return b

    def terms(
        self, mentor: int, b: Event, prereq_bounties: list[Event], prereq_skills: list[str]
    ) -> Event:
        """The mentor's bounty_terms, the next event on its chain after the bounty."""
        if KINDS.get("bounty_terms") is None:
            pytest.fail("the bounty_terms kind (protocol/_kinds_terms.py) is not there yet")
        body = {
            "bounty": b.id,
            "min_reviewer_trust_ppm": 0,
            "prereq_bounties": [p.id for p in prereq_bounties],
            "prereq_skills": prereq_skills,
            "resources": [
                {
                    "title": "A free course",
                    "url": "https://ocw.mit.edu/",
                    "kind": "course",
                    "licence": "CC-BY-NC-SA-4.0",
                }
            ],
        }
        ev = self.emit(mentor, "bounty_terms", body)
        assert self.last is not None and self.last.status == "applied", self.last
        assert self.void(ev) is None, self.state.void.get(ev.id)
        return ev

    def do(
        self,
        b: Event,
        mentor: int,
        learner: int,
        reviewers: tuple[int, ...] = (),
        scores: list[int] | None = None,
        award: bool = True,
    ) -> Event:
        """The learner's work on `b`: commit, close, reveal, reviews, award (if asked)."""
        text, salt = f"work of {learner}", bytes([learner + 7]) * 16
        c = self.emit(learner, "commit", commit_body(b.id, self.pk(learner), text, [], salt))
        close = self.emit(mentor, "close", {"bounty": b.id, "accepted": [c.id]})
        r = self.emit(learner, "reveal", reveal_body(b.id, c.id, close.id, text, [], salt))
        reviews = [self.review(rv, b, r, scores or [8, 8]) for rv in reviewers]
        if award:
            self.award(mentor, b, [(r, 5000)], [(reviews[0], 500)] if reviews else [])
        for ev in (c, close, r, *reviews):
            assert self.void(ev) is None, (ev.kind.name, self.state.void.get(ev.id))
        return r

    def recs(self, who: int, limit: int | None = None) -> list[Recommendation]:
        return recommend(
            self.state, trust_view(self.state, self.now), self.pk(who), self.now, limit
        )


def titles(recs: list[Recommendation]) -> list[str]:
    return [r.bounty.title for r in recs]


def rec_of(recs: list[Recommendation], title: str) -> Recommendation:
    for r in recs:
        if r.bounty.title == title:
            return r
    raise AssertionError(f"{title!r} is not recommended: {titles(recs)}")


def plain(recs: list[Recommendation]) -> list[Any]:
    return [
        (r.bounty.id, r.score, r.ready, r.parts, r.reasons, [m.to_json() for m in r.missing])
        for r in recs
    ]


# Members: 0 trusted mentor, 1 careless mentor, 2 Ada (python), 3 Ben (writing),
# 4 Cy (new, nothing done), 5 and 6 reviewers.
MENTOR, CARELESS, ADA, BEN, CY, R1, R2 = range(7)


def test_only_open_bounties_that_are_not_mine_nor_committed_nor_late() -> None:
    w = World(n=7)
    open_ = w.post(MENTOR, "Open python task", ["python"])
    w.post(CY, "Cy's own bounty", ["python"])
    committed = w.post(MENTOR, "Committed by Cy", ["python"])
    w.emit(CY, "commit", commit_body(committed.id, w.pk(CY), "x", [], bytes(16)))
    closed = w.post(MENTOR, "Closed one", ["python"])
    w.emit(MENTOR, "close", {"bounty": closed.id, "accepted": []})
    refunded = w.post(MENTOR, "Refunded one", ["python"])
    w.emit(MENTOR, "refund", {"bounty": refunded.id})
    awarded = w.post(MENTOR, "Awarded one", ["python"])
    w.do(awarded, MENTOR, ADA, (R1, R2))
    w.post(MENTOR, "Deadline soon past", ["python"], submit_in=HOUR)
    w.now += 2 * HOUR  # its submit_by is behind us now
    for ev in (open_, committed, closed, refunded, awarded):
        assert w.void(ev) is None

    assert titles(w.recs(CY)) == ["Open python task"]
    # Ada's awarded bounty is settled; Cy's own bounty is open to Ada.
    assert sorted(titles(w.recs(ADA))) == ["Committed by Cy", "Cy's own bounty", "Open python task"]
    # The mentor gets none of its own.
    assert "Open python task" not in titles(w.recs(MENTOR))
    assert titles(w.recs(ADA, limit=1)) == titles(w.recs(ADA))[:1]
    # What the node hides (its blocklist, community flags) is left out and counted.
    view = trust_view(w.state, w.now)
    ada = w.pk(ADA)
    r = rank(w.state, view, ada, w.now, None, hidden_bounties=frozenset([open_.id]))
    assert [x.bounty.title for x in r.items] == ["Committed by Cy", "Cy's own bounty"]
    assert r.count == 2 and r.skipped == 1
    r = rank(w.state, view, ada, w.now, None, hidden_authors=frozenset([w.pk(MENTOR)]))
    assert [x.bounty.title for x in r.items] == ["Cy's own bounty"] and r.skipped == 2


def test_different_histories_get_different_lists_with_reasons() -> None:
    w = World(n=7)
    w.emit(ADA, "profile", {"name": "Ada", "bio": "", "skills": ["python"]})
    w.emit(BEN, "profile", {"name": "Ben", "bio": "", "skills": ["writing"]})
    # Ada's python work and Ben's writing work were reviewed and awarded.
    for i in range(2):
        w.do(w.post(MENTOR, f"Past python {i}", ["python"]), MENTOR, ADA, (R1, R2), [9, 9])
        w.do(w.post(MENTOR, f"Past essay {i}", ["writing"]), MENTOR, BEN, (R1, R2), [7, 6])
    py = "Write a python parser"
    essay = "Write an essay on CRDTs"
    bio = "Label cell diagrams"
    w.post(MENTOR, py, ["python"])
    w.post(MENTOR, essay, ["writing"])
    w.post(MENTOR, bio, ["biology"])

    ada, ben, cy = w.recs(ADA), w.recs(BEN), w.recs(CY)
    assert titles(ada)[0] == py and titles(ben)[0] == essay
    assert titles(ada) != titles(ben)
    why = rec_of(ada, py).reasons
    assert any(r.startswith("matches your skill python (trust ") for r in why), why
    assert any("2 awarded works, reviewed 90 % on average" in r for r in why), why
    assert any("mentor settled 4 of 4 bounties" in r for r in why), why
    assert rec_of(ada, py).parts["skill"] > rec_of(ada, essay).parts["skill"] == 0
    assert any(r == "new skill for you: biology" for r in rec_of(ada, bio).reasons)
    # Ada, reviewed better, holds more in python than Ben does in writing.
    assert rec_of(ada, py).parts["skill"] > rec_of(ben, essay).parts["skill"] > 0
    # Cy has no history: equal skill parts, so the rest (reward, deadline, id) decides.
    assert {r.parts["skill"] for r in cy} == {0}
    learner = learner_profile(w.state, trust_view(w.state, w.now), w.pk(ADA))
    assert learner.history["python"].awarded == 2 and learner.profile_skills == {"python"}


def test_mentor_record_and_deadline_count() -> None:
    w = World(n=7)
    # The careless mentor refunds after Ben committed, and lets one lapse.
    bad = w.post(CARELESS, "Refunded after delivery", ["math"])
    w.emit(BEN, "commit", commit_body(bad.id, w.pk(BEN), "x", [], bytes(16)))
    w.emit(CARELESS, "refund", {"bounty": bad.id})
    w.post(CARELESS, "Left to lapse", ["math"], submit_in=HOUR)
    w.do(w.post(MENTOR, "Settled well", ["math"]), MENTOR, BEN, (R1, R2))
    w.now += 4 * DAY  # the lapsed one is past its review deadline
    w.post(CARELESS, "Careless math", ["math"])
    w.post(MENTOR, "Careful math", ["math"])
    w.post(MENTOR, "Math in a hurry", ["math"], submit_in=2 * HOUR)

    recs = w.recs(CY)
    # "Careful math" differs from each of the others in one thing only: the
    # mentor's record, or the time left.
    assert titles(recs)[0] == "Careful math" and len(recs) == 3
    careless = rec_of(recs, "Careless math")
    assert careless.parts["mentor_record"] == -400
    assert "mentor settled 0 of 2 bounties with an award" in careless.reasons
    assert "mentor refunded 1 after work was committed" in careless.reasons
    assert "mentor left 1 unsettled past the review deadline" in careless.reasons
    hurry = rec_of(recs, "Math in a hurry")
    assert hurry.parts["deadline"] < 0
    assert any("little time to do the work" in r for r in hurry.reasons), hurry.reasons


def test_prerequisites_met_before_advanced_work() -> None:
    w = World(n=7)
    intro = w.post(MENTOR, "Intro to SQL", ["sql"], reward=2_000)
    # The advanced bounty pays more, but needs the intro done first.
    adv = w.post(MENTOR, "Advanced SQL", ["sql"], reward=20_000, prereq_bounties=[intro])
    w.post(MENTOR, "Query planner", ["sql"], reward=20_000, prereq_skills=["sql"])
    w.post(MENTOR, "Label cell diagrams", ["biology"], reward=2_000)

    before = w.recs(ADA)
    # the intro first, though it pays a tenth; both advanced ones after it
    assert titles(before)[:2] == ["Intro to SQL", "Label cell diagrams"]
    assert sorted(titles(before)[2:]) == ["Advanced SQL", "Query planner"]
    a = rec_of(before, "Advanced SQL")
    assert not a.ready and [m.to_json() for m in a.missing] == [
        {
            "kind": "bounty",
            "bounty": intro.id.hex(),
            "title": "Intro to SQL",
            "skill": None,
            "open": True,
        }
    ]
    assert "first do: 'Intro to SQL' (open now)" in a.reasons
    q = rec_of(before, "Query planner")
    assert not q.ready and q.missing[0].skill == "sql"
    i = rec_of(before, "Intro to SQL")
    assert i.ready and i.parts["unlocks"] == 100
    assert "a prerequisite of 'Advanced SQL'" in i.reasons

    # Ada does the intro; once her work is awarded, the advanced work is ready and rises.
    sub = w.do(intro, MENTOR, ADA, (R1, R2), award=False)
    mid = w.recs(ADA)
    assert "Intro to SQL" not in titles(mid)  # committed to: gone
    assert not rec_of(mid, "Advanced SQL").ready  # revealed but not awarded yet
    w.award(MENTOR, intro, [(sub, 1500)])
    after = w.recs(ADA)
    adv_after = rec_of(after, "Advanced SQL")
    assert adv_after.ready and adv_after.missing == []
    # it rose from below everything ready to the top
    assert titles(mid)[0] == "Label cell diagrams"
    assert sorted(titles(after)[:2]) == ["Advanced SQL", "Query planner"]
    assert titles(after)[2] == "Label cell diagrams"
    assert "prerequisite 'Intro to SQL' done" in adv_after.reasons
    assert adv_after.parts["prerequisites"] == 150
    assert rec_of(after, "Query planner").ready  # awarded work in sql meets the skill
    assert "prerequisite skill sql met" in rec_of(after, "Query planner").reasons
    assert "1 learning resource listed" in adv_after.reasons
    assert adv.id == adv_after.bounty.id
    ben = w.recs(BEN)
    # Ben, who did nothing, sees the advanced bounty flagged: its prerequisite is
    # closed now (Ada's round), so he cannot meet it.
    assert titles(ben)[0] == "Label cell diagrams"
    ben_adv = rec_of(ben, "Advanced SQL")
    assert not ben_adv.ready and not ben_adv.missing[0].open
    assert "first do: 'Intro to SQL' (no longer open)" in ben_adv.reasons
    assert (
        "first do: 'Intro to SQL' (your work there is not awarded yet)"
        in rec_of(mid, "Advanced SQL").reasons
    )


def test_deterministic_and_the_same_from_a_fresh_replica() -> None:
    w = World(n=7)
    for i in range(6):
        w.do(
            w.post(MENTOR, f"Past {i}", ["python", "math"][i % 2 : i % 2 + 1]),
            MENTOR,
            ADA if i % 2 else BEN,
            (R1, R2),
            [5 + i % 4, 6],
        )
    for i in range(12):
        w.post(
            MENTOR if i % 3 else CARELESS,
            f"Task {i}",
            [["python"], ["math"], []][i % 3],
            reward=1000 * (1 + i % 4),
        )
    first = plain(w.recs(ADA))
    assert first == plain(w.recs(ADA)) and len(first) == 12
    # the same events arriving in another order (newest first: each waits for
    # its past) give the same state, so the same list
    again = Replica(w.genesis)
    for ev in reversed(w.events):
        again.add(ev)
    assert again.state.digest() == w.state.digest() and not again.pending
    view = trust_view(again.state, w.now)
    assert plain(recommend(again.state, view, w.pk(ADA), w.now, None)) == first
    # ties (equal score and readiness) are broken by bounty id
    recs = w.recs(ADA)
    for x, y in itertools.pairwise(recs):
        assert x.sort_key() < y.sort_key()


def test_bench_recommend_builds_a_network_with_every_part_and_reports() -> None:
    """`learnmesh bench recommend` on a small network: the generated history has
    settled, refunded, lapsed and open bounties, terms with prerequisites, and
    the learners' lists differ (the figures themselves are BENCHMARKS.md's)."""
    from learnmesh.devnet._bench_recommend import build_network, run_recommend_bench

    net = build_network(300, 150, 300, seed=2)
    phases = {b.phase for b in net.c.state.bounties.values()}
    assert phases >= {"open", "closed", "awarded", "refunded"}, phases
    assert net.terms > 0 and net.open == 45
    assert any(t.prereq_bounties for t in net.c.state.terms.by_bounty.values())
    r = run_recommend_bench(accounts=300, bounties=150, learners=10, limit=5, seed=2)
    assert r["bounties"] == 150 and r["open_bounties"] > 0 and r["learners"] == 10
    assert r["includes_trust_view"] is False and r["distinct_top5_lists"] > 1
    assert set(r["recommend_ms"]) == {"p50", "p95", "max", "mean"}
    out = cli("bench", "recommend", "--accounts", "10", "--json", check=False)
    assert out.returncode == 2 and "--accounts must be at least 16" in out.stderr
    assert "Traceback" not in out.stderr
