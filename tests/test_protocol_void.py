"""Every void code of the fold, each fed the exact bad event that earns it, and
the replica's own refusals (bad_prev, wrong_network). A coverage test reads
the rulebook's source and fails if a code has no case here."""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Callable

import pytest
from learnmesh.protocol import Event, Params, Replica, make_event
from test_protocol_support import Net

Case = Callable[[], tuple[Net, Event]]
PROTOCOL = pathlib.Path(__file__).resolve().parent.parent / "protocol"


def _closed(net: Net, learners: tuple[int, ...] = (1,)) -> tuple[Event, list[Event], Event]:
    b = net.bounty(0)
    commits = [net.commit(w, b) for w in learners]
    return b, commits, net.close(0, b, commits)


def _revealed(net: Net) -> tuple[Event, Event]:
    b, (c,), close = _closed(net)
    return b, net.reveal(1, b, c, close)


# -- each case returns the net and the event expected void ----------------------------


def equivocation() -> tuple[Net, Event]:
    net = Net()
    w = net.writers[0]
    first = net.emit(0, "vouch", {"account": net.pk(1)})
    a = net.emit(0, "vouch", {"account": net.pk(2)})
    w.resume(1, first.id)
    net.emit(0, "vouch", {"account": net.pk(3)})  # a second seq 2: the fork
    return net, a


def void_dependency() -> tuple[Net, Event]:
    net = Net()
    b = net.bounty(0, submit_in=0)  # void: deadline
    return net, net.commit(1, b)


def insufficient_funds() -> tuple[Net, Event]:
    net = Net(each=100)
    return net, net.transfer(0, 1, 101)


def bad_claim_not_a_payment() -> tuple[Net, Event]:
    net = Net()
    v = net.emit(1, "vouch", {"account": net.pk(2)})
    return net, net.transfer(0, 1, 10, claims=[v.id])


def bad_claim_pays_someone_else() -> tuple[Net, Event]:
    net = Net()
    t = net.transfer(1, 2, 10)
    return net, net.transfer(0, 3, 10, claims=[t.id])


def double_claim() -> tuple[Net, Event]:
    net = Net(each=100)
    t = net.transfer(1, 0, 50)
    net.transfer(0, 2, 120, claims=[t.id])
    return net, net.transfer(0, 2, 10, claims=[t.id])


def unknown_bounty() -> tuple[Net, Event]:
    net = Net()
    v = net.emit(0, "vouch", {"account": net.pk(1)})
    return net, net.emit(1, "commit", {"bounty": v.id, "commitment": bytes(32)})


def deadline() -> tuple[Net, Event]:
    net = Net()
    return net, net.bounty(0, submit_in=0)


def quorum() -> tuple[Net, Event]:
    net = Net(params=Params(min_quorum=3))
    return net, net.bounty(0, quorum=2)


def own_bounty() -> tuple[Net, Event]:
    net = Net()
    b = net.bounty(0)
    return net, net.commit(0, b)


def late_commit() -> tuple[Net, Event]:
    net = Net()
    b = net.bounty(0)
    return net, net.commit(1, b, ts=b.body["submit_by"] + 1)


def late_reveal() -> tuple[Net, Event]:
    net = Net()
    b, (c,), close = _closed(net)
    return net, net.reveal(1, b, c, close, ts=b.body["review_by"] + 1)


def late_review() -> tuple[Net, Event]:
    net = Net()
    b, sub = _revealed(net)
    return net, net.review(2, b, sub, ts=b.body["review_by"] + 1)


def duplicate_commit() -> tuple[Net, Event]:
    net = Net()
    b = net.bounty(0)
    net.commit(1, b)
    return net, net.commit(1, b, text="second thoughts")


def not_mentor_close() -> tuple[Net, Event]:
    net = Net()
    b = net.bounty(0)
    c = net.commit(1, b)
    return net, net.close(2, b, [c])


def not_mentor_award() -> tuple[Net, Event]:
    net = Net()
    b, sub = _revealed(net)
    return net, net.award(2, b, [(sub, 100)])


def not_mentor_refund() -> tuple[Net, Event]:
    net = Net()
    b = net.bounty(0)
    return net, net.emit(1, "refund", {"bounty": b.id})


def phase() -> tuple[Net, Event]:
    net = Net()
    b, (c,), _ = _closed(net)
    return net, net.close(0, b, [c])


def bad_commit_close() -> tuple[Net, Event]:
    net = Net()
    b1, b2 = net.bounty(0), net.bounty(0)
    c = net.commit(1, b2)
    return net, net.close(0, b1, [c])


def bad_commit_reveal_other_bounty() -> tuple[Net, Event]:
    net = Net()
    b, (c,), close = _closed(net)
    other = net.bounty(0)
    body = {**net.reveal(1, b, c, close, ts=None).body}  # valid one, then a twin naming `other`
    body["bounty"] = other.id
    return net, net.emit(1, "reveal", body)


def bad_commit_reveal_not_a_commit() -> tuple[Net, Event]:
    net = Net()
    b, (c,), close = _closed(net)
    v = net.emit(1, "vouch", {"account": net.pk(2)})
    body = {**net.reveal(1, b, c, close).body, "commit": v.id}
    return net, net.emit(1, "reveal", body)


def not_learner() -> tuple[Net, Event]:
    net = Net()
    b, (c,), close = _closed(net)
    return net, net.reveal(2, b, c, close, text="answer of 1", salt=bytes([1]) * 16)


def bad_close() -> tuple[Net, Event]:
    net = Net()
    b, (c,), _ = _closed(net)
    _b2, _, close2 = _closed(net, learners=(2,))
    return net, net.reveal(1, b, c, close2)


def not_accepted() -> tuple[Net, Event]:
    net = Net()
    b = net.bounty(0)
    c1, c2 = net.commit(1, b), net.commit(2, b)
    close = net.close(0, b, [c1])
    return net, net.reveal(2, b, c2, close)


def duplicate_reveal() -> tuple[Net, Event]:
    net = Net()
    b, (c,), close = _closed(net)
    net.reveal(1, b, c, close)
    return net, net.reveal(1, b, c, close)


def commitment_mismatch() -> tuple[Net, Event]:
    net = Net()
    b, (c,), close = _closed(net)
    return net, net.reveal(1, b, c, close, text="a better answer, written after the deadline")


def bad_submission_review() -> tuple[Net, Event]:
    net = Net()
    _b, sub = _revealed(net)
    other = net.bounty(0)
    body = {"bounty": other.id, "submission": sub.id, "scores": [1, 1], "comment": ""}
    return net, net.emit(2, "review", body)


def bad_submission_award() -> tuple[Net, Event]:
    net = Net()
    b, (c,), _ = _closed(net)
    body = {"bounty": b.id, "winners": [{"submission": c.id, "amount": 10}], "reviewers": []}
    return net, net.emit(0, "award", body)


def self_review() -> tuple[Net, Event]:
    net = Net()
    b, sub = _revealed(net)
    return net, net.review(1, b, sub)


def mentor_review() -> tuple[Net, Event]:
    net = Net()
    b, sub = _revealed(net)
    return net, net.review(0, b, sub)


def duplicate_review() -> tuple[Net, Event]:
    net = Net()
    b, sub = _revealed(net)
    net.review(2, b, sub)
    return net, net.review(2, b, sub, scores=[1, 1])


def bad_scores_count() -> tuple[Net, Event]:
    net = Net()
    b, sub = _revealed(net)
    return net, net.review(2, b, sub, scores=[5])


def bad_scores_over_max() -> tuple[Net, Event]:
    net = Net()
    b, sub = _revealed(net)
    return net, net.review(2, b, sub, scores=[11, 5])


def settled_award_twice() -> tuple[Net, Event]:
    net = Net()
    b, sub = _revealed(net)
    net.award(0, b, [(sub, 100)])
    return net, net.award(0, b, [(sub, 100)])


def settled_refund_after_award() -> tuple[Net, Event]:
    net = Net()
    b, sub = _revealed(net)
    net.award(0, b, [(sub, 100)])
    return net, net.emit(0, "refund", {"bounty": b.id})


def bad_review_other_bounty() -> tuple[Net, Event]:
    net = Net()
    lc = net.lifecycle(award=False)
    b2, sub2 = _revealed(net)
    return net, net.award(0, b2, [(sub2, 100)], [(lc.reviews[0], 10)])


def bad_review_not_a_review() -> tuple[Net, Event]:
    net = Net()
    b, sub = _revealed(net)
    body = {"bounty": b.id, "winners": [], "reviewers": [{"review": sub.id, "amount": 1}]}
    return net, net.emit(0, "award", body)


def over_escrow() -> tuple[Net, Event]:
    net = Net()
    b, sub = _revealed(net)
    return net, net.award(0, b, [(sub, b.body["reward"] + 1)])


def over_share() -> tuple[Net, Event]:
    net = Net()
    b, sub = _revealed(net)
    r = net.review(2, b, sub)
    share = b.body["reward"] * b.body["reviewer_share_bp"] // 10000
    return net, net.award(0, b, [(sub, 100)], [(r, share + 1)])


VOID_CASES: dict[str, list[Case]] = {
    "equivocation": [equivocation],
    "void_dependency": [void_dependency],
    "insufficient_funds": [insufficient_funds],
    "bad_claim": [bad_claim_not_a_payment, bad_claim_pays_someone_else],
    "double_claim": [double_claim],
    "unknown_bounty": [unknown_bounty],
    "deadline": [deadline],
    "quorum": [quorum],
    "own_bounty": [own_bounty],
    "late": [late_commit, late_reveal, late_review],
    "duplicate_commit": [duplicate_commit],
    "not_mentor": [not_mentor_close, not_mentor_award, not_mentor_refund],
    "phase": [phase],
    "bad_commit": [
        bad_commit_close,
        bad_commit_reveal_other_bounty,
        bad_commit_reveal_not_a_commit,
    ],
    "not_learner": [not_learner],
    "bad_close": [bad_close],
    "not_accepted": [not_accepted],
    "duplicate_reveal": [duplicate_reveal],
    "commitment_mismatch": [commitment_mismatch],
    "bad_submission": [bad_submission_review, bad_submission_award],
    "self_review": [self_review],
    "mentor_review": [mentor_review],
    "duplicate_review": [duplicate_review],
    "bad_scores": [bad_scores_count, bad_scores_over_max],
    "settled": [settled_award_twice, settled_refund_after_award],
    "bad_review": [bad_review_other_bounty, bad_review_not_a_review],
    "over_escrow": [over_escrow],
    "over_share": [over_share],
}

_ALL = [(code, case) for code, cases in VOID_CASES.items() for case in cases]


@pytest.mark.parametrize(("code", "case"), _ALL, ids=[c.__name__ for _, c in _ALL])
def test_void_code(code: str, case: Case) -> None:
    net, ev = case()
    assert net.void(ev) == code, net.state.void.get(ev.id)
    # Only the bad event is void (equivocation voids both branches of the fork).
    others = {i for i in net.state.void if i != ev.id}
    if code == "equivocation":
        assert len(others) == 1
    elif code == "void_dependency":
        assert len(others) == 1  # the void bounty it depends on
    else:
        assert others == set(), [net.state.void[i] for i in others]
    assert net.state.check_invariants() == []
    # The same set in reverse arrival order voids the same events with the same codes.
    again = Replica(net.genesis)
    for e in reversed(net.events):
        again.add(e)
    assert again.pending == {}
    assert again.digest() == net.replica.digest()
    assert again.state.void == net.state.void


def test_void_event_has_no_effect_on_balances() -> None:
    net, ev = insufficient_funds()
    assert net.state.balance(net.pk(0)) == 100
    assert net.state.balance(net.pk(1)) == 100
    assert ev.id not in net.state.credits


def test_void_award_pays_nothing() -> None:
    net, ev = over_escrow()
    b = net.state.bounties[ev.body["bounty"]]
    assert b.phase == "closed"
    assert b.escrow == b.reward
    assert net.state.balance(net.pk(1)) == 100_000


def test_would_void_agrees_with_apply() -> None:
    for code, cases in VOID_CASES.items():
        if code == "equivocation":
            continue  # a fork is a replica-level fact, not a dry-run rule
        net, ev = cases[0]()
        dry = Replica(net.genesis)
        for e in net.events:
            if e.id == ev.id:
                assert dry.state.would_void(e) is not None
                assert dry.state.would_void(e)[0] == code  # type: ignore[index]
                break
            dry.add(e)


# -- the replica's refusals --------------------------------------------------------------


def test_bad_prev_is_rejected() -> None:
    net = Net()
    other = net.emit(1, "vouch", {"account": net.pk(2)})
    first = net.emit(0, "vouch", {"account": net.pk(1)})
    # seq 2 whose prev is another author's event
    bad = make_event(
        net.keys[0], net.network, 2, other.id, net.now, "vouch", {"account": net.pk(3)}
    )
    out = net.replica.add(bad)
    assert out.status == "rejected"
    assert out.rejected[bad.id][0] == "bad_prev"
    assert not net.replica.has(bad.id)
    # seq 3 whose prev is the author's seq 1, not its seq 2
    net.emit(0, "vouch", {"account": net.pk(2)})
    bad3 = make_event(
        net.keys[0],
        net.network,
        3,
        first.id,
        net.now,
        "profile",
        {"name": "x", "bio": "", "skills": []},
    )
    assert net.replica.add(bad3).rejected[bad3.id][0] == "bad_prev"
    # asking again gives the same answer
    assert net.replica.add(bad3).status == "rejected"


def test_wrong_network_is_rejected_by_the_replica() -> None:
    net = Net()
    elsewhere = Net(n=2, each=7)  # same keys, different genesis: another network
    ev = elsewhere.emit(0, "vouch", {"account": elsewhere.pk(1)})
    out = net.replica.add(ev)
    assert out.status == "rejected"
    assert out.rejected[ev.id][0] == "wrong_network"
    assert net.replica.state.event_count == 0


# -- coverage: every code in the source has a case ----------------------------------------


def _codes(path: pathlib.Path, func: str, arg: int) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == func
            and len(node.args) > arg
            and isinstance(node.args[arg], ast.Constant)
        ):
            out.add(node.args[arg].value)
    return out


def test_every_void_code_in_the_rulebook_has_a_case() -> None:
    state = PROTOCOL / "_state.py"
    codes = _codes(state, "_rule", 1) | _codes(state, "_Void", 0)
    assert len(codes) >= 28
    assert codes - set(VOID_CASES) == set()
    assert set(VOID_CASES) - codes == set(), "a case for a code the source no longer has"


def test_every_replica_rejection_has_a_case() -> None:
    tree = ast.parse((PROTOCOL / "_replica.py").read_text())
    codes = {
        n.elts[0].value
        for n in ast.walk(tree)
        if isinstance(n, ast.Tuple)
        and len(n.elts) == 2
        and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in n.elts)
        and " " in n.elts[1].value  # (code, reason a person reads)
    }
    assert codes == {"bad_prev", "wrong_network"}


def test_review_of_unknown_bounty_is_void_the_same_in_any_order() -> None:
    """A review's `bounty` field is not a ref: naming a bounty the reviewer's
    node has not seen yet must give the same void code as one it has."""
    net = Net()
    _b, sub = _revealed(net)
    later = Net()
    later_events = list(net.events)
    other = net.bounty(5)
    body = {"bounty": other.id, "submission": sub.id, "scores": [1, 1], "comment": ""}
    rv = net.emit(2, "review", body, refs=[sub.id])
    assert net.void(rv) == "bad_submission"
    for e in later_events:
        later.replica.add(e)
    later.replica.add(rv)  # `other` not here yet
    assert later.void(rv) == "bad_submission"
    later.replica.add(other)
    assert later.replica.digest() == net.replica.digest()
    assert later.state.void == net.state.void
