"""What this node passes on by gossip: a node policy, never part of the state.

Every valid event is admitted into the ledger whatever this module says (the
state digest must not depend on one node's choices); this module only decides
whether the node *forwards* an event it received by gossip:

- an event by an author on this node's blocklist is not forwarded;
- at most `RELAY_PER_AUTHOR_PER_MIN` events of one author are forwarded per
  sliding minute; the excess is still admitted here and reaches other nodes by
  sync (which each node runs with its neighbours), so one key cannot flood the
  gossip mesh, yet nothing is lost.

Pure: the caller passes the time (monotonic seconds) and the blocklist test,
so the policy is unit-tested without a node, a clock or a network.
"""

from __future__ import annotations

import os
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = [
    "BLOCKED",
    "FORWARD",
    "NOT_BLOCKED",
    "OVER_LIMIT",
    "RELAY_PER_AUTHOR_PER_MIN",
    "RELAY_WINDOW_S",
    "RelayDecision",
    "RelayPolicy",
    "default_relay_limit",
]

RELAY_PER_AUTHOR_PER_MIN = 300  # events of one author forwarded per minute at most
RELAY_WINDOW_S = 60.0
MAX_TRACKED_AUTHORS = 10_000  # the least recently seen are forgotten beyond this
ENV_LIMIT = "LEARNMESH_RELAY_PER_AUTHOR_PER_MIN"
FORWARD, BLOCKED, OVER_LIMIT = "forward", "blocked", "over_limit"
NOT_BLOCKED: Callable[[bytes], bool] = lambda _author: False  # noqa: E731


def default_relay_limit() -> int:
    """`RELAY_PER_AUTHOR_PER_MIN`, unless the environment sets
    LEARNMESH_RELAY_PER_AUTHOR_PER_MIN (a benchmark that writes thousands of
    events from one key a minute and wants them all gossiped sets it high)."""
    raw = os.environ.get(ENV_LIMIT, "").strip()
    if raw.isdigit():
        return int(raw)
    return RELAY_PER_AUTHOR_PER_MIN


@dataclass(frozen=True, slots=True)
class RelayDecision:
    """Which of a gossip message's events this node forwards, and why not the rest."""

    forward: list[int]  # indexes of the events to pass on
    blocked: int  # events held back: their author is blocked here
    over_limit: int  # events held back: their author is over the relay limit

    @property
    def all_forwarded(self) -> bool:
        return not self.blocked and not self.over_limit


@dataclass
class _Window:
    times: deque[float] = field(default_factory=deque)
    ids: set[bytes] = field(default_factory=set)
    order: deque[bytes] = field(default_factory=deque)


class RelayPolicy:
    """The per-author sliding window of forwarded events. An event id counted
    once in the window is not counted again (gossip brings the same event from
    several neighbours), and is forwarded again only if it was the first time."""

    def __init__(
        self,
        per_min: int = RELAY_PER_AUTHOR_PER_MIN,
        window_s: float = RELAY_WINDOW_S,
        max_authors: int = MAX_TRACKED_AUTHORS,
    ) -> None:
        if per_min < 0:
            raise ValueError("the relay limit is a count of events, 0 or more")
        self.per_min = per_min
        self.window_s = window_s
        self.max_authors = max_authors
        self._authors: OrderedDict[bytes, _Window] = OrderedDict()
        # decisions made: held-back copies count each time a neighbour sends one
        self.counts = {FORWARD: 0, BLOCKED: 0, OVER_LIMIT: 0}

    def _window(self, author: bytes, now: float) -> _Window:
        w = self._authors.get(author)
        if w is None:
            w = self._authors[author] = _Window()
            while len(self._authors) > self.max_authors:
                self._authors.popitem(last=False)
        else:
            self._authors.move_to_end(author)
        cut = now - self.window_s
        while w.times and w.times[0] <= cut:
            w.times.popleft()
            w.ids.discard(w.order.popleft())
        return w

    def decide_one(self, author: bytes, event_id: bytes, now: float, blocked: bool) -> str:
        """FORWARD, BLOCKED or OVER_LIMIT for one event received at `now`."""
        if blocked:
            self.counts[BLOCKED] += 1
            return BLOCKED
        w = self._window(author, now)
        if event_id in w.ids:
            return FORWARD  # already counted: a copy from another neighbour
        if len(w.times) >= self.per_min:
            self.counts[OVER_LIMIT] += 1
            return OVER_LIMIT
        w.times.append(now)
        w.ids.add(event_id)
        w.order.append(event_id)
        self.counts[FORWARD] += 1
        return FORWARD

    def decide(
        self,
        events: Iterable[tuple[bytes, bytes]],
        now: float,
        is_blocked: Callable[[bytes], bool] = NOT_BLOCKED,
    ) -> RelayDecision:
        """The decision for one gossip message's events, given as (author, id)."""
        forward: list[int] = []
        blocked = over = 0
        for i, (author, eid) in enumerate(events):
            d = self.decide_one(author, eid, now, is_blocked(author))
            if d == FORWARD:
                forward.append(i)
            elif d == BLOCKED:
                blocked += 1
            else:
                over += 1
        return RelayDecision(forward, blocked, over)

    def recent(self, author: bytes, now: float) -> int:
        """Events of `author` forwarded in the current window."""
        w = self._authors.get(author)
        if w is None:
            return 0
        return sum(1 for t in w.times if t > now - self.window_s)
