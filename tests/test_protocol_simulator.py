"""The in-process simulator: replicas converge under loss, duplication,
reordering, partitions that heal and forks, and a seed fixes every byte."""

from __future__ import annotations

import os
import subprocess
import sys

from learnmesh.protocol._simulator import Partition, SimReport, Simulation


def _check(r: SimReport) -> None:
    assert r.converged, r
    assert all(d == r.expected for d in r.digests)
    assert r.pending == (0,) * r.nodes


def test_converges_without_faults() -> None:
    r = Simulation(1, nodes=4).run(events=80)
    _check(r)
    assert r.dropped == 0 and r.duplicated == 0
    assert r.events == 80


def test_converges_under_30_percent_loss() -> None:
    r = Simulation(2, nodes=6, loss_pm=300).run(events=120)
    _check(r)
    assert 0.2 < r.dropped / r.sent < 0.4


def test_converges_under_duplication_and_reordering() -> None:
    r = Simulation(3, nodes=5, loss_pm=100, dup_pm=300, max_delay=20).run(events=120)
    _check(r)
    assert r.duplicated > 0.2 * (r.sent - r.dropped)


def test_converges_after_a_partition_heals() -> None:
    r = Simulation(4, nodes=6, loss_pm=200, partitions=[(5, 200, [0, 1, 2])]).run(events=120)
    _check(r)
    assert r.steps >= 200


def test_a_partition_that_never_heals_does_not_converge() -> None:
    sim = Simulation(4, nodes=4, partitions=[(0, 10**6, [0, 1])])
    r = sim.run(events=60, max_steps=400)
    assert not r.converged
    side_a = {r.digests[0], r.digests[1]}
    side_b = {r.digests[2], r.digests[3]}
    assert len(side_a) == 1 and len(side_b) == 1 and side_a != side_b  # each side agrees


def test_equivocating_authors_are_detected_by_every_node() -> None:
    r = Simulation(5, nodes=5, loss_pm=200, dup_pm=50, equivocations=2).run(events=100)
    _check(r)
    assert r.forks == (2,) * r.nodes


def test_a_seeded_run_is_reproducible() -> None:
    kw = dict(
        nodes=5,
        loss_pm=250,
        dup_pm=100,
        max_delay=9,
        partitions=[Partition(3, 60, frozenset({1, 3}))],
    )
    a = Simulation(6, **kw).run(events=70)  # type: ignore[arg-type]
    b = Simulation(6, **kw).run(events=70)  # type: ignore[arg-type]
    assert a == b
    c = Simulation(7, **kw).run(events=70)  # type: ignore[arg-type]
    assert (c.sent, c.dropped, c.expected) != (a.sent, a.dropped, a.expected)


_SNIPPET = (
    "from learnmesh.protocol._simulator import Simulation;"
    "r = Simulation(8, nodes=4, loss_pm=300, dup_pm=100, equivocations=1).run(events=50);"
    "print(r.converged, r.steps, r.sent, r.dropped, r.duplicated, r.expected.hex())"
)


def test_reproducible_across_processes_and_hash_seeds() -> None:
    """Set iteration order changes with PYTHONHASHSEED: the report must not."""
    outs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", _SNIPPET], env=env, capture_output=True, text=True, check=True
        )
        outs.add(out.stdout)
    assert len(outs) == 1
    assert outs.pop().startswith("True ")
