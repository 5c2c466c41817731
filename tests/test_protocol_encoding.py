"""Canonical msgpack: round trips, and every non-canonical or disallowed input
refused with its code."""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from learnmesh.protocol import (
    LocalProtocolError,
    RemoteProtocolError,
    canonical_pack,
    strict_unpack,
)
from learnmesh.protocol._encoding import MAX_INT, MIN_INT

scalars = (
    st.none()
    | st.booleans()
    | st.integers(MIN_INT, MAX_INT)
    | st.text(max_size=40)
    | st.binary(max_size=40)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)


def _listify(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_listify(x) for x in v]
    if isinstance(v, dict):
        return {k: _listify(x) for k, x in v.items()}
    return v


@settings(max_examples=150, deadline=None)
@given(values)
def test_round_trip(v: Any) -> None:
    data = canonical_pack(v)
    back = strict_unpack(data, len(data))
    assert back == _listify(v)
    assert canonical_pack(back) == data


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=6), st.integers(0, 5), min_size=2, max_size=6))
def test_map_order_does_not_change_the_bytes(d: dict[str, int]) -> None:
    assert canonical_pack(dict(reversed(list(d.items())))) == canonical_pack(d)


@pytest.mark.parametrize(
    "value", [0, 127, 128, 255, 256, -1, -32, -33, -128, -129, 2**32, MAX_INT, MIN_INT]
)
def test_int_boundaries_use_the_smallest_form(value: int) -> None:
    data = canonical_pack(value)
    assert strict_unpack(data, 16) == value
    assert data == msgpack.packb(value)


def test_keys_are_sorted_by_code_point() -> None:
    # "B" (0x42) < "a" (0x61) < "é" (0xe9); UTF-8 byte order gives the same order.
    assert list(strict_unpack(canonical_pack({"é": 1, "a": 2, "B": 3}), 100)) == ["B", "a", "é"]


# -- refusals of bytes from outside -------------------------------------------------------

FIXMAP2_BA = b"\x82\xa1b\x01\xa1a\x02"

REMOTE_CASES: list[tuple[str, bytes, str]] = [
    ("unsorted map keys", FIXMAP2_BA, "non_canonical"),
    ("duplicate map keys", b"\x82\xa1a\x01\xa1a\x02", "non_canonical"),
    ("uint8 for a fixint", b"\xcc\x05", "non_canonical"),
    ("uint16 for a uint8", b"\xcd\x00\xff", "non_canonical"),
    ("uint64 for a uint32", b"\xcf" + (2**32 - 1).to_bytes(8, "big"), "non_canonical"),
    ("int8 for a positive fixint", b"\xd0\x05", "non_canonical"),
    ("int16 for a negative fixint", b"\xd1\xff\xff", "non_canonical"),
    ("str8 where fixstr fits", b"\xd9\x01a", "non_canonical"),
    ("str16 where str8 fits", b"\xda\x00\x01a", "non_canonical"),
    ("bin16 where bin8 fits", b"\xc5\x00\x01a", "non_canonical"),
    ("array16 where fixarray fits", b"\xdc\x00\x01\x01", "non_canonical"),
    ("map16 where fixmap fits", b"\xde\x00\x01\xa1a\x01", "non_canonical"),
    ("trailing bytes", b"\x01\x02", "trailing_bytes"),
    ("trailing byte after a map", b"\x81\xa1a\x01\xc0", "trailing_bytes"),
    ("float64", b"\xcb" + struct.pack(">d", 1.5), "float"),
    ("float32", b"\xca" + struct.pack(">f", 1.5), "float"),
    ("float inside a list", b"\x91\xcb" + struct.pack(">d", 0.0), "float"),
    ("fixext1", b"\xd4\x05\x00", "ext_type"),
    ("ext8", b"\xc7\x01\x07\x00", "ext_type"),
    ("timestamp ext -1", b"\xd6\xff\x00\x00\x00\x01", "type"),
    ("too deep", b"\x91" * 18 + b"\x01", "too_deep"),
    ("too deep maps", b"\x81\xa1a" * 18 + b"\x01", "too_deep"),
    ("nesting beyond the decoder's stack", b"\x91" * 5000 + b"\x01", "undecodable"),
    ("bin map key", b"\x81\xc4\x01a\x01", "map_key"),
    ("mixed str and bin keys", b"\x82\xa1a\x01\xc4\x01b\x02", "map_key"),
    ("int map key", b"\x81\x01\x01", "map_key"),
    ("array map key", b"\x81\x91\x01\x01", "undecodable"),
    ("invalid utf-8 in str", b"\xa2\xff\xfe", "undecodable"),
    ("truncated str", b"\xa5ab", "undecodable"),
    ("truncated array", b"\x93\x01", "undecodable"),
    ("empty input", b"", "undecodable"),
    ("reserved byte 0xc1", b"\xc1", "undecodable"),
]


@pytest.mark.parametrize(("what", "data", "code"), REMOTE_CASES, ids=[c[0] for c in REMOTE_CASES])
def test_refused(what: str, data: bytes, code: str) -> None:
    with pytest.raises(RemoteProtocolError) as exc:
        strict_unpack(data, 1 << 20)
    assert exc.value.code == code, exc.value


def test_depth_limit_is_exact() -> None:
    ok = b"\x91" * 17 + b"\x01"  # 17 nested arrays: depths 0..16
    assert strict_unpack(ok, 100) is not None
    assert canonical_pack(strict_unpack(ok, 100)) == ok


def test_oversize_is_refused_before_decoding() -> None:
    data = canonical_pack("x" * 100)
    assert strict_unpack(data, len(data)) == "x" * 100
    with pytest.raises(RemoteProtocolError) as exc:
        strict_unpack(data, len(data) - 1)
    assert exc.value.code == "oversize"
    # even garbage is refused as oversize, not decoded
    with pytest.raises(RemoteProtocolError) as exc:
        strict_unpack(b"\xc1" * 10, 5)
    assert exc.value.code == "oversize"


# -- refusals of our own values -----------------------------------------------------------


def _nested(n: int) -> Any:
    v: Any = 1
    for _ in range(n):
        v = [v]
    return v


LOCAL_CASES: list[tuple[str, Any, str]] = [
    ("float", 1.0, "type"),
    ("set", {1}, "type"),
    ("int above uint64", MAX_INT + 1, "int_range"),
    ("int below int64", MIN_INT - 1, "int_range"),
    ("int map key", {1: 2}, "map_key"),
    ("bytes map key", {b"a": 2}, "map_key"),
    ("too deep", _nested(18), "too_deep"),
]


@pytest.mark.parametrize(("what", "value", "code"), LOCAL_CASES, ids=[c[0] for c in LOCAL_CASES])
def test_local_refusals(what: str, value: Any, code: str) -> None:
    with pytest.raises(LocalProtocolError) as exc:
        canonical_pack(value)
    assert exc.value.code == code
