"""Flags (kind 16) and the hidden view: every void code of the flag handler,
the schema's refusals, the FlagBook's exact round trip, the thresholds, and the
hidden set being the same in any arrival order."""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from learnmesh.protocol import (
    Event,
    FlagBook,
    LocalProtocolError,
    Replica,
    canonical_pack,
    hidden,
    strict_unpack,
    trust_view,
)
from learnmesh.protocol import _moderation as mod
from test_protocol_support import Net

PROTOCOL = pathlib.Path(__file__).resolve().parent.parent / "protocol"
SPAMMER = 7


def _flag(
    net: Net,
    who: int,
    account: bytes,
    target: bytes = b"",
    category: str = "spam",
    note: str = "",
) -> Event:
    body = {"target": target, "account": account, "category": category, "note": note}
    return net.emit(who, "flag", body)


def _net() -> Net:
    # members 0, 1, 2 are the genesis's trusted seeds; 7 posts spam
    return Net(n=8, trusted=3)


# -- each void code, fed the exact event that earns it ---------------------------------


def self_flag() -> tuple[Net, Event]:
    net = _net()
    return net, _flag(net, 0, net.pk(0))


def self_flag_own_event() -> tuple[Net, Event]:
    net = _net()
    b = net.bounty(0)
    return net, _flag(net, 0, net.pk(0), b.id)


def wrong_account() -> tuple[Net, Event]:
    net = _net()
    b = net.bounty(SPAMMER)
    return net, _flag(net, 0, net.pk(1), b.id)


def bad_target() -> tuple[Net, Event]:
    net = _net()
    v = net.emit(SPAMMER, "vouch", {"account": net.pk(3)})
    return net, _flag(net, 0, net.pk(SPAMMER), v.id)


def duplicate_flag() -> tuple[Net, Event]:
    net = _net()
    b = net.bounty(SPAMMER)
    _flag(net, 0, net.pk(SPAMMER), b.id)
    return net, _flag(net, 0, net.pk(SPAMMER), b.id, category="abuse")


def duplicate_account_flag() -> tuple[Net, Event]:
    net = _net()
    _flag(net, 0, net.pk(SPAMMER))
    return net, _flag(net, 0, net.pk(SPAMMER), note="again")


VOID_CASES: dict[str, list[Callable[[], tuple[Net, Event]]]] = {
    "self_flag": [self_flag, self_flag_own_event],
    "wrong_account": [wrong_account],
    "bad_target": [bad_target],
    "duplicate_flag": [duplicate_flag, duplicate_account_flag],
}


@pytest.mark.parametrize(
    ("code", "case"),
    [(code, c) for code, cases in VOID_CASES.items() for c in cases],
    ids=[c.__name__ for cases in VOID_CASES.values() for c in cases],
)
def test_void_code(code: str, case: Callable[[], tuple[Net, Event]]) -> None:
    net, ev = case()
    assert net.void(ev) == code
    assert ev.id not in net.state.moderation.flags
    # the dry run the node uses before signing says the same
    fresh = Replica(net.genesis)
    for e in net.events:
        if e.id != ev.id:
            fresh.add(e)
    dry = fresh.state.would_void(ev)
    assert dry is not None and dry[0] == code


def _codes(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        str(n.args[1].value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Name)
        and n.func.id == "_rule"
        and isinstance(n.args[1], ast.Constant)
    }


def test_every_flag_void_code_has_a_case() -> None:
    assert _codes(PROTOCOL / "_moderation.py") == set(VOID_CASES)


def test_a_flag_of_a_void_target_is_void() -> None:
    net = _net()
    b = net.bounty(SPAMMER, submit_in=0)  # void: deadline
    assert net.void(b) == "deadline"
    assert net.void(_flag(net, 0, net.pk(SPAMMER), b.id)) == "void_dependency"


def test_valid_flags_of_every_flaggable_target() -> None:
    net = _net()
    b = net.bounty(SPAMMER)
    c = net.commit(1, b)
    close = net.close(SPAMMER, b, [c])
    rv = net.reveal(1, b, c, close)
    review = net.review(2, b, rv)
    flags = [
        _flag(net, 0, net.pk(SPAMMER), b.id),
        _flag(net, 0, net.pk(1), rv.id, category="plagiarism", note="copied from X"),
        _flag(net, 0, net.pk(2), review.id, category="abuse"),
        _flag(net, 3, net.pk(SPAMMER), category="other"),
    ]
    for f in flags:
        assert net.void(f) is None, net.state.void.get(f.id)
    assert set(net.state.moderation.flags) == {f.id for f in flags}


# -- the schema ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"category": "rude"}, "category must be one of"),
        ({"note": "x" * 1001}, "note must be text"),
        ({"target": b"short"}, "target"),
        ({"account": b"\x01" * 31}, "account must be a 32-byte id"),
    ],
)
def test_schema_refuses(body: dict[str, Any], reason: str) -> None:
    net = _net()
    full = {"target": b"", "account": net.pk(SPAMMER), "category": "spam", "note": ""}
    full.update(body)
    with pytest.raises(LocalProtocolError) as exc:
        net.writers[0].sign("flag", full, net.now + 1, [])
    assert reason in str(exc.value)


def test_a_target_must_be_in_refs() -> None:
    net = _net()
    b = net.bounty(SPAMMER)
    body = {"target": b.id, "account": net.pk(SPAMMER), "category": "spam", "note": ""}
    with pytest.raises(LocalProtocolError):
        net.writers[0].sign("flag", body, net.now + 1, [])


# -- the book in the snapshot ------------------------------------------------------------


def test_flagbook_round_trip_is_exact() -> None:
    net = _net()
    b = net.bounty(SPAMMER)
    _flag(net, 0, net.pk(SPAMMER), b.id, note="buy now")
    _flag(net, 1, net.pk(SPAMMER), b.id, category="abuse")
    _flag(net, 4, net.pk(SPAMMER), category="other", note="ünïcode")
    book = net.state.moderation
    plain = book.to_plain()
    packed = canonical_pack(plain)
    again = FlagBook.from_plain(strict_unpack(packed, len(packed)))
    assert again == book
    assert again.to_plain() == plain
    assert FlagBook.from_plain([]) == FlagBook()


@pytest.mark.parametrize(
    "bad",
    [
        None,
        {},
        [[b"x" * 32]],
        [[b"\x01" * 32, b"\x02" * 32, b"", b"\x03" * 32, "rude", "", 1]],
        [[b"\x01" * 32, b"\x02" * 32, b"", b"\x03" * 32, "spam", "", True]],
        # out of order, and the same flag twice
        [
            [b"\x05" * 32, b"\x02" * 32, b"", b"\x03" * 32, "spam", "", 1],
            [b"\x01" * 32, b"\x02" * 32, b"", b"\x04" * 32, "spam", "", 1],
        ],
        [
            [b"\x01" * 32, b"\x02" * 32, b"", b"\x03" * 32, "spam", "", 1],
            [b"\x05" * 32, b"\x02" * 32, b"", b"\x03" * 32, "abuse", "", 1],
        ],
    ],
)
def test_flagbook_refuses_malformed_data(bad: Any) -> None:
    with pytest.raises(ValueError):
        FlagBook.from_plain(bad)


# -- the hidden view ---------------------------------------------------------------------


def test_two_trusted_flaggers_hide_a_bounty_and_untrusted_ones_do_not() -> None:
    net = _net()
    spam = net.bounty(SPAMMER)
    other = net.bounty(SPAMMER)
    _flag(net, 0, net.pk(SPAMMER), spam.id)
    _flag(net, 1, net.pk(SPAMMER), spam.id, category="abuse")
    for who in (3, 4, 5):  # no trust at all
        _flag(net, who, net.pk(SPAMMER), other.id)
    h = hidden(net.state, trust_view(net.state))
    assert set(h.events) == {spam.id}
    item = h.events[spam.id]
    assert item.kind == "event" and item.account == net.pk(SPAMMER)
    assert [v.flagger for v in item.flags] == sorted([net.pk(0), net.pk(1)])
    assert item.trust == sum(v.trust for v in item.flags) > 0
    assert item.ppm >= mod.HIDE_TRUST_PPM
    assert item.categories == {"abuse": 1, "spam": 1}
    assert "of all trust" in item.why
    assert h.of(spam.id, net.pk(SPAMMER)) is item
    assert h.of(other.id, net.pk(SPAMMER)) is None
    assert set(h.below) == {other.id}
    assert h.below[other.id].trust == 0 and not h.below[other.id].hidden
    assert h.accounts == {}


def test_an_account_flag_hides_all_its_content() -> None:
    net = _net()
    b = net.bounty(SPAMMER)
    _flag(net, 0, net.pk(SPAMMER))
    h = hidden(net.state, trust_view(net.state))
    assert set(h.accounts) == {net.pk(SPAMMER)}
    assert h.accounts[net.pk(SPAMMER)].kind == "account"
    assert h.of(b.id, net.pk(SPAMMER)) is h.accounts[net.pk(SPAMMER)]
    assert h.of(None, net.pk(1)) is None


def test_three_flaggers_with_trust_hide_below_the_trust_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mod, "HIDE_TRUST_PPM", 2_000_000)  # the share alone cannot hide
    net = _net()
    b = net.bounty(SPAMMER)
    _flag(net, 0, net.pk(SPAMMER), b.id)
    _flag(net, 1, net.pk(SPAMMER), b.id)
    h = hidden(net.state, trust_view(net.state))
    assert b.id in h.below and h.below[b.id].trusted_flaggers == 2
    _flag(net, 2, net.pk(SPAMMER), b.id)
    h = hidden(net.state, trust_view(net.state))
    assert b.id in h.events
    assert "3 flaggers with trust" in h.events[b.id].why


def test_a_forked_flagger_counts_for_nothing() -> None:
    net = _net()
    b = net.bounty(SPAMMER)
    f = _flag(net, 0, net.pk(SPAMMER), b.id)
    assert b.id in hidden(net.state, trust_view(net.state)).events
    w = net.writers[0]
    w.resume(f.seq - 1, f.prev)
    net.emit(0, "vouch", {"account": net.pk(4)})  # a second event at the flag's seq
    assert net.pk(0) in net.state.forks
    assert b.id not in hidden(net.state, trust_view(net.state)).events


# -- any arrival order -------------------------------------------------------------------


def _story() -> tuple[Net, list[Event]]:
    net = _net()
    s1 = net.bounty(SPAMMER)
    s2 = net.bounty(SPAMMER)
    ok = net.bounty(5)
    net.emit(0, "vouch", {"account": net.pk(3)})
    net.emit(1, "vouch", {"account": net.pk(4)})
    _flag(net, 0, net.pk(SPAMMER), s1.id)
    _flag(net, 3, net.pk(SPAMMER), s1.id, category="abuse")
    _flag(net, 4, net.pk(SPAMMER), s2.id)
    _flag(net, 4, net.pk(SPAMMER), s2.id)  # duplicate: void
    _flag(net, 1, net.pk(5), ok.id, category="plagiarism")
    _flag(net, 2, net.pk(1), ok.id)  # wrong account: void
    _flag(net, 2, net.pk(SPAMMER), note="posts nothing but ads")
    _flag(net, 5, net.pk(5))  # self: void
    _flag(net, 6, net.pk(4))  # no trust: below the threshold
    return net, list(net.events)


def _view(r: Replica) -> Any:
    h = hidden(r.state, trust_view(r.state))
    return h, r.state.moderation.to_plain(), sorted(r.state.void.items())


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_the_hidden_set_is_the_same_in_any_arrival_order(data: st.DataObject) -> None:
    net, events = _story()
    expected = _view(net.replica)
    assert expected[0].events and expected[0].accounts and expected[0].below
    order = data.draw(st.permutations(range(len(events))), label="order")
    r = Replica(net.genesis)
    for i in order:
        r.add(events[i])
    assert r.pending == {}
    assert _view(r) == expected
    assert r.digest() == net.replica.digest()


@settings(max_examples=25, deadline=None)
@given(
    flags=st.lists(
        st.tuples(st.integers(0, 6), st.integers(-1, 2), st.sampled_from(["spam", "abuse"])),
        min_size=1,
        max_size=14,
    ),
    vouches=st.lists(st.tuples(st.integers(0, 2), st.integers(3, 6)), max_size=4),
    data=st.data(),
)
def test_random_flags_hide_the_same_in_any_order(
    flags: list[tuple[int, int, str]], vouches: list[tuple[int, int]], data: st.DataObject
) -> None:
    """Random flaggers (trusted, vouched for or not), targets (three bounties or
    the account as a whole: -1) and duplicates: one hidden view in every order."""
    net = _net()
    bounties = [net.bounty(SPAMMER, reward=1) for _ in range(3)]
    for src, dst in vouches:
        net.emit(src, "vouch", {"account": net.pk(dst)})
    for who, t, cat in flags:
        target = bounties[t].id if t >= 0 else b""
        _flag(net, who, net.pk(SPAMMER), target, category=cat)
    expected = _view(net.replica)
    order = data.draw(st.permutations(range(len(net.events))), label="order")
    r = Replica(net.genesis)
    for i in order:
        r.add(net.events[i])
    assert r.pending == {}
    assert _view(r) == expected
