"""Helper for the kill test: appends Workload batches to a ledger and prints each
acknowledged event id (hex) on stdout, flushed, only after `append` returned.
With a fourth argument `peer`, appends as events from peers (`append_events`
with durable=False: no disk flush per commit)."""

from __future__ import annotations

import sys

from learnmesh.ledger import Ledger
from learnmesh.protocol import Event
from learnmesh.protocol._workload import Workload


def main() -> None:
    db, seed, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    peer = sys.argv[4:] == ["peer"]
    w = Workload(seed=seed)
    # Frequent snapshots, so the kill can also land in the middle of writing one.
    ledger = Ledger.open(db, w.genesis, snapshot_every=150)
    batch: list[Event] = []
    for ev in w.events(total):
        batch.append(ev)
        if len(batch) == 25:
            if peer:
                results = ledger.append_events(batch, durable=False)
            else:
                results = ledger.append([e.raw for e in batch])
            assert all(r.status == "applied" for r in results), results
            sys.stdout.write("".join(r.id.hex() + "\n" for r in results))
            sys.stdout.flush()
            batch = []
    print("done", flush=True)


if __name__ == "__main__":
    main()
