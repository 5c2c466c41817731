"""bounty_terms (PROTOCOL.md §6.6): a bounty's minimum reviewer trust,
prerequisites and resources, fixed the moment the bounty is posted."""

from __future__ import annotations

import ast
import pathlib
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from learnmesh.protocol import Event, ProtocolError, Replica
from learnmesh.protocol._terms import TermsBook
from test_protocol_support import Net

PROTOCOL = pathlib.Path(__file__).resolve().parent.parent / "protocol"
RES = {
    "title": "SQL joins",
    "url": "https://example.org/joins",
    "kind": "article",
    "licence": "CC-BY-4.0",
}


def terms(
    bounty: Event,
    ppm: int = 0,
    pre: list[bytes] | None = None,
    skills: list[str] | None = None,
    res: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "bounty": bounty.id,
        "min_reviewer_trust_ppm": ppm,
        "prereq_bounties": pre or [],
        "prereq_skills": skills or [],
        "resources": res if res is not None else [RES],
    }


def posted(net: Net, who: int = 0, **kw: Any) -> tuple[Event, Event]:
    b = net.bounty(who)
    return b, net.emit(who, "bounty_terms", terms(b, **kw))


def test_terms_are_kept_with_their_bounty() -> None:
    net = Net()
    intro, _ = posted(net)
    adv, t = posted(net, ppm=25_000, pre=[intro.id], skills=["sql"])
    assert net.void(t) is None
    got = net.state.terms.get(adv.id)
    assert got is not None
    assert got.min_reviewer_trust_ppm == 25_000
    assert got.prereq_bounties == (intro.id,)
    assert got.prereq_skills == ("sql",)
    assert got.resources == (RES,)
    assert net.state.terms.min_reviewer_trust_ppm(intro.id) == 0
    assert net.state.terms.get(b"\x00" * 32) is None
    # the book survives the snapshot's plain encoding exactly
    again = TermsBook.from_plain(net.state.terms.to_plain())
    assert again == net.state.terms


def not_mentor() -> tuple[Net, Event]:
    net = Net()
    b = net.bounty(0)
    return net, net.emit(1, "bounty_terms", terms(b))


def terms_late() -> tuple[Net, Event]:
    net = Net()
    b = net.bounty(0)
    net.emit(0, "vouch", {"account": net.pk(1)})  # something else came first
    return net, net.emit(0, "bounty_terms", terms(b))


def bad_prereq() -> tuple[Net, Event]:
    net = Net()
    v = net.emit(1, "vouch", {"account": net.pk(2)})
    b = net.bounty(0)
    return net, net.emit(0, "bounty_terms", terms(b, pre=[v.id]))


CASES = {"not_mentor": not_mentor, "terms_late": terms_late, "bad_prereq": bad_prereq}


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_rule_voids_with_its_code(code: str) -> None:
    net, ev = CASES[code]()
    assert net.void(ev) == code
    assert net.state.terms.by_bounty == {}
    again = Replica(net.genesis)
    for e in reversed(net.events):
        again.add(e)
    assert again.digest() == net.replica.digest()


def test_every_terms_rule_has_a_case() -> None:
    tree = ast.parse((PROTOCOL / "_terms.py").read_text())
    codes = {
        n.args[1].value
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and getattr(n.func, "id", None) == "_rule"
        and isinstance(n.args[1], ast.Constant)
    }
    assert codes == set(CASES)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"min_reviewer_trust_ppm": 1_000_001}, "min_reviewer_trust_ppm"),
        ({"prereq_skills": ["a"] * 2}, "must not repeat"),
        ({"prereq_skills": [str(i) for i in range(9)]}, "at most 8"),
        ({"resources": [{**RES, "url": "javascript:alert(1)"}]}, "http:// or https://"),
        ({"resources": [{**RES, "url": "https://x.org/a b"}]}, "spaces"),
        ({"resources": [{**RES, "url": "https://user@x.org/"}]}, "user name"),
        ({"resources": [{**RES, "kind": "podcast"}]}, "kind must be one of"),
        ({"resources": [{**RES, "extra": 1}]}, "exactly"),
    ],
)
def test_schema_refuses_with_a_reason(change: dict[str, Any], words: str) -> None:
    net = Net()
    b = net.bounty(0)
    body = {**terms(b), **change}
    with pytest.raises(ProtocolError) as err:
        net.emit(0, "bounty_terms", body, add=False)
    assert words in err.value.reason


def test_a_bounty_cannot_be_its_own_prerequisite() -> None:
    net = Net()
    b = net.bounty(0)
    with pytest.raises(ProtocolError, match="name the bounty itself"):
        net.emit(0, "bounty_terms", terms(b, pre=[b.id]), add=False)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_terms_are_the_same_in_any_arrival_order(seed: int) -> None:
    net = Net()
    intro, _ = posted(net)
    posted(net, 1, ppm=10, pre=[intro.id])
    net.bounty(2)
    net.emit(2, "vouch", {"account": net.pk(3)})  # too late for terms on that bounty
    bad_terms = net.emit(2, "bounty_terms", terms(net.events[-2]))
    assert net.void(bad_terms) == "terms_late"
    order = list(net.events)
    random.Random(seed).shuffle(order)
    again = Replica(net.genesis)
    for e in order:
        again.add(e)
    assert again.pending == {}
    assert again.digest() == net.replica.digest()
    assert again.state.terms == net.state.terms
