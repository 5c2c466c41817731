"""Comments and resources (kinds 17 and 18, protocol/_learning.py): their
schemas, their fold rules, the thread and resource views, the book's exact
snapshot round trip, and (hypothesis) that any arrival order gives the same
threads and rankings."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from learnmesh.protocol import (
    Event,
    LearningBook,
    LocalProtocolError,
    Replica,
    ThreadNode,
    comments_for_bounty,
    resources_for,
    thread,
    trust_view,
)
from learnmesh.protocol._learning import target_kind
from test_protocol_support import Net

FAST = settings(max_examples=25, deadline=None)


def comment(net: Net, who: int, target: Event | bytes, text: str = "a question") -> Event:
    tid = target if isinstance(target, bytes) else target.id
    return net.emit(who, "comment", {"target": tid, "text": text})


def resource(
    net: Net,
    who: int,
    skill: str = "python",
    url: str = "https://docs.python.org/3/tutorial/",
    bounty: Event | None = None,
    title: str = "The Python tutorial",
    kind: str = "article",
    licence: str = "PSF-2.0",
    add: bool = True,
) -> Event:
    body = {
        "bounty": bounty.id if bounty is not None else b"",
        "skill": skill,
        "title": title,
        "url": url,
        "kind": kind,
        "licence": licence,
    }
    return net.emit(who, "resource", body, add=add)


def flat(nodes: list[ThreadNode]) -> list[tuple[int, str]]:
    return [(d, c.text) for n in nodes for d, c in n.walk()]


# -- rules -------------------------------------------------------------------------------


def test_a_comment_may_name_each_kind_of_target_and_knows_its_bounty() -> None:
    net = Net()
    lc = net.lifecycle(award=False)
    b = lc.bounty
    r = resource(net, 5, bounty=b)
    loose = resource(net, 5, url="https://example.org/x")
    on_b = comment(net, 1, b, "when is the deadline?")
    on_sub = comment(net, 3, lc.reveals[0], "nice work")
    on_rev = comment(net, 1, lc.reviews[0], "thanks for the review")
    on_c = comment(net, 0, on_b, "Friday")
    on_r = comment(net, 2, r, "this helped")
    on_loose = comment(net, 2, loose, "good intro")
    assert net.state.void == {}
    book = net.state.learning
    for ev in (on_b, on_sub, on_rev, on_c, on_r):
        assert book.comments[ev.id].root == b.id
    assert book.comments[on_loose.id].root is None
    assert book.comments[on_c.id].author == net.pk(0)
    assert book.comments[on_c.id].timestamp == on_c.timestamp
    kinds = {
        target_kind(net.state, t.id)[0]  # type: ignore[index]
        for t in (b, lc.reveals[0], lc.reviews[0], on_b, r)
    }
    assert kinds == {"bounty", "reveal", "review", "comment", "resource"}
    assert target_kind(net.state, lc.commits[0].id) is None


@pytest.mark.parametrize("make", ["vouch", "commit", "close", "transfer", "profile", "award"])
def test_a_comment_on_any_other_kind_is_void(make: str) -> None:
    net = Net()
    if make == "vouch":
        target = net.emit(1, "vouch", {"account": net.pk(2)})
    elif make == "transfer":
        target = net.transfer(1, 2, 10)
    elif make == "profile":
        target = net.emit(1, "profile", {"name": "ann", "bio": "", "skills": []})
    else:
        lc = net.lifecycle()
        target = {"commit": lc.commits[0], "close": lc.close, "award": lc.award}[make]  # type: ignore[assignment]
    assert target is not None
    c = comment(net, 3, target)
    assert net.void(c) == "bad_target"
    assert c.id not in net.state.learning.comments
    assert net.state.would_void(c) == net.state.void[c.id]


def test_a_comment_on_a_void_bounty_is_void_by_dependency() -> None:
    net = Net()
    b = net.bounty(0, submit_in=0)  # void: deadline
    c = comment(net, 1, b)
    assert net.void(c) == "void_dependency"
    assert net.state.learning.comments == {}


def test_a_resource_for_an_unknown_bounty_is_void() -> None:
    net = Net()
    v = net.emit(1, "vouch", {"account": net.pk(2)})
    r = net.emit(
        2,
        "resource",
        {
            "bounty": v.id,
            "skill": "python",
            "title": "t",
            "url": "https://a.example/",
            "kind": "video",
            "licence": "",
        },
    )
    assert net.void(r) == "unknown_bounty"
    assert net.state.learning.resources == {}


def test_a_dry_run_changes_nothing() -> None:
    net = Net()
    b = net.bounty(0)
    ev = net.emit(1, "comment", {"target": b.id, "text": "hi"}, add=False)
    assert net.state.would_void(ev) is None
    assert net.state.learning.comments == {}
    net.replica.add(ev)
    assert ev.id in net.state.learning.comments


# -- schemas -----------------------------------------------------------------------------


def _signs(net: Net, kind: str, body: dict[str, Any], refs: list[bytes] | None = None) -> None:
    net.emit(0, kind, body, refs=refs, add=False)


def _resource_body(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "bounty": b"",
        "skill": "python",
        "title": "A title",
        "url": "https://example.org/a",
        "kind": "course",
        "licence": "CC-BY-4.0",
    }
    body.update(kw)
    return body


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"target": b"x" * 32, "text": ""}, "text must be text of 1..4000"),
        ({"target": b"x" * 32, "text": "a" * 4001}, "text must be text of 1..4000"),
        ({"target": b"x" * 31, "text": "hi"}, "target must be a 32-byte id"),
        ({"target": "ab" * 32, "text": "hi"}, "target must be a 32-byte id"),
        ({"target": b"x" * 32, "text": 5}, "text must be text"),
    ],
)
def test_comment_schema(body: dict[str, Any], why: str) -> None:
    net = Net()
    with pytest.raises(LocalProtocolError) as exc:
        _signs(net, "comment", body, refs=[b"x" * 32])
    assert why in exc.value.reason


def test_comment_refs_must_name_the_target() -> None:
    net = Net()
    b = net.bounty(0)
    with pytest.raises(LocalProtocolError) as exc:
        _signs(net, "comment", {"target": b.id, "text": "hi"}, refs=[])
    assert exc.value.code == "refs"
    with pytest.raises(LocalProtocolError):
        _signs(net, "comment", {"target": b.id, "text": "hi"}, refs=[b.id, b"y" * 32])


def test_a_comment_of_4000_characters_of_four_bytes_each_fits() -> None:
    net = Net()
    b = net.bounty(0)
    c = comment(net, 1, b, "\U0001f600" * 4000)
    assert net.void(c) is None


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"url": "javascript:alert(1)"}, "http:// or https://"),
        ({"url": "data:text/html;base64,PHNjcmlwdD4="}, "http:// or https://"),
        ({"url": "ftp://example.org/"}, "http:// or https://"),
        ({"url": "https://"}, "name a host"),
        ({"url": "https:///etc/passwd"}, "name a host"),
        ({"url": "https://@evil.example"}, "name a host"),
        ({"url": "https://user:pw@host.example/"}, "no user name"),
        ({"url": "https://:80/"}, "name a host"),
        ({"url": 'https://a.example/"onmouseover="x'}, "printable ASCII"),
        ({"url": "https://a.example/<script>"}, "printable ASCII"),
        ({"url": "https://a.example\\@b.example/"}, "printable ASCII"),
        ({"url": "https://exa mple.org/"}, "printable ASCII"),
        ({"url": "https://example.org/\x00"}, "printable ASCII"),
        ({"url": "https://example.org/\u202e"}, "printable ASCII"),
        ({"url": "https://bücher.example/"}, "printable ASCII"),
        ({"url": "https://e.org/" + "a" * 490}, "1..500"),
        ({"url": ""}, "1..500"),
        ({"kind": "podcast"}, "kind must be one of"),
        ({"licence": "x" * 65}, "licence must be text of 0..64"),
        ({"title": ""}, "title must be text of 1..200"),
        ({"skill": ""}, "skill must be text of 1..32"),
        ({"skill": "s" * 33}, "skill must be text of 1..32"),
        ({"bounty": b"short"}, "bounty"),
        ({"bounty": None}, "bounty"),
    ],
)
def test_resource_schema(fields: dict[str, Any], why: str) -> None:
    net = Net()
    with pytest.raises(LocalProtocolError) as exc:
        _signs(net, "resource", _resource_body(**fields), refs=[])
    assert why in exc.value.reason, exc.value.reason


def test_resource_schema_accepts_http_https_and_any_case_scheme() -> None:
    net = Net()
    urls = (
        "http://a.example",
        "https://a.example/p?q=1#f",
        "HTTPS://A.EXAMPLE/%C3%BC",
        "https://a.example:8443/x@y",
    )
    for url in urls:
        ev = net.emit(0, "resource", _resource_body(url=url))
        assert net.void(ev) is None
    assert len(net.state.learning.resources) == 4


# -- views -------------------------------------------------------------------------------


def test_thread_and_bounty_forest_order_and_depth() -> None:
    net = Net()
    lc = net.lifecycle(award=False)
    b = lc.bounty
    q = comment(net, 1, b, "q1")
    q2 = comment(net, 2, b, "q2")
    a1 = comment(net, 0, q, "a1")
    a2 = comment(net, 3, q, "a2")
    a11 = comment(net, 1, a1, "a1.1")
    s1 = comment(net, 3, lc.reveals[1], "on work")
    r1 = comment(net, 2, lc.reviews[0], "on review")
    assert net.state.void == {}
    assert flat(thread(net.state, b.id)) == [
        (0, "q1"),
        (1, "a1"),
        (2, "a1.1"),
        (1, "a2"),
        (0, "q2"),
    ]
    assert flat(thread(net.state, q.id)) == [(0, "a1"), (1, "a1.1"), (0, "a2")]
    assert flat(thread(net.state, q2.id)) == []
    forest = comments_for_bounty(net.state, b.id)
    assert [n.comment.id for n in forest] == [q.id, q2.id, s1.id, r1.id]
    assert flat(forest)[:5] == flat(thread(net.state, b.id))
    assert a2.id in {c.id for _, c in forest[0].walk()}
    assert a11.id in {c.id for _, c in forest[0].walk()}
    assert comments_for_bounty(net.state, b"z" * 32) == []


def test_a_long_reply_chain_needs_no_recursion() -> None:
    net = Net()
    b = net.bounty(0)
    prev: Event = b
    for i in range(3000):
        prev = comment(net, i % 2, prev, f"r{i}")
    rows = [(d, c) for n in comments_for_bounty(net.state, b.id) for d, c in n.walk()]
    assert len(rows) == 3000
    assert rows[-1][0] == 2999


def _trusted_in_python(net: Net) -> None:
    """Member 1 gets trust in python: member 0 (the seed) awards its work."""
    net.lifecycle(mentor=0, learners=(1,), reviewers=(3, 4))


def test_resources_are_ranked_by_the_suggesters_trust_in_the_skill() -> None:
    net = Net()
    _trusted_in_python(net)
    b = net.bounty(0)
    r_untrusted = resource(net, 5, url="https://a.example/untrusted", title="early")
    r_trusted = resource(net, 1, url="https://b.example/trusted", title="late")
    dup = resource(net, 2, url="https://a.example/untrusted", title="again")
    other = resource(net, 1, skill="rust", url="https://c.example/", bounty=b)
    assert net.state.void == {}
    view = trust_view(net.state)
    assert view.score(net.pk(1), "python") > 0
    assert view.score(net.pk(5), "python") == 0
    ranked = resources_for(net.state, skill="python", trust_view=view)
    assert [g.first.id for g in ranked] == [r_trusted.id, r_untrusted.id]
    assert ranked[0].score == view.score(net.pk(1), "python")
    assert [s.id for s in ranked[1].suggestions] == [r_untrusted.id, dup.id]
    assert ranked[1].suggesters == (net.pk(5), net.pk(2))
    assert ranked[1].first.title == "early"
    # without trust: more suggesters first, then the oldest
    plain = resources_for(net.state, skill="python")
    assert [g.first.id for g in plain] == [r_untrusted.id, r_trusted.id]
    assert [g.first.id for g in resources_for(net.state, bounty=b.id)] == [other.id]
    assert [g.first.id for g in resources_for(net.state, "rust", b.id)] == [other.id]
    assert resources_for(net.state, "python", b.id) == []
    assert len(resources_for(net.state)) == 3
    assert resources_for(net.state, skill="go") == []


def test_equal_scores_are_ordered_by_time_then_id() -> None:
    net = Net()
    ts = net.now + 10_000
    evs = [
        net.emit(i, "resource", _resource_body(url=f"https://x.example/{i}"), ts=ts)
        for i in range(4)
    ]
    got = [g.first.id for g in resources_for(net.state, "python", trust_view=trust_view(net.state))]
    assert got == sorted(e.id for e in evs)


# -- the book in the snapshot -----------------------------------------------------------


def _busy_net() -> Net:
    net = Net()
    lc = net.lifecycle(award=False)
    q = comment(net, 1, lc.bounty, "**bold** question")
    comment(net, 0, q, "an answer")
    comment(net, 2, lc.reveals[0], "feedback")
    resource(net, 1, bounty=lc.bounty)
    resource(net, 2, skill="maths", url="https://m.example/", licence="")
    assert net.state.void == {}
    return net


def test_the_book_round_trips_exactly() -> None:
    book = _busy_net().state.learning
    plain = book.to_plain()
    again = LearningBook.from_plain(plain)
    assert again == book
    assert again.to_plain() == plain
    assert LearningBook.from_plain(LearningBook().to_plain()) == LearningBook()


@pytest.mark.parametrize(
    "bad",
    [
        [],
        None,
        {"comments": []},
        {"comments": [], "resources": [], "x": []},
        {"comments": [[b"a" * 32]], "resources": []},
        {"comments": [[b"a" * 32, b"b" * 32, b"", b"c" * 32, "t", True]], "resources": []},
        {"comments": [[b"a" * 31, b"b" * 32, b"", b"c" * 32, "t", 1]], "resources": []},
        {"comments": [[b"a" * 32, b"b" * 32, b"x", b"c" * 32, "t", 1]], "resources": []},
        {"comments": [], "resources": [[b"a" * 32] * 9]},
        {"comments": [], "resources": "no"},
    ],
)
def test_the_book_refuses_malformed_data(bad: Any) -> None:
    with pytest.raises(ValueError):
        LearningBook.from_plain(bad)


def test_a_repeated_row_is_refused() -> None:
    plain = _busy_net().state.learning.to_plain()
    plain["comments"].append(plain["comments"][0])
    with pytest.raises(ValueError):
        LearningBook.from_plain(plain)


# -- any order ---------------------------------------------------------------------------


def _discussion() -> tuple[Net, list[Event]]:
    net = Net()
    lc = net.lifecycle(mentor=0, learners=(1, 2), reviewers=(3, 4))
    b = lc.bounty
    q = comment(net, 1, b, "q")
    a = comment(net, 0, q, "a")
    comment(net, 2, a, "a.a")
    comment(net, 5, lc.reveals[0], "on work")
    comment(net, 3, lc.reviews[1], "on review")
    r1 = resource(net, 1, bounty=b)
    resource(net, 2, url="https://docs.python.org/3/tutorial/")
    resource(net, 5, skill="maths", url="https://m.example/")
    comment(net, 4, r1, "on a resource")
    bad = net.emit(1, "vouch", {"account": net.pk(2)})
    comment(net, 3, bad, "void: not a target")
    assert len(net.state.void) == 1
    return net, list(net.events)


@FAST
@given(data=st.data())
def test_any_arrival_order_gives_the_same_threads_and_rankings(data: st.DataObject) -> None:
    net, events = _discussion()
    want_plain = net.state.learning.to_plain()
    bounty = next(e for e in events if e.kind.name == "bounty").id
    view = trust_view(net.state)
    want_forest = flat(comments_for_bounty(net.state, bounty))
    want_ranked = [
        (g.first.id, g.score) for g in resources_for(net.state, "python", trust_view=view)
    ]
    order = data.draw(st.permutations(range(len(events))), label="order")
    r = Replica(net.genesis)
    for i in order:
        r.add(events[i])
    assert r.pending == {}
    assert r.digest() == net.replica.digest()
    assert r.state.learning.to_plain() == want_plain
    assert r.state.void.keys() == net.state.void.keys()
    assert flat(comments_for_bounty(r.state, bounty)) == want_forest
    got = [(g.first.id, g.score) for g in resources_for(r.state, "python", trust_view=view)]
    assert got == want_ranked


def test_the_book_survives_the_ledger_snapshot_file() -> None:
    """Through the snapshot's file format (encode, decode, restore): the same
    book, and a comment applied afterwards lands in the same threads."""
    from test_ledger_snapshot import _round_trip

    net = _busy_net()
    rep = net.replica
    b = next(iter(rep.state.bounties))
    ev = net.emit(3, "comment", {"target": b, "text": "after the snapshot"}, add=False)
    again = _round_trip(rep, {**rep.raw, ev.id: ev.raw})
    assert again.state.learning == rep.state.learning
    assert again.digest() == rep.digest()
    again.add(ev)
    rep.add(ev)
    assert flat(comments_for_bounty(again.state, b)) == flat(comments_for_bounty(net.state, b))
