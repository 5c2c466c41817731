"""`learnmesh bench soak` on real node processes: a short run with one kill and
one partition loses no acknowledged event and reports what it promises; bad
arguments are one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _nodes import cli

pytestmark = pytest.mark.slow


def test_bad_arguments_are_refused_with_one_line() -> None:
    r = cli("bench", "soak", "--nodes", "1", check=False)
    assert r.returncode == 2, r
    assert "--nodes ≥ 2" in r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr


def test_a_short_soak_loses_nothing_through_a_kill_and_a_partition(tmp_path: Path) -> None:
    r = cli(
        "--json",
        "bench",
        "soak",
        "--nodes",
        "3",
        "--minutes",
        "0.75",
        "--rate",
        "5",
        "--fault-every",
        "15",
        "--down",
        "3",
        "--dir",
        str(tmp_path / "soak"),
        timeout=600,
    )
    out = json.loads(r.stdout)
    kinds = [f["kind"] for f in out["faults"]]
    assert kinds[:2] == ["kill", "partition"], out["faults"]
    assert all(f["converged_s"] is not None for f in out["faults"]), out["faults"]
    assert out["events_acknowledged"] > 50, out
    assert out["events_lost"] == 0, out
    samples = out["samples"]
    assert len(samples) >= 3 and all(s["rss_mb_median"] and s["fds_median"] for s in samples)
