"""`learnmesh bench core`: the node service in process. It checks its own work
(every gossiped event applied, the caught-up ledger equal to the source); this
runs it small, through the CLI, for its JSON."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_core_runs_and_reports_its_figures() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "learnmesh.node.cli", "bench", "core", "--events", "1200",
         "--authors", "4", "--batch", "25", "--json"],
        capture_output=True, text=True, timeout=300, check=True,
    )
    r = json.loads(out.stdout)
    assert r["events"] == 1200
    # heads, one page for each 300-event chain (pages hold 500), forks
    assert r["catch_up_requests"] == 1 + 4 + 1
    assert r["verify_per_s_one_core"] > 0
    assert 0 < r["gossip_in_batch25_cpu_ms_per_event"] < r["gossip_in_cpu_ms_per_event"] * 2
    assert r["catch_up_events_per_s"] > 0


def test_bench_core_refuses_nonsense_with_a_sentence() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "learnmesh.node.cli", "bench", "core", "--events", "0"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2
    assert "at least 1" in out.stdout and "Traceback" not in out.stderr
