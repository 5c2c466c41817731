"""node/_libp2p_patches.py: the start-up checks, and each patch in effect.

The behaviour each patch buys is measured by a test that fails without it: yamux
credit per half window, sender records verified once per neighbour and
IDONTWANT only for large messages in tests/test_p2p.py; our own record reused,
the content-addressed message id and message cache, and oversize RPCs reported
here and in tests/test_wire_p2p.py.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import libp2p.network.swarm as _swarm_mod
import libp2p.pubsub.gossipsub as _gossipsub_mod
import libp2p.pubsub.pubsub as _pubsub_mod
import pytest
import trio
from _hosts import WAIT, accept_all, hosts, wait_for
from learnmesh.node import _libp2p_patches as patches
from learnmesh.node._p2p import P2PConfig, P2PError, P2PHost
from libp2p.pubsub.pb import rpc_pb2
from libp2p.stream_muxer.yamux.yamux import YamuxStream

TOPIC = "lm/patches"


async def recv_until(host: P2PHost, data: bytes) -> list[bytes]:
    seen: list[bytes] = []
    with trio.fail_after(WAIT):
        while not seen or seen[-1] != data:
            seen.append((await host.messages().receive())[2])
    return seen


# ---- the checks ---------------------------------------------------------------------


def test_the_installed_libp2p_passes_the_checks() -> None:
    patches.check()
    P2PHost(P2PConfig(identity_seed=os.urandom(32)))  # installs
    assert patches.installed()


def test_another_libp2p_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patches, "_installed_version", lambda: "0.9.0")
    with pytest.raises(
        patches.Libp2pMismatch, match=r"^learnmesh needs libp2p 0\.8\.1; found 0\.9\.0$"
    ):
        patches.check()


def test_the_host_reports_a_mismatch_as_a_p2p_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patches, "_installed", False)
    monkeypatch.setattr(patches, "_installed_version", lambda: "0.9.0")
    with pytest.raises(P2PError, match=r"learnmesh needs libp2p 0\.8\.1; found 0\.9\.0"):
        P2PHost(P2PConfig(identity_seed=os.urandom(32)))


def test_a_missing_method_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(YamuxStream, "_grow_threshold")
    with pytest.raises(
        patches.Libp2pMismatch,
        match=r"^libp2p changed: YamuxStream\._grow_threshold is missing; "
        r"the patch for yamux credit cannot apply$",
    ):
        patches.check()


def test_a_missing_module_function_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(_gossipsub_mod, "env_to_send_in_RPC")
    with pytest.raises(
        patches.Libp2pMismatch, match=r"libp2p\.pubsub\.gossipsub\.env_to_send_in_RPC"
    ):
        patches.check()


def test_a_renamed_instance_attribute_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    class Upstream:
        def __init__(self) -> None:
            self.target_window = 1  # was target_recv_window

    monkeypatch.setattr(
        patches, "_REQUIREMENTS", [(Upstream, "target_recv_window", "attr", "yamux credit")]
    )
    with pytest.raises(patches.Libp2pMismatch, match=r"Upstream\.target_recv_window is missing"):
        patches.check()
    monkeypatch.setattr(patches, "_REQUIREMENTS", [(Upstream, "target_window", "attr", "x")])
    patches.check()


def test_install_refuses_before_patching_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patches, "_installed", False)
    for mod in (_pubsub_mod, _gossipsub_mod):
        monkeypatch.setattr(
            mod, "maybe_consume_signed_record", patches.ORIGINALS["maybe_consume_signed_record"]
        )
    monkeypatch.setattr(patches, "_installed_version", lambda: "0.8.2")
    with pytest.raises(patches.Libp2pMismatch):
        patches.install()
    consume = _pubsub_mod.maybe_consume_signed_record  # type: ignore[attr-defined]
    assert consume is patches.ORIGINALS["maybe_consume_signed_record"]
    assert not patches.installed()


def test_every_patched_name_is_the_one_in_effect() -> None:
    P2PHost(P2PConfig(identity_seed=os.urandom(32)))
    for mod in (_pubsub_mod, _gossipsub_mod):
        assert mod.maybe_consume_signed_record is patches._consume_cached  # type: ignore[attr-defined]
        assert mod.env_to_send_in_RPC is patches._envelope_cached  # type: ignore[attr-defined]
    assert YamuxStream._auto_tune_and_send_window_update is patches._credit_at_half_window  # type: ignore[comparison-overlap]
    assert _swarm_mod._HAPPY_EYEBALLS_DELAY == patches.DIAL_DELAY_S == 0.0  # type: ignore[attr-defined]
    h = P2PHost(P2PConfig(identity_seed=os.urandom(32)))
    assert isinstance(h._router.mcache, patches._ContentMessageCache)
    assert h._router.scorer is None
    assert h._pubsub.get_message_id(rpc_pb2.Message(data=b"x")) == hashlib.sha256(b"x").digest()


# ---- each patch's effect ---------------------------------------------------------------


async def test_own_record_is_built_once_not_per_rpc(monkeypatch: pytest.MonkeyPatch) -> None:
    """libp2p's env_to_send_in_RPC lists the host's addresses for every RPC sent,
    to see whether its signed record is current; ours reuses it for 5 s."""
    async with hosts(2) as (a, b):
        for h in (a, b):
            await h.subscribe(TOPIC, accept_all)
        await a.connect(b.listen_addrs()[0])
        await wait_for(lambda: b.peer_id in a.mesh_peers(TOPIC), "mesh")
        listed: list[int] = []
        get_addrs = a._host.get_addrs

        def counting() -> Any:
            listed.append(1)
            return get_addrs()

        monkeypatch.setattr(a._host, "get_addrs", counting)
        with trio.fail_after(WAIT):
            for i in range(30):
                await a.publish(TOPIC, b"e%d" % i)
            assert len(await recv_until(b, b"e29")) == 30
        assert len(listed) <= 3, len(listed)  # libp2p's own: at least 30


async def test_message_cache_announces_content_ids() -> None:
    """IHAVE announces what the message cache holds: its ids must be the message
    ids (SHA-256 of the data), or a peer asks again for what it has, and IWANT
    for a content id must find the message."""
    async with hosts(2) as (a, b):
        for h in (a, b):
            await h.subscribe(TOPIC, accept_all)
        await a.connect(b.listen_addrs()[0])
        await wait_for(lambda: b.peer_id in a.mesh_peers(TOPIC), "mesh")
        await a.publish(TOPIC, b"cached")
        assert await recv_until(b, b"cached") == [b"cached"]
        mid = hashlib.sha256(b"cached").digest()
        for h in (a, b):
            assert h._router.mcache.window(TOPIC) == [mid]
            msg = h._router.mcache.get(mid)
            assert msg is not None and msg.data == b"cached"
            assert h._pubsub.seen_messages.has(mid)


# ---- the IWANT cap (the flood after a heal) ---------------------------------------------


def _cached(host: P2PHost, n: int) -> list[bytes]:
    """Put `n` messages in the host's message cache; their ids, oldest first."""
    ids = []
    for i in range(n):
        msg = rpc_pb2.Message(data=b"m%d" % i, topicIDs=[TOPIC])
        host._router.mcache.put(msg)
        ids.append(hashlib.sha256(msg.data).digest())
    return ids


async def test_an_iwant_is_served_up_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """libp2p answers an IWANT with every message it names, in one RPC: after a
    heal that was each side's whole recent traffic, validated one message at a
    time. Ours serves at most max_iwant; sync brings the rest in bulk."""
    async with hosts(2) as (a, b):
        await a.connect(b.listen_addrs()[0])
        await wait_for(lambda: b.peer_id in a.connected_peers(), "connection")
        ids = _cached(a, 200)
        sent: list[rpc_pb2.RPC] = []
        monkeypatch.setattr(a._router, "send_rpc", lambda _peer, rpc, *_a: sent.append(rpc))
        iwant = rpc_pb2.ControlIWant()
        iwant.messageIDs.extend(ids)
        await a._router.handle_iwant(iwant, b._id)
        assert len(sent) == 1
        assert len(sent[0].publish) == a._router._max_iwant == 64


async def test_an_ihave_asks_for_the_newest_unseen_up_to_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with hosts(2) as (a, b):
        await a.connect(b.listen_addrs()[0])
        await wait_for(lambda: b.peer_id in a.connected_peers(), "connection")
        ids = [hashlib.sha256(b"x%d" % i).digest() for i in range(200)]
        a._pubsub.seen_messages.add(ids[-1])  # seen: not asked for
        asked: list[list[bytes]] = []

        async def emit_iwant(msg_ids: Any, _to: Any) -> None:
            asked.append(list(msg_ids))

        monkeypatch.setattr(a._router, "emit_iwant", emit_iwant)
        ihave = rpc_pb2.ControlIHave(topicID=TOPIC)
        ihave.messageIDs.extend(ids)
        await a._router.handle_ihave(ihave, b._id)
        assert asked == [ids[-65:-1]]


# ---- the dial delay -------------------------------------------------------------------


async def _fastest_connect(tries: int = 3) -> float:
    best = float("inf")
    for _ in range(tries):
        async with hosts(2) as (a, b):
            t = trio.current_time()
            await a.connect(b.listen_addrs()[0])
            best = min(best, trio.current_time() - t)
    return best


async def test_a_connect_does_not_wait_out_the_dial_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    """libp2p waits 250 ms after starting a peer's last address's dial, even once
    it connected: every connect took at least that (start-up, redials, heals).
    The fastest of three connects shows the wait is gone (a loaded machine can
    slow one), and libp2p's own delay, put back, shows what it cost."""
    assert await _fastest_connect() < 0.2
    monkeypatch.setattr(
        _swarm_mod, "_HAPPY_EYEBALLS_DELAY", patches.ORIGINALS["_HAPPY_EYEBALLS_DELAY"]
    )
    assert await _fastest_connect() >= 0.25
