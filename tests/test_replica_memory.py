"""The replica's per-event indexes share their objects (issue 14, memory): one
(author, seq) tuple per event between `_slot` and `_by_slot`, and one author
bytes object per chain, whether events arrive in order or wait for their prev."""

from __future__ import annotations

import random

from learnmesh.protocol import Replica
from learnmesh.protocol._workload import Workload


def _check_shared(r: Replica) -> None:
    by_slot_keys = {k: k for k in r._by_slot}
    authors: dict[bytes, int] = {}
    for slot in r._slot.values():
        assert by_slot_keys[slot] is slot, "the two indexes hold separate tuples"
        authors.setdefault(slot[0], id(slot[0]))
        assert id(slot[0]) == authors[slot[0]], "an author's bytes are copied per event"


def test_in_order_events_share_one_tuple_and_one_author_object() -> None:
    w = Workload(seed=7, actors=6)
    events = list(w.events(300))
    r = Replica(w.genesis)
    for ev in events:
        assert r.add(ev).status == "applied"
    assert len(r._slot) == 300
    _check_shared(r)
    assert r.digest() == w.replica.digest()


def test_events_released_from_waiting_still_share_their_author() -> None:
    w = Workload(seed=8, actors=6)
    events = list(w.events(300))
    random.Random(1).shuffle(events)
    r = Replica(w.genesis)
    for ev in events:
        r.add(ev)
    assert r.pending == {} and len(r._slot) == 300
    assert r.digest() == w.replica.digest()
    authors: dict[bytes, set[int]] = {}
    for author, _seq in r._slot.values():
        authors.setdefault(author, set()).add(id(author))
    # A waiting event is applied only after its prev: it takes the prev's object.
    assert len(authors) == 6
    assert all(len(ids) == 1 for ids in authors.values())
