"""The node's peer book on its own: scores, decay, bans, rate limits, liveness,
forgetting. Time is a number passed in, so every rule is checked exactly."""

from __future__ import annotations

from learnmesh.node._peers import BAN_SCORE, BAN_SECONDS, DEAD_SECONDS, PeerBook


def test_penalties_add_up_to_a_ban_and_decay_forgives() -> None:
    book = PeerBook(msgs_per_s=10)
    offences = int(BAN_SCORE // 10)
    banned = [book.penalise("p", f"bad {i}", now=0.0) for i in range(offences)]
    assert banned == [False] * (offences - 1) + [True]
    assert book.banned("p", 1.0) and not book.usable("p", 1.0)
    assert book.bans == 1
    # A further offence while banned does not ban again.
    assert book.penalise("p", "more", now=1.0) is False
    assert book.bans == 1
    # Decay: one point a second.
    other = PeerBook(msgs_per_s=10)
    other.penalise("q", "x", now=0.0)
    assert other.score("q", 4.0) == 6.0
    assert other.score("q", 100.0) == 0.0
    # Spread-out offences never reach the ban line.
    spread = PeerBook(msgs_per_s=10)
    assert not any(spread.penalise("r", "x", now=float(11 * i)) for i in range(20))


def test_bans_expire_and_partitioned_peers_stay_blocked() -> None:
    book = PeerBook(msgs_per_s=10)
    for _ in range(5):
        book.penalise("p", "x", now=0.0)
        book.penalise("q", "x", now=0.0)
    book.partitioned.add("q")
    assert book.lift_expired_bans(BAN_SECONDS - 1) == []
    assert book.lift_expired_bans(BAN_SECONDS) == ["p"]  # q stays blocked: partitioned
    assert not book.banned("p", BAN_SECONDS) and book.usable("p", BAN_SECONDS)
    assert not book.usable("q", BAN_SECONDS)


def test_rate_limit_is_a_token_bucket() -> None:
    book = PeerBook(msgs_per_s=10)
    took = sum(book.rate_ok("p", 0.0) for _ in range(100))
    assert took == 10  # a new peer starts with one second's worth
    assert not book.rate_ok("p", 0.0)
    assert sum(book.rate_ok("p", 0.5) for _ in range(100)) == 5
    # Burst capped at two seconds' worth however long the peer was quiet.
    assert sum(book.rate_ok("p", 1000.0) for _ in range(100)) == 20


def test_dead_peers_are_skipped_then_forgotten() -> None:
    book = PeerBook(msgs_per_s=10)
    book.mark_dead("gone", now=0.0)
    assert not book.usable("gone", DEAD_SECONDS - 1)
    assert book.usable("gone", DEAD_SECONDS)
    book.mark_dead("back", now=0.0)
    book.revive("back")  # it connected again: a fresh chance at once
    assert book.usable("back", 1.0)
    # Churn: many peers that came, sent one bad message and left.
    for i in range(150):
        book.penalise(f"churn{i}", "x", now=0.0)
    book.penalise("stays", "x", now=0.0)
    book.forget_gone({"stays"}, now=5.0)  # their penalties still count
    assert len(book.view(5.0)["scores"]) == 151
    book.forget_gone({"stays"}, now=20.0)  # penalties decayed: forgotten
    assert list(book.view(20.0)["scores"]) == ["stays"]
