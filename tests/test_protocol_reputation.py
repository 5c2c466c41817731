"""Reputation: points for awarded work and honest reviews, abandonment as a view
that needs `now`, trust through vouches, and the cost of a fork."""

from __future__ import annotations

from learnmesh.protocol import Params, honest_reviews, reputation, trusted_accounts
from test_protocol_support import Net

P = Params()


def test_awarded_work_and_settling_earn_points() -> None:
    net = Net()
    lc = net.lifecycle(reviewers=(3,))
    rep = reputation(net.state)
    assert rep[net.pk(1)].points == P.points_awarded_work  # the winner
    assert net.pk(2) not in rep or rep[net.pk(2)].points == 0  # revealed, not awarded
    assert rep[net.pk(0)].points == P.points_settled_bounty  # the mentor settled
    assert lc.award is not None


def test_honest_reviews_are_those_near_the_median() -> None:
    net = Net(n=8)
    b = net.bounty(0)
    c = net.commit(1, b)
    close = net.close(0, b, [c])
    sub = net.reveal(1, b, c, close)
    # rubric max 20: tolerance 150 per mille = 3 points of the total
    near1 = net.review(2, b, sub, [7, 7])  # 14 -> 700 pm
    near2 = net.review(3, b, sub, [8, 7])  # 15 -> 750 pm (the median)
    near3 = net.review(4, b, sub, [9, 8])  # 17 -> 850 pm: exactly at the tolerance
    far = net.review(5, b, sub, [1, 1])  # 2 -> 100 pm
    over = net.review(6, b, sub, [10, 10])  # 20 -> 1000 pm: 250 above
    honest = honest_reviews(net.state)
    assert {near1.id, near2.id, near3.id} <= honest
    assert far.id not in honest and over.id not in honest
    rep = reputation(net.state)
    for who in (2, 3, 4):
        assert rep[net.pk(who)].points == P.points_honest_review
    assert net.pk(5) not in rep or rep[net.pk(5)].points == 0


def test_a_single_review_is_not_judged() -> None:
    net = Net()
    lc = net.lifecycle(learners=(1,), reviewers=(3,), award=False)
    assert len(lc.reviews) == 1
    assert honest_reviews(net.state) == set()


def test_abandonment_is_a_view_with_now() -> None:
    net = Net()
    b = net.bounty(0)
    done = net.bounty(0)
    net.emit(0, "refund", {"bounty": done.id})
    review_by = b.body["review_by"]
    digest = net.replica.digest()
    assert net.pk(0) not in reputation(net.state) or reputation(net.state)[net.pk(0)].abandoned == 0
    before = reputation(net.state, now_ms=review_by)
    assert net.pk(0) not in before or before[net.pk(0)].abandoned == 0
    after = reputation(net.state, now_ms=review_by + 1)[net.pk(0)]
    assert after.abandoned == 1  # the refunded one does not count
    assert after.score == after.points - P.penalty_abandoned_bounty
    assert net.replica.digest() == digest  # a view: the state did not change
    net.emit(0, "refund", {"bounty": b.id})
    settled = reputation(net.state, now_ms=review_by + 1)
    assert net.pk(0) not in settled or settled[net.pk(0)].abandoned == 0


def test_trust_flows_through_vouches_from_trusted_accounts() -> None:
    net = Net(n=6, trusted=1)  # member 0 is pre-trusted
    assert trusted_accounts(net.state) == {net.pk(0)}
    net.emit(0, "vouch", {"account": net.pk(1)})
    net.emit(1, "vouch", {"account": net.pk(2)})
    net.emit(4, "vouch", {"account": net.pk(5)})  # 4 is not trusted: confers nothing
    assert trusted_accounts(net.state) == {net.pk(0), net.pk(1), net.pk(2)}
    rep = reputation(net.state)
    assert rep[net.pk(2)].trusted if net.pk(2) in rep else True
    net.emit(5, "vouch", {"account": net.pk(4)})
    assert net.pk(5) not in trusted_accounts(net.state)


def test_a_forked_author_loses_trust_and_positive_score() -> None:
    net = Net(n=6, trusted=1)
    net.emit(0, "vouch", {"account": net.pk(1)})
    lc = net.lifecycle(mentor=1, learners=(2,), reviewers=(3,))
    assert lc.award is not None
    assert reputation(net.state)[net.pk(1)].score > 0
    assert net.pk(1) in trusted_accounts(net.state)
    # member 1 signs a second event at the seq of its award: a fork
    w = net.writers[1]
    w.resume(lc.award.seq - 1, lc.award.prev)
    net.emit(1, "vouch", {"account": net.pk(4)})
    assert net.state.forks == {net.pk(1): lc.award.seq}
    rep = reputation(net.state)[net.pk(1)]
    assert rep.equivocated and not rep.trusted and rep.score <= 0
    assert net.pk(1) not in trusted_accounts(net.state)
    # the award is void from the fork on: the winner's points are gone too
    assert net.void(lc.award) == "equivocation"
    assert net.pk(2) not in reputation(net.state) or reputation(net.state)[net.pk(2)].points == 0
