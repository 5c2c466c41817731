"""Credentials: made from a real awarded submission, checked offline (no
replica), and every tampering or mislinking refused with the reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from learnmesh.protocol import (
    CredentialError,
    Event,
    Genesis,
    RemoteProtocolError,
    account_text,
    canonical_pack,
    make_credential,
    strict_unpack,
    verify_credential,
)
from test_protocol_support import Lifecycle, Net


def _awarded() -> tuple[Net, Lifecycle]:
    net = Net()
    lc = net.lifecycle()
    assert net.state.void == {}
    return net, lc


def _parts(
    net: Net, lc: Lifecycle, i: int = 0
) -> tuple[Genesis, Event, Event, Event, Event, Event]:
    assert lc.close is not None and lc.award is not None
    return net.genesis, lc.bounty, lc.commits[i], lc.close, lc.reveals[i], lc.award


def test_credential_verifies_offline() -> None:
    net, lc = _awarded()
    data = make_credential(*_parts(net, lc))
    cred = verify_credential(data)  # nothing but the bytes
    assert cred.learner == account_text(net.pk(1))
    assert cred.mentor == account_text(net.pk(0))
    assert cred.amount == 5000
    assert cred.submission == lc.reveals[0].id
    assert lc.award is not None and cred.award == lc.award.id
    assert cred.network_id == net.network
    assert cred.skills == ("python",)
    j = cred.to_json()
    assert j["amount"] == 5000 and j["bounty"] == "Explain a concept"
    assert verify_credential(data, expected_network=net.network) == cred


def _raw(data: bytes) -> dict[str, Any]:
    m = strict_unpack(data, 1 << 20)
    assert isinstance(m, dict)
    return m


def _repack(data: bytes, **over: Any) -> bytes:
    return canonical_pack({**_raw(data), **over})


def _with_event(data: bytes, i: int, raw: bytes) -> bytes:
    evs = list(_raw(data)["events"])
    evs[i] = raw
    return _repack(data, events=evs)


def test_every_flipped_byte_of_a_credential_is_refused() -> None:
    net, lc = _awarded()
    data = make_credential(*_parts(net, lc))
    for i in range(0, len(data), 7):  # every 7th byte keeps this fast; positions vary by layout
        bad = bytearray(data)
        bad[i] ^= 0x55
        with pytest.raises(RemoteProtocolError):
            verify_credential(bytes(bad))


def _other_net_credential() -> bytes:
    other = Net(n=6, each=5)
    lc = other.lifecycle(award=False)
    assert lc.close is not None
    lc.award = other.award(0, lc.bounty, [(lc.reveals[0], 1)])
    return make_credential(*_parts(other, lc))


def _cases() -> list[tuple[str, Callable[[bytes, Net, Lifecycle], bytes], str]]:
    return [
        ("not a credential", lambda d, n, lc: _repack(d, type="receipt"), "not a learnmesh"),
        ("version true", lambda d, n, lc: _repack(d, v=True), "not a learnmesh"),
        ("an extra field", lambda d, n, lc: _repack(d, note="x"), "unexpected fields"),
        ("four events", lambda d, n, lc: _repack(d, events=_raw(d)["events"][:4]), "exactly five"),
        (
            "a tampered event",
            lambda d, n, lc: _with_event(d, 4, _raw(d)["events"][4][:-1] + b"\x00"),
            "does not verify",
        ),
        (
            "events in the wrong order",
            lambda d, n, lc: _repack(d, events=list(reversed(_raw(d)["events"]))),
            "wrong event kinds",
        ),
        (
            "another learner's reveal",
            lambda d, n, lc: _with_event(d, 3, lc.reveals[1].raw),
            "the reveal",
        ),
        (
            "another learner's commit",
            lambda d, n, lc: _with_event(d, 1, lc.commits[1].raw),
            "the reveal is not by the learner",
        ),
        (
            "an award that does not name it",
            lambda d, n, lc: _with_event(
                d, 4, n.award(0, lc.bounty, [(lc.reveals[1], 10)], []).raw
            ),
            "does not name this submission",
        ),
        (
            "an award by someone else",
            lambda d, n, lc: _with_event(
                d, 4, n.award(2, lc.bounty, [(lc.reveals[0], 10)], []).raw
            ),
            "the award is not the mentor's",
        ),
        (
            "a close by someone else",
            lambda d, n, lc: _with_event(d, 2, n.close(3, lc.bounty, lc.commits).raw),
            "the close is not the mentor's",
        ),
        (
            "a close that did not accept it",
            lambda d, n, lc: _with_event(d, 2, n.close(0, lc.bounty, lc.commits[1:]).raw),
            "did not accept",
        ),
        (
            "a commit to another bounty",
            lambda d, n, lc: _with_event(d, 1, n.commit(1, n.bounty(0)).raw),
            "another bounty",
        ),
        (
            "a commit after the deadline",
            lambda d, n, lc: _with_event(
                d, 1, n.commit(1, lc.bounty, ts=lc.bounty.body["submit_by"] + 1).raw
            ),
            "after the deadline",
        ),
        (
            "a reveal linking another close",
            lambda d, n, lc: _with_event(
                d,
                3,
                n.reveal(1, lc.bounty, lc.commits[0], n.close(0, lc.bounty, lc.commits[:1])).raw,
            ),
            "links elsewhere",
        ),
        (
            "a reveal with other content",
            lambda d, n, lc: _with_event(
                d,
                3,
                n.reveal(1, lc.bounty, lc.commits[0], lc.close, text="improved").raw,  # type: ignore[arg-type]
            ),
            "does not match the commitment",
        ),
        (
            "a credential of another network",
            lambda d, n, lc: _repack(d, events=_raw(_other_net_credential())["events"]),
            "does not verify",
        ),
        ("trailing bytes", lambda d, n, lc: d + b"\x00", ""),
    ]


@pytest.mark.parametrize(("what", "tamper", "reason"), _cases(), ids=[c[0] for c in _cases()])
def test_tampered_credentials_are_refused(
    what: str, tamper: Callable[[bytes, Net, Lifecycle], bytes], reason: str
) -> None:
    net, lc = _awarded()
    data = make_credential(*_parts(net, lc))
    bad = tamper(data, net, lc)
    with pytest.raises(RemoteProtocolError) as exc:
        verify_credential(bad)
    if reason:
        assert isinstance(exc.value, CredentialError)
        assert exc.value.code == "credential"
        assert reason in exc.value.reason, exc.value.reason


def test_a_credential_of_another_network_is_refused_when_one_is_expected() -> None:
    data = _other_net_credential()
    assert verify_credential(data).amount == 1
    with pytest.raises(CredentialError) as exc:
        verify_credential(data, expected_network=Net().network)
    assert "another network" in exc.value.reason


def test_make_credential_refuses_to_hand_out_a_bad_one() -> None:
    net, lc = _awarded()
    g, b, _c, close, r, a = _parts(net, lc)
    with pytest.raises(CredentialError):
        make_credential(g, b, lc.commits[1], close, r, a)
