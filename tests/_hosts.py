"""In-process libp2p hosts for tests of the p2p layer (no node, no ledger)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import trio
from learnmesh.node._p2p import P2PConfig, P2PHost

WAIT = 30  # generous bound for any condition on a loaded 2-core machine


def accept_all(_peer: str, _data: bytes) -> bool:
    return True


async def wait_for(cond: Callable[[], bool], what: str) -> None:
    """Wait until `cond()` holds (checked every 50 ms), at most WAIT seconds."""
    with trio.fail_after(WAIT):
        while not cond():
            await trio.sleep(0.05)


@asynccontextmanager
async def hosts(n: int, **overrides: Any) -> AsyncIterator[list[P2PHost]]:
    """`n` hosts with fresh identities, closed together."""
    async with AsyncExitStack() as stack:
        out = []
        for _ in range(n):
            cfg = P2PConfig(identity_seed=os.urandom(32), **overrides)
            out.append(await stack.enter_async_context(P2PHost.open(cfg)))
        yield out
