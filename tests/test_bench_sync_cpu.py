"""bench sync's CPU split of a catch-up (devnet/_bench._catch_up_cpu)."""

from __future__ import annotations

import os

import pytest
from learnmesh.devnet._bench import _catch_up_cpu


def test_catch_up_cpu_splits_startup_own_work_and_the_other_nodes() -> None:
    # 10,000 events; ready after 1.2 s (0.9 s of CPU), caught up 1.0 s later
    # having used 0.8 s more itself while the other nodes used 0.3 s.
    c = _catch_up_cpu(10_000, 1.2, 1.0, 0.9, 1.7, 0.3)
    cores = os.cpu_count() or 1
    assert c["late_node_startup_cpu_s"] == 0.9
    assert c["late_node_after_ready_cpu_s"] == pytest.approx(0.8)
    assert c["late_node_us_per_event"] == pytest.approx(80.0)
    assert c["other_nodes_us_per_event"] == pytest.approx(30.0)
    assert c["cores_busy_startup"] == pytest.approx(0.75)
    assert c["cores_busy_after_ready"] == pytest.approx(round(1.1 / cores, 2))
    assert c["cores"] == cores


def test_catch_up_cpu_never_divides_by_zero_or_goes_negative() -> None:
    c = _catch_up_cpu(0, 0.0, 0.0, 1.0, 0.5, 0.0)
    assert c["late_node_after_ready_cpu_s"] == 0.0
    assert c["late_node_us_per_event"] == 0.0
