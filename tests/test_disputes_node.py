"""Disputes on real node processes (issue 12): real libp2p, real SQLite.

Five nodes (a mentor, two learners, two jurors) and a third juror key that is
trusted in the genesis but runs no node (a juror who never shows up). On one
bounty the mentor awards the weaker work and the better learner disputes the
award; on another a learner whose work lost disputes a fair award. The jurors
on their own nodes vote through the API; their nodes reveal the sealed votes
by themselves once voting closes and claim what they are owed. Every node
shows the same jurors, phases, outcomes and bond movements; the first dispute
is upheld (the bond goes back), the second rejected (the jurors who voted
share it). Disputes without standing, with too small a bond or filed twice
are refused before anything is written. Every wait is a condition with a
generous bound; the voting window is generous (the jurors' nodes must hear of
the disputes under load) but never waited out: once the votes are in, the test
moves every node's wall clock past `vote_by` (POST /api/admin/clock), the
stopped juror's node too (it starts with its clock moved).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _nodes import ApiError, Network, Node, cli, wait_for
from jsonschema import Draft202012Validator
from learnmesh.node._datadir import DataDir
from learnmesh.protocol import KeyPair

pytestmark = pytest.mark.slow

NAMES = ["mentor", "l1", "l2", "j1", "j2"]
HOSTILE = "I should have won.\x1b[2J [bold]loud[/bold] \u202e"
# the voting window: long enough for the jurors' nodes to hear and vote when loaded (the
# test moves the clocks past it; under the network's 10-minute clock skew, so one step)
VOTE_S = 300
REVEAL_S = 300  # then the reveal window, in real seconds: the jurors' nodes reveal in it


def dispute_network(root: Path) -> Network:
    """The five data directories and their genesis (also used by test_web_disputes)."""
    n = Network(
        root,
        NAMES,
        allocations={"mentor": 100_000, "l1": 2_000, "l2": 2_000, "j1": 1_000, "j2": 1_000},
    )
    # A third juror, trusted by the genesis, that runs no node: it never votes.
    absent = KeyPair(b"\x07" * 32)
    keys = [n[x].key.public_key for x in NAMES]
    n.genesis = dataclasses.replace(
        n.genesis,
        allocations=tuple(sorted((*n.genesis.allocations, (absent.public_key, 500)))),
        trusted=tuple(sorted((keys[0], keys[3], keys[4], absent.public_key))),
    )
    n.network_id = n.genesis.network_id
    for x in NAMES:  # the directories are fresh: give them this genesis instead
        (root / x / "genesis.json").unlink()
        DataDir(root / x).write_genesis(n.genesis)
    n.absent = absent  # type: ignore[attr-defined]
    return n


def start_network(net: Network) -> list[Node]:
    """Start the mentor, then the others bootstrapping from it; every node."""
    m = net["mentor"]
    m.start()
    m.wait_ready()
    others = [x for x in NAMES if x != "mentor"]
    net.start(others, bootstrap={x: [m.addr] for x in others})
    for x in others:
        net.wait_peers(x, "mentor")
    return [net[x] for x in NAMES]


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    n = dispute_network(tmp_path)
    try:
        yield n
    finally:
        n.close()


def _bounty(node: Node, bid: str) -> dict[str, Any]:
    b: dict[str, Any] = node.get(f"/api/bounties/{bid}")
    return b


def _dispute(node: Node, did: str) -> dict[str, Any]:
    d: dict[str, Any] = node.get(f"/api/disputes/{did}")
    return d


def _balance(node: Node, of: Node) -> int:
    return int(node.get(f"/api/balance/{of.account}")["balance"])


def settled_bounty(
    net: Network,
    title: str,
    winner: Node,
    nodes: list[Node],
    before_award: Callable[[str, dict[str, str]], None] | None = None,
) -> dict[str, Any]:
    """A bounty where l1 and l2 both submit and the mentor awards `winner`
    (`before_award(bounty id, submissions by account)` runs just before the award)."""
    m, l1, l2 = net["mentor"], net["l1"], net["l2"]
    bid = m.post(
        "/api/bounties",
        {"title": title, "reward": 600, "rubric": [{"name": "quality", "max": 10}]},
    )["id"]
    for n, text in ((l1, "a careful, complete answer"), (l2, "two lines")):
        wait_for(lambda n=n: _bounty(n, bid), f"{n.name} to see {title}", describe=net.describe)
        n.post("/api/submit", {"bounty": bid, "text": text})
    wait_for(lambda: _bounty(m, bid)["commits"] == 2, "both commits", describe=net.describe)
    m.post(f"/api/bounties/{bid}/close", {})
    wait_for(lambda: _bounty(m, bid)["submissions"] == 2, "both reveals", describe=net.describe)
    subs = {s["learner"]: s["id"] for s in _bounty(m, bid)["submissions_detail"]}
    if before_award is not None:
        before_award(bid, subs)
    award = m.post(f"/api/bounties/{bid}/award", {"winners": {subs[winner.account]: None}})["id"]
    for n in nodes:
        wait_for(
            lambda n=n: _bounty(n, bid)["phase"] == "awarded",
            f"{n.name} to see {title} awarded",
            describe=net.describe,
        )
    return {"id": bid, "award": award, "subs": subs}


def test_award_disputes_decided_by_jurors_on_other_nodes(net: Network, tmp_path: Path) -> None:
    nodes = start_network(net)
    m, l1, l2, j1, j2 = nodes
    absent = net.absent  # type: ignore[attr-defined]

    unfair = settled_bounty(net, "Explain consensus", l2, nodes)  # weaker work paid
    fair = settled_bounty(net, "Explain gossip", l1, nodes)  # better work paid

    # -- refused before anything is written ------------------------------------------------
    def heads() -> list[int]:  # the refusing nodes' own chains
        return [n.status()["heads"].get(n.account, 0) for n in (j1, l1, m)]

    heads_before = heads()
    with pytest.raises(ApiError) as no_standing:
        j1.post("/api/disputes", {"target": unfair["award"], "claim": "x", "bond": 20})
    assert no_standing.value.status == 403 and no_standing.value.code == "no_standing"
    with pytest.raises(ApiError) as small:
        l1.post("/api/disputes", {"target": unfair["award"], "claim": "unfair", "bond": 5})
    assert small.value.status == 400 and small.value.code == "bond_too_small"
    with pytest.raises(ApiError) as own:
        m.post("/api/disputes", {"target": unfair["award"], "claim": "mine", "bond": 20})
    assert own.value.code == "no_standing"
    assert heads() == heads_before  # nothing was written

    # -- the two disputes, filed with a short voting window -------------------------------------
    now = net.now_ms()
    window = {"vote_by": now + VOTE_S * 1000, "reveal_by": now + (VOTE_S + REVEAL_S) * 1000}
    bal_l1, bal_l2 = _balance(l1, l1), _balance(l2, l2)
    upheld = l1.post(
        "/api/disputes",
        {
            "target": unfair["award"],
            "claim": "My answer meets the rubric; the paid one is two lines.",
            "bond": 30,
            "files": [{"name": "notes.txt", "data_b64": "bm90ZXM="}],
            **window,
        },
    )
    # the frivolous one with the CLI, its claim carrying terminal escapes and markup
    filed = cli(
        "--data",
        str(l2.data),
        "--json",
        "dispute",
        "file",
        fair["id"][:12],  # a bounty (prefix): its award is meant
        "--claim",
        HOSTILE,
        "--bond",
        "30",
        "--vote-by",
        str(window["vote_by"]),
        "--reveal-by",
        str(window["reveal_by"]),
    )
    frivolous = json.loads(filed.stdout)
    assert frivolous["target"] == fair["award"] and frivolous["target_kind"] == "award"
    assert upheld["subject"] == unfair["subs"][l1.account]  # the node found the standing
    assert upheld["my_role"] == "disputant" and upheld["phase"] == "voting"
    want_jurors = {j1.account, j2.account, absent.account}
    for d in (upheld, frivolous):
        assert {j["account"] for j in d["jurors"]} == want_jurors  # the parties never sit
    with pytest.raises(ApiError) as twice:
        l1.post("/api/disputes", {"target": unfair["award"], "claim": "again", "bond": 30})
    assert twice.value.status == 409

    # -- every node sees the same jurors; the jurors vote on their own nodes ------------------
    for d in (upheld, frivolous):
        for n in nodes:
            got = wait_for(
                lambda n=n, d=d: _dispute(n, d["id"]),
                f"{n.name} to see dispute {d['id'][:8]}",
                describe=net.describe,
            )
            assert [j["account"] for j in got["jurors"]] == [j["account"] for j in d["jurors"]]
    # the evidence reaches the jurors' nodes (fetched by hash, like attachments)
    ev_hash = upheld["evidence"][0]["hash"]
    wait_for(
        lambda: _dispute(j1, upheld["id"])["evidence"][0]["have"],
        "j1's node to fetch the evidence",
        describe=net.describe,
    )
    assert j1.call("GET", f"/api/blobs/{ev_hash}") == b"notes"
    only = l1.get(f"/api/disputes?bounty={unfair['id']}")["disputes"]
    assert [d["id"] for d in only] == [upheld["id"]]
    duty = j1.get("/api/jury")
    assert {row["dispute"] for row in duty["jury"]} == {upheld["id"], frivolous["id"]}
    assert all(row["action"] == "vote" for row in duty["jury"])
    with pytest.raises(ApiError) as not_juror:
        l2.post(f"/api/disputes/{upheld['id']}/vote", {"verdict": "reject"})
    assert not_juror.value.code == "not_juror"
    for j in (j1, j2):
        j.post(f"/api/disputes/{upheld['id']}/vote", {"verdict": "uphold", "reason": "l1 is right"})
    # one juror votes with the CLI
    cli(
        "--data",
        str(j1.data),
        "dispute",
        "vote",
        frivolous["id"][:12],
        "reject",
        "--reason",
        "fair",
    )
    j2.post(f"/api/disputes/{frivolous['id']}/vote", {"verdict": "reject"})
    sealed = _dispute(l1, upheld["id"])
    assert all(j["verdict"] is None for j in sealed["jurors"])  # sealed until voting closes
    with pytest.raises(ApiError) as early:
        j1.post(f"/api/disputes/{upheld['id']}/reveal", {})
    assert early.value.code == "too_early"
    assert (j1.data / "jury" / f"{upheld['id']}.json").stat().st_mode & 0o777 == 0o600
    # j2's node is down when voting closes: its sealed votes wait in its data
    # directory, and it reveals them once it is back
    code, _ = j2.stop()
    assert code == 0
    net.advance_clock(window["vote_by"] + 2000 - net.now_ms())  # voting closes
    assert (j2.data / "clock.json").exists()  # the stopped node's clock moved too
    assert _dispute(l1, upheld["id"])["votes"]["revealed"] <= 1  # j1's at most
    j2.start(bootstrap=[m.addr])
    j2.wait_ready()
    net.wait_peers("j2", "mentor")

    # -- after vote_by the jurors' nodes reveal; the nodes claim what is owed ------------------
    def decided(n: Node) -> bool:
        a, b = _dispute(n, upheld["id"]), _dispute(n, frivolous["id"])
        return (
            a["phase"] == "upheld"
            and b["phase"] == "rejected"
            and a["escrow"] == 0
            and len(b["bond_movements"]) == 3
        )

    for n in nodes:
        wait_for(
            lambda n=n: decided(n),
            f"{n.name} to see both disputes decided and claimed",
            timeout=REVEAL_S + 60,
            describe=lambda: [_dispute(m, upheld["id"]), _dispute(m, frivolous["id"])],
        )
    net.wait_converged(NAMES)
    views = [(_dispute(n, upheld["id"]), _dispute(n, frivolous["id"])) for n in nodes]
    a, b = views[0]
    for other in views[1:]:  # the same outcome, jurors, votes and bond movements everywhere
        for mine, theirs in zip((a, b), other, strict=True):
            for k in ("phase", "outcome", "jurors", "votes", "bond_movements", "escrow"):
                assert mine[k] == theirs[k], (k, mine[k], theirs[k])
    assert a["outcome"] == "upheld" and b["outcome"] == "rejected"
    assert a["votes"]["uphold"] == 2 and b["votes"]["reject"] == 2
    assert a["bond_movements"][1:] == [
        {"kind": "claim", "to": l1.account, "amount": 30, "id": a["bond_movements"][1]["id"]}
    ]
    paid = {mv["to"]: mv["amount"] for mv in b["bond_movements"] if mv["kind"] == "claim"}
    assert paid == {j1.account: 10, j2.account: 10}
    assert b["escrow"] == 10  # the absent juror's share stays locked (still in the supply)
    absent_row = next(j for j in b["jurors"] if j["account"] == absent.account)
    assert not absent_row["committed"]
    assert _balance(m, l1) == bal_l1  # the bond came back
    assert _balance(m, l2) == bal_l2 - 30
    sup = m.get("/api/balances")
    assert sup["supply"] == sup["genesis_supply"]
    # the mentor of the overturned award: respondent, and may appeal
    mv = _dispute(m, upheld["id"])
    assert mv["my_role"] == "respondent" and mv["next_action"] == "appeal"
    assert not l1.get("/api/jury")["claims"]  # claimed by the node itself
    # the bond paid back is a payment like any other (it names no bounty)
    back = [p for p in l1.get("/api/payments")["payments"] if p["kind"] == "dispute_claim"]
    assert [(p["amount"], p["bounty"], p["direction"]) for p in back] == [(30, None, "in")]
    assert "dispute bond" in cli("--data", str(l1.data), "payments").stdout
    # an appeal: only a party appeals, and this network has no five fresh jurors
    with pytest.raises(ApiError) as outsider:
        j1.post("/api/disputes", {"appeal_of": upheld["id"], "claim": "I disagree"})
    assert outsider.value.status == 403 and outsider.value.code == "no_standing"
    with pytest.raises(ApiError) as no_jury:
        m.post("/api/disputes", {"appeal_of": upheld["id"], "claim": "The work was thin."})
    assert no_jury.value.status == 409 and no_jury.value.code == "no_jury"
    assert "too few eligible jurors" in no_jury.value.body["message"]

    # -- the CLI shows the same -------------------------------------------------------------
    shown = json.loads(
        cli("--data", str(j2.data), "--json", "dispute", "show", upheld["id"]).stdout
    )
    assert shown["phase"] == "upheld"
    listed = cli("--data", str(l1.data), "dispute", "list").stdout
    assert "upheld" in listed and "rejected" in listed
    assert "nothing waits on you" in cli("--data", str(j1.data), "jury").stdout
    human = cli("--data", str(j1.data), "dispute", "show", frivolous["id"][:10]).stdout
    assert "\x1b" not in human and "[bold]" in human  # network text printed as plain text

    # -- a node that blocks a disputant greys its disputes out (node policy only) ------------
    m.post("/api/blocks", {"account": l2.account, "reason": "frivolous"})
    rows = {d["id"]: d for d in m.get("/api/disputes")["disputes"]}
    assert rows[frivolous["id"]]["hidden"] and rows[frivolous["id"]]["hidden_by"] == "block"
    assert rows[upheld["id"]]["hidden"] is False
    assert _dispute(j1, frivolous["id"])["hidden"] is False  # j1 blocks no one

    # -- the answers match the API's description (node/_openapi.py) ------------------------
    spec = m.get("/api/openapi.json")
    for path, route in (
        (f"/api/disputes/{upheld['id']}", "/api/disputes/{did}"),
        ("/api/disputes", "/api/disputes"),
        ("/api/jury", "/api/jury"),
    ):
        for n in (m, l1, j1):
            _check_schema(spec, route, n.get(path))


def _check_schema(spec: dict[str, Any], route: str, value: Any) -> None:
    schema = spec["paths"][route]["get"]["responses"]["200"]["content"]["application/json"]
    root = {**schema["schema"], "components": spec["components"]}
    errors = sorted(Draft202012Validator(root).iter_errors(value), key=str)
    assert not errors, f"{route}: {errors[0].message} at {list(errors[0].absolute_path)}"
