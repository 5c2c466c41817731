"""`learnmesh devnet run --scenario disputes`, small (CI): five node processes,
a juror without a node, three disputes decided by juries drawn from the
network, and the moderation step. Generous bounds: the run waits on
conditions, never on sleeps, and never for the voting window to run out: once
the votes are in, it moves every node's clock past it (POST /api/admin/clock).

The moderation step (devnet/_scenario_moderation.py) is checked here in full on
the scenario's five nodes: it had a 4-node devnet of its own
(tests/test_devnet_moderation.py) that ran the same function to the same checks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from learnmesh.devnet._cluster import DevnetError
from learnmesh.devnet._scenarios import RunOptions, run_devnet

pytestmark = pytest.mark.slow


def test_too_few_nodes_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DevnetError, match="at least 5 nodes"):
        run_devnet(RunOptions(nodes=4, scenario="disputes", dir=tmp_path / "net"))


def test_disputes_scenario(tmp_path: Path) -> None:
    report = run_devnet(
        RunOptions(
            nodes=5,
            scenario="disputes",
            seed=3,
            dir=tmp_path / "net",
            report=tmp_path / "report.json",
        )
    )
    assert report["converged"], report["digests"]
    assert report["supply_conserved"]
    assert report["bounties_final"]
    assert json.loads((tmp_path / "report.json").read_text())["scenario"] == "disputes"
    got = {d["dispute"]: d for d in report["disputes"]}
    assert set(got) == {"unfair award", "frivolous dispute", "careless review"}
    assert got["unfair award"]["outcome"] == "upheld"
    assert got["frivolous dispute"]["outcome"] == "rejected"
    assert got["careless review"]["outcome"] == "upheld"
    assert got["careless review"]["target_kind"] == "review"
    for d in report["disputes"]:
        assert d["as_expected"] and d["panel_fair"], d
        assert d["jurors_equal_on_nodes"] and d["agreed_on_nodes"], d
        assert d["nodes_checked"] == report["live_nodes"] == 5
        assert len(d["jurors"]) == 3
        assert d["disputant"] not in d["jurors"] and d["respondent"] not in d["jurors"]
    # the bonds: back to the upheld disputants, shared by the rejecting jurors
    up = got["unfair award"]["bond_movements"]
    assert up[0]["kind"] == "bond" and up[1:] == [
        {"kind": "claim", "account": got["unfair award"]["disputant"], "amount": 30}
    ]
    rej = got["frivolous dispute"]
    shares = [m for m in rej["bond_movements"] if m["kind"] == "claim"]
    assert len(shares) == 2 and all(m["amount"] == 10 for m in shares), shares
    assert rej["bond_still_locked"] == 10  # the absent juror's share
    assert report["absent_juror"] is not None  # 5 nodes: one trusted juror runs none
    assert all(r["refused"] for r in report["refused"]), report["refused"]
    # the outcomes in the fold: the overturned mentor and the careless reviewer lose
    # points, jurors who voted with a decided majority gain, the absent one loses
    pts = report["points_changed_by_disputes"]
    assert pts["n00 (mentor)"]["change"] == -5, pts
    assert pts["absent juror (no node)"]["change"] == -3, pts
    # the moderation step: a spammer (the last node) flagged by the two members the
    # genesis trusts most, hidden everywhere alike, blocked by a neighbour that
    # stops relaying it while every node still gets its posts
    r = report["moderation"]
    assert r["error"] is None, r
    assert r["spammer"] == "n04"
    assert set(r["flaggers"]) == {"n00", "n03"}  # the mentor and a member: trusted
    assert r["blocker"] not in (r["spammer"], *r["flaggers"])
    assert len(r["spam_bounties"]) == 3 and len(r["spam_after_block"]) == 2
    assert r["spam_hidden_on_nodes"] == r["live_nodes"] == 5
    assert r["hidden_agreed"] and "of all trust" in r["hidden_why"]
    assert r["spam_reached_all"] and r["blocked_hidden_on_blocker"]
    assert r["blocked_relay_stopped"] and r["relay_blocked_events"] >= 1
    assert r["converged"] and r["ok"], r
    # Nothing is left running.
    assert not (tmp_path / "net" / "devnet.json").exists()
    for d in (tmp_path / "net").glob("n*"):
        assert not (d / "node.json").exists()
