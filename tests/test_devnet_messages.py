"""The devnet classroom's private feedback (devnet/_scenarios.py, private_feedback):
every message arrives, including at a node that was stopped when it was sent,
and no other node's data directory or log holds any message's text (while both
ends do, so the search is shown to find it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from learnmesh.devnet._scenarios import RunOptions, run_devnet

pytestmark = pytest.mark.slow


def test_classroom_private_feedback_reaches_an_offline_node_and_leaks_nowhere(
    tmp_path: Path,
) -> None:
    report = run_devnet(RunOptions(nodes=5, scenario="classroom", seed=5, dir=tmp_path / "net"))
    assert report["converged"], report["digests"]
    assert report["dms_sent"] >= 2, report
    assert report["dms_delivered"] == report["dms_sent"], report
    assert report["dms_to_offline_node"] >= 1, report
    assert report["dms_delivered_to_offline_node"] == report["dms_to_offline_node"], report
    assert report["dm_plaintext_found_elsewhere"] == 0, report
    assert report["dm_plaintext_found_at_both_ends"] == report["dms_sent"], report
