"""A sync page decoded by the runtime (the loop decodes, worker threads check
the signatures) gives exactly what the service's one-thread decode gives:
the same events, and the same refusals with the same reasons, in order."""

from __future__ import annotations

import random
from pathlib import Path

import msgpack
import pytest
from learnmesh.ledger import BlobStore, Ledger
from learnmesh.node._core import CoreSettings, NodeCore, Now
from learnmesh.node._runtime import _PREVALIDATE_BYTES, Runtime
from learnmesh.node._wire import encode_gossip
from learnmesh.protocol import ChainWriter, Genesis, KeyPair

T0 = 1_800_000_000_000
KEYS = [KeyPair(bytes([i + 1]) * 32) for i in range(3)]
GENESIS = Genesis(
    name="rt", created_ms=T0 - 3_600_000, allocations=tuple((k.public_key, 10) for k in KEYS)
)
OTHER = Genesis(name="elsewhere", created_ms=T0 - 3_600_000, allocations=GENESIS.allocations)


def _runtime(tmp_path: Path) -> Runtime:
    core = NodeCore(
        genesis=GENESIS,
        store=Ledger.open(str(tmp_path / "l.db"), GENESIS),
        settings=CoreSettings(),
        rng=random.Random(1),
    )

    async def on_host(_host: object) -> None:
        return None

    return Runtime(
        core,
        settings=None,
        p2p_seed=bytes(32),
        blobs=BlobStore(tmp_path / "blobs"),
        data_dir=tmp_path,
        now=lambda: Now(T0, 1.0),
        on_applied=lambda _evs: None,
        on_synced=lambda: None,
        on_host=on_host,
    )


def _page() -> list[object]:
    w = ChainWriter(KEYS[0], GENESIS.network_id)
    good = [
        w.sign("profile", {"name": f"p{i}", "bio": "", "skills": []}, T0 - 60_000 + i).raw
        for i in range(300)
    ]
    raws: list[object] = list(good)
    forged = bytearray(good[5])
    forged[-1] ^= 1  # the signature
    raws[5] = bytes(forged)
    body = bytearray(good[250])
    body[80] ^= 1  # a signed byte: still decodes, the signature no longer matches
    raws[250] = bytes(body)
    elsewhere = ChainWriter(KEYS[1], OTHER.network_id)
    raws[100] = elsewhere.sign("profile", {"name": "x", "bio": "", "skills": []}, T0).raw
    raws[200] = b"\xc1 not an event"
    raws[201] = 7
    raws[202] = msgpack.packb([1, 2, 3])
    return raws


@pytest.mark.trio
async def test_a_threaded_page_decodes_as_the_one_thread_decode(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    raws = _page()
    threaded_events, threaded_bad = await rt._decode_on_threads(raws)
    events, bad = rt.core.decode(raws)
    assert [e.raw for e in threaded_events] == [e.raw for e in events]
    assert [(b.code, b.reason) for b in threaded_bad] == [(b.code, b.reason) for b in bad]
    assert len(events) == 300 - 6
    codes = [b.code for b in bad]
    assert codes.count("bad_signature") == 2
    assert "wrong_network" in codes


@pytest.mark.trio
async def test_a_large_gossip_message_checked_off_the_loop_is_judged_as_on_it(
    tmp_path: Path,
) -> None:
    """The runtime checks a large gossip message on worker threads before
    libp2p's synchronous validator runs; the validator then decides with that
    result exactly as it decides without it."""
    raws = [r for r in _page() if isinstance(r, bytes) and len(r) > 100]
    data = encode_gossip(GENESIS.network_id, raws)
    assert len(data) >= _PREVALIDATE_BYTES
    off = _runtime(tmp_path / "off")
    on = _runtime(tmp_path / "on")
    await off._prevalidate_gossip("peer", data)
    assert data in off._predecoded  # checked, and left for the validator
    forward_off = off._validate_gossip("peer", data)
    assert not off._predecoded
    forward_on = on._validate_gossip("peer", data)  # no prevalidation: the loop checks
    assert forward_off is forward_on is False  # a forged event: not forwarded
    queued = [[e.id for e in evs] for evs, _, _ in off.core.queue]
    assert queued == [[e.id for e in evs] for evs, _, _ in on.core.queue]
    assert sum(map(len, queued)) == len(raws) - 3  # the two forged, the wrong network
    assert off.core.peers.score("peer", 1.0) == on.core.peers.score("peer", 1.0) > 0  # charged


@pytest.mark.trio
async def test_a_small_or_malformed_gossip_message_is_left_to_the_validator(
    tmp_path: Path,
) -> None:
    rt = _runtime(tmp_path)
    small = encode_gossip(GENESIS.network_id, [r for r in _page()[6:26] if isinstance(r, bytes)])
    await rt._prevalidate_gossip("peer", small)
    await rt._prevalidate_gossip("peer", b"\xc1" * 50_000)
    assert not rt._predecoded
    assert rt._validate_gossip("peer", small) is True
    assert rt._validate_gossip("peer", b"\xc1" * 50_000) is False


@pytest.mark.trio
async def test_a_peer_over_its_rate_gets_no_decoding_of_its_large_messages(
    tmp_path: Path,
) -> None:
    """The rate limit comes before any work on a message: a peer that has used
    up its messages gets no prevalidation either, and asking takes nothing."""
    rt = _runtime(tmp_path)
    spoiled = {5, 100, 200, 201, 202, 250}  # what _page() forges or breaks
    clean = [r for i, r in enumerate(_page()) if i not in spoiled and isinstance(r, bytes)]
    data = encode_gossip(GENESIS.network_id, clean)
    assert len(data) >= _PREVALIDATE_BYTES
    mono = rt.now().mono
    while rt.core.peers.rate_ok("flooder", mono):
        pass
    assert not rt.core.gossip_welcome("flooder", rt.now())
    await rt._prevalidate_gossip("flooder", data)
    assert not rt._predecoded
    assert rt._validate_gossip("flooder", data) is False
    assert not rt.core.queue  # nothing decoded, nothing queued
    # A welcome peer: asking twice takes nothing from its rate.
    assert rt.core.gossip_welcome("other", rt.now())
    assert rt.core.gossip_welcome("other", rt.now())
    await rt._prevalidate_gossip("other", data)
    assert data in rt._predecoded
    assert rt._validate_gossip("other", data) is True
