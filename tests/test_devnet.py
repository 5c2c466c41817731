"""The devnet: report math without nodes, then real multi-process runs.

The slow tests start 5 node processes each and drive whole scenarios through
the nodes' APIs; they wait on conditions with generous bounds, never sleeps.
The classroom run with faults also carries the private-feedback checks (once a
devnet of their own, tests/test_devnet_messages.py: the same scenario, the same
step, so one run of five processes checks both).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from learnmesh.devnet._cluster import _account_in, sparse_topology
from learnmesh.devnet._report import (
    percentiles,
    propagation,
    resources,
    summary_table,
    supply_check,
)
from learnmesh.devnet._scenarios import RunOptions, run_devnet
from rich.console import Console

# -- report math ---------------------------------------------------------------------------


def test_percentiles_interpolate_like_numpy() -> None:
    xs = [float(x) for x in range(1, 101)]
    p = percentiles(xs)
    assert p["p50"] == 50.5
    assert p["p95"] == pytest.approx(95.05, abs=0.06)
    assert p["max"] == 100.0
    assert percentiles([]) == {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    assert percentiles([7.0])["p99"] == 7.0


def test_propagation_is_time_until_every_node_applied() -> None:
    applied = {
        "a": [["e1", 1000, 1000], ["e2", 2000, 2050]],
        "b": [["e1", 1000, 1100], ["e2", 2000, 2010]],
        "c": [["e1", 1000, 1300]],  # e2 never reached c
    }
    p = propagation(applied)
    assert p["events"] == 2
    assert p["delivered"] == 1
    assert p["delivery"] == 0.5
    assert p["max"] == 300.0  # e1 reached the last node after 300 ms
    assert p["per_delivery"]["max"] == 300.0
    # Only the nodes asked about count, and events before the window are ignored.
    q = propagation(applied, ["a", "b"], created_after_ms=1500)
    assert q["events"] == 1 and q["delivery"] == 1.0 and q["p50"] == 50.0


def test_propagation_until_arrival_reads_the_fourth_column_where_there_is_one() -> None:
    # [id, created, applied, arrived]; the baseline's rows have no fourth column
    applied = {
        "a": [["e1", 1000, 1000, 1000]],
        "b": [["e1", 1000, 1100, 1040]],
        "c": [["e1", 1000, 1300]],
    }
    assert propagation(applied)["max"] == 300.0
    arrival = propagation(applied, ["a", "b"], column=3)
    assert arrival["max"] == 40.0 and arrival["per_delivery"]["max"] == 40.0
    assert propagation(applied, column=3)["max"] == 300.0  # c: its applied time


def test_propagation_counts_a_restarted_nodes_first_application() -> None:
    applied = {"a": [["e", 0, 10]], "b": [["e", 0, 40], ["e", 0, 900]]}
    assert propagation(applied)["max"] == 40.0


def test_supply_check() -> None:
    ok = {"balances": {"x": 60, "y": 30}, "escrow": 10, "supply": 100, "genesis_supply": 100}
    assert supply_check(ok)
    assert not supply_check({**ok, "escrow": 11})
    assert not supply_check({**ok, "supply": 101})


def test_resources_median_of_last_samples() -> None:
    r = resources({"a": [50.0, 80.0], "b": [90.0, 70.0], "c": []}, {"a": 1.234, "b": 2.0})
    assert r["rss_mb"]["max"] == 90.0
    assert r["rss_mb"]["median"] == 75.0
    assert r["cpu_s"] == {"a": 1.23, "b": 2.0}


def test_summary_shows_the_verdict_after_the_attacks() -> None:

    adv = {
        "attacks": [{"attack": "flood"}],
        "converged_after_last_attack_s": 12.5,
        "fork_sets_equal": True,
        "future_entrances_agree": False,
    }
    console = Console(width=200, record=True)
    console.print(summary_table({"scenario": "adversarial", "adversary": adv}))
    rows = {
        cells[1].strip(): cells[2].strip()
        for line in console.export_text().splitlines()
        if len(cells := line.split("│")) == 4
    }
    assert rows["one digest after the last attack"] == "12.5 s (OVER 10 s)"
    assert rows["fork sets equal after the attacks"] == "yes"
    assert rows["future timestamps: entrances agree"] == "NO"


def test_sparse_topology_is_connected_and_sparse() -> None:
    for n in (2, 5, 20, 30):
        topo = sparse_topology(n, random.Random(n))
        assert topo[0] == []
        for i in range(1, n):
            assert 1 <= len(topo[i]) <= 3
            assert all(p < i for p in topo[i])
        # every node reaches node 0 through earlier nodes: connected
        assert sum(len(v) for v in topo.values()) <= 3 * n
    assert sparse_topology(10, random.Random(3)) == sparse_topology(10, random.Random(3))


def test_account_is_found_in_cli_output() -> None:
    acct = "lm" + "a" * 56
    assert _account_in(f'{{"account": "{acct}"}}') == acct
    assert _account_in(f"created identity {acct} in /tmp/x\n") == acct
    assert _account_in("nothing here") is None


# -- real node processes -------------------------------------------------------------------


def _check_common(report: dict[str, Any]) -> None:
    assert report["converged"], report
    assert report["heads_equal"], report
    assert len(set(report["digests"].values())) == 1
    assert report["supply_conserved"]
    assert report["bounties_final"], report["bounties"]
    assert report["bounties"].get("awarded", 0) >= 1
    assert report["bounties"].get("refunded", 0) >= 1
    assert report["propagation_ms"]["events"] > 0
    assert report["rss_mb"]["max"] > 0
    # Every awarded learner holds an Open Badges credential that verifies offline.
    creds = report["credentials"]
    assert creds["issued"] >= 1 and creds["verified_offline"] == creds["issued"], creds


@pytest.mark.slow
def test_classroom_with_faults(tmp_path: Path) -> None:
    report = run_devnet(
        RunOptions(
            nodes=5,
            scenario="classroom",
            faults=True,
            seed=7,
            dir=tmp_path / "net",
            report=tmp_path / "report.json",
        )
    )
    _check_common(report)
    kinds = sorted(f["kind"] for f in report["faults"])
    assert kinds == ["kill", "partition", "pause"]
    assert all(f["survived"] for f in report["faults"]), report["faults"]
    assert report["catch_up_after_restart_s"] is not None
    assert report["convergence_after_heal_s"] is not None
    # Private feedback (devnet/_scenarios.py, private_feedback): every message
    # arrives, including at a node that was stopped when it was sent, and no other
    # node's data directory or log holds any message's text (while both ends do,
    # so the search is shown to find it).
    assert report["dms_sent"] >= 2, report
    assert report["dms_delivered"] == report["dms_sent"], report
    assert report["dms_to_offline_node"] >= 1, report
    assert report["dms_delivered_to_offline_node"] == report["dms_to_offline_node"], report
    assert report["dm_plaintext_found_elsewhere"] == 0, report
    assert report["dm_plaintext_found_at_both_ends"] == report["dms_sent"], report
    assert (tmp_path / "report.json").exists()
    # Nothing is left running.
    assert not (tmp_path / "net" / "devnet.json").exists()
    for d in (tmp_path / "net").glob("n*"):
        assert not (d / "node.json").exists()


@pytest.mark.slow
def test_adversarial_every_honest_node_detects_the_equivocation(tmp_path: Path) -> None:
    report = run_devnet(
        RunOptions(nodes=5, scenario="adversarial", seed=11, dir=tmp_path / "net", flood=100)
    )
    _check_common(report)
    adv = report["adversary"]
    assert report["equivocations_detected"] == report["honest_nodes"] == 5
    assert adv["malformed_refused"] == adv["malformed_sent"]
    assert adv["overspend_no_effect"], adv["overspend"]
    assert adv["flood_accepted"] == adv["flood_events"]
    # The hostile inputs of issue 9: one digest and one fork set on every node
    # after the last attack (the report gives the seconds; the bound here is the
    # run's convergence timeout, for a loaded machine), whatever the entrance.
    kinds = [a["attack"] for a in adv["attacks"]]
    for kind in ("future timestamps", "bad_prev by gossip", "peer churn", "flood"):
        assert kind in kinds, kinds
    assert "fork with bad_prev evidence" in kinds
    assert adv["converged_after_last_attack_s"] is not None, adv["digests_after_attacks"]
    assert adv["fork_sets_equal"], adv["fork_sets"]
    assert report["fork_sets_equal"], report["fork_sets"]
    assert adv["future_entrances_agree"], adv["future_fates"]
    assert adv["bad_prev_fork_detected"] == report["honest_nodes"], adv["fork_sets"]
    assert adv["churn_peers_dropped_after_s"] is not None, adv["churn_peers_listed_at_end"]
    # Issue 11: trust is the same view on every node, and a ring that farmed
    # three self-awarded bounties gains points but next to no trust.
    trust = report["trust"]
    assert trust["trust_digests_equal"], trust["trust_digests"]
    assert len(trust["trust_digests"]) == report["live_nodes"]
    assert trust["ring_points_share"] > 0.05, trust
    assert trust["ring_trust_share"] <= 0.01, trust
