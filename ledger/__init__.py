"""learnmesh ledger: append-only event store, derived state, blobs, replay and verify."""
