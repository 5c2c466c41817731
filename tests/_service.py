"""An in-process node service (no process, no devnet) for tests of the node's
logic and API: its ledger and blob store in `data`, a fresh libp2p identity."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from learnmesh.ledger import BlobStore, Ledger
from learnmesh.node._service import Node, NodeSettings
from learnmesh.protocol import Genesis, KeyPair


def service_node(
    data: Path,
    key: KeyPair,
    genesis: Genesis,
    *,
    settings: NodeSettings | None = None,
    max_blob_bytes: int | None = None,
    **options: Any,
) -> Node:
    """A node service on `data` (made if missing); `options` go to `Node`
    (clock, monotonic). The caller closes `node.ledger`."""
    data.mkdir(parents=True, exist_ok=True)
    blobs = (
        BlobStore(data / "blobs")
        if max_blob_bytes is None
        else BlobStore(data / "blobs", max_bytes=max_blob_bytes)
    )
    return Node(
        data_dir=data,
        key=key,
        p2p_seed=os.urandom(32),
        genesis=genesis,
        ledger=Ledger.open(str(data / "ledger.db"), genesis),
        blobs=blobs,
        settings=settings if settings is not None else NodeSettings(),
        **options,
    )
