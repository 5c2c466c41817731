"""What a node knows about its peers: scores, bans, rate limits and liveness.

Pure bookkeeping: no I/O, no clock. Every method that needs the time takes
`now` (monotonic seconds) from the caller, and decisions come back as values
(a peer to block, peers to unblock) for the runtime to carry out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BAN_SCORE", "BAN_SECONDS", "DEAD_SECONDS", "PeerBook", "PeerScore"]

BAN_SCORE = 50.0  # a peer whose score reaches this is banned
BAN_SECONDS = 60.0  # for this long
DEAD_SECONDS = 30.0  # a peer whose stream would not open is not picked for this long
_DECAY_PER_S = 1.0  # score points forgiven per second


@dataclass
class PeerScore:
    score: float = 0.0
    updated: float = 0.0  # when the score was last brought up to date (decay)
    tokens: float = 0.0  # inbound gossip messages this peer may still send now
    refilled: float = 0.0  # when the token bucket was last refilled
    banned_until: float = 0.0
    reasons: deque[str] = field(default_factory=lambda: deque(maxlen=5))

    def current(self, now: float) -> float:
        return max(0.0, self.score - (now - self.updated) * _DECAY_PER_S)


class PeerBook:
    """Scores decay by one point a second; bad data adds to a peer's score, and
    past `BAN_SCORE` the peer is banned for `BAN_SECONDS`. Inbound gossip is
    rate limited per peer by a token bucket. A peer whose stream would not open
    is skipped for a while, and peers that are gone are forgotten unless they
    still owe a ban or a penalty."""

    def __init__(self, msgs_per_s: float) -> None:
        self.msgs_per_s = msgs_per_s
        self._scores: dict[str, PeerScore] = {}
        self._dead: dict[str, float] = {}  # peer -> until when it is skipped
        self.partitioned: set[str] = set()  # devnet faults: peers refused on purpose
        self.rejections: deque[dict[str, str]] = deque(maxlen=50)
        self.bans = 0

    def _get(self, peer: str, now: float) -> PeerScore:
        ps = self._scores.get(peer)
        if ps is None:
            ps = self._scores[peer] = PeerScore(updated=now, tokens=self.msgs_per_s, refilled=now)
        return ps

    def penalise(self, peer: str, reason: str, now: float, weight: float = 10.0) -> bool:
        """Add to the peer's score; True when this offence bans it (the caller
        blocks the peer's connections)."""
        ps = self._get(peer, now)
        ps.score = ps.current(now) + weight
        ps.updated = now
        ps.reasons.append(reason)
        self.rejections.append({"peer": peer, "reason": reason})
        if ps.score >= BAN_SCORE and ps.banned_until <= now:
            ps.banned_until = now + BAN_SECONDS
            self.bans += 1
            return True
        return False

    def score(self, peer: str, now: float) -> float:
        ps = self._scores.get(peer)
        return ps.current(now) if ps is not None else 0.0

    def rate_ok(self, peer: str, now: float) -> bool:
        """Take one inbound message from the peer's bucket (burst: two seconds' worth)."""
        ps = self._get(peer, now)
        ps.tokens = self._tokens(ps, now)
        ps.refilled = now
        if ps.tokens < 1:
            return False
        ps.tokens -= 1
        return True

    def rate_would_allow(self, peer: str, now: float) -> bool:
        """Whether `rate_ok` would take a message from the peer now (taking nothing)."""
        ps = self._scores.get(peer)
        return (self.msgs_per_s if ps is None else self._tokens(ps, now)) >= 1

    def _tokens(self, ps: PeerScore, now: float) -> float:
        rate = self.msgs_per_s
        return min(rate * 2, ps.tokens + (now - ps.refilled) * rate)

    def banned(self, peer: str, now: float) -> bool:
        ps = self._scores.get(peer)
        return ps is not None and ps.banned_until > now

    def mark_dead(self, peer: str, now: float) -> None:
        self._dead[peer] = now + DEAD_SECONDS

    def revive(self, peer: str) -> None:
        """The peer connected again: whatever made it look dead is past."""
        self._dead.pop(peer, None)

    def usable(self, peer: str, now: float) -> bool:
        """Worth syncing with or dialing: not partitioned off, banned or dead."""
        return (
            peer not in self.partitioned
            and self._dead.get(peer, 0.0) <= now
            and not self.banned(peer, now)
        )

    def lift_expired_bans(self, now: float) -> list[str]:
        """End bans whose time is up; returns the peers to unblock (not those
        partitioned off on purpose)."""
        lifted = []
        for peer, ps in self._scores.items():
            if ps.banned_until and ps.banned_until <= now:
                ps.banned_until = 0.0
                ps.score = 0.0
                if peer not in self.partitioned:
                    lifted.append(peer)
        return lifted

    def forget_gone(self, connected: Iterable[str], now: float) -> None:
        """Drop what is known of peers that are gone and owe nothing."""
        live = set(connected)
        for peer in [p for p in self._scores if p not in live]:
            ps = self._scores[peer]
            if ps.banned_until <= now and ps.current(now) <= 0:
                del self._scores[peer]
        for peer in [p for p, t in self._dead.items() if t <= now]:
            del self._dead[peer]

    def view(self, now: float) -> dict[str, Any]:
        return {
            "partitioned": sorted(self.partitioned),
            "scores": {
                p: {
                    "score": round(ps.score, 1),  # as of its last offence
                    "banned": ps.banned_until > now,
                    "reasons": list(ps.reasons),
                }
                for p, ps in sorted(self._scores.items())
            },
            "rejections": list(self.rejections),
        }
