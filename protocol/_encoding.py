"""Canonical msgpack: one byte string per value, checked by decoding and re-encoding.

Only nil, bool, int (64-bit), str, bytes, arrays and str-keyed maps are allowed;
maps are written with sorted keys; floats and extension types are refused.
"""

from __future__ import annotations

import threading
from typing import Any

import msgpack

from ._errors import LocalProtocolError, RemoteProtocolError

__all__ = ["MAX_INT", "MIN_INT", "canonical_pack", "strict_unpack"]

MIN_INT = -(2**63)
MAX_INT = 2**64 - 1
_MAX_DEPTH = 16


def _canon(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, bool | str | bytes):
        return value
    if isinstance(value, int):
        if not MIN_INT <= value <= MAX_INT:
            raise LocalProtocolError("int_range", f"integer {value} does not fit in 64 bits")
        return value
    # The same limit as the decoder's: no container deeper than _MAX_DEPTH.
    if depth > _MAX_DEPTH:
        raise LocalProtocolError("too_deep", "value nests too deeply to encode")
    if isinstance(value, list | tuple):
        return [_canon(v, depth + 1) for v in value]
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise LocalProtocolError("map_key", "map keys must be strings")
        return {k: _canon(value[k], depth + 1) for k in sorted(value)}
    raise LocalProtocolError("type", f"cannot encode a {type(value).__name__} canonically")


_local = threading.local()


def _pack(value: Any) -> bytes:
    """msgpack.packb with one Packer per thread: packb makes a Packer (and its
    buffer) per call, a third of the cost of packing an event."""
    try:
        packer = _local.packer
    except AttributeError:
        packer = _local.packer = msgpack.Packer(use_bin_type=True, autoreset=True)
    data: bytes = packer.pack(value)
    return data


def canonical_pack(value: Any) -> bytes:
    """Encode `value` as canonical msgpack (sorted map keys, no floats)."""
    return _pack(_canon(value))


_SCALARS = frozenset({type(None), bool, int, str, bytes})


def _check_decoded(value: Any, depth: int = 0) -> None:
    """Types allowed, map keys sorted, depth bounded. Re-packing then proves the
    rest of canonical form (minimal ints, shortest headers)."""
    t = type(value)
    if t in _SCALARS:
        return
    if depth > _MAX_DEPTH:
        raise RemoteProtocolError("too_deep", "value nests too deeply")
    if t is list:
        for v in value:
            if type(v) not in _SCALARS:
                _check_decoded(v, depth + 1)
        return
    if t is dict:
        keys = list(value)
        # msgpack also decodes bin keys; mixed with str keys they would not even sort.
        for k in keys:
            if type(k) is not str:
                raise RemoteProtocolError("map_key", "map keys must be strings")
        if keys != sorted(keys):
            raise RemoteProtocolError("non_canonical", "map keys are not in sorted order")
        for v in value.values():
            if type(v) not in _SCALARS:
                _check_decoded(v, depth + 1)
        return
    if t is float:
        raise RemoteProtocolError("float", "floating-point numbers are not allowed")
    raise RemoteProtocolError("type", f"a {t.__name__} is not allowed")


def _no_ext(code: int, data: bytes) -> Any:
    raise RemoteProtocolError("ext_type", "msgpack extension types are not allowed")


def strict_unpack(data: bytes, max_size: int) -> Any:
    """Decode canonical msgpack, refusing oversize input, trailing bytes, floats,
    extension types and any non-canonical encoding (re-encode and compare)."""
    if len(data) > max_size:
        raise RemoteProtocolError("oversize", f"{len(data)} bytes is over the limit of {max_size}")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=False,  # non-str keys are refused below, as map_key
            use_list=True,
            ext_hook=_no_ext,
        )
    except RemoteProtocolError:
        raise
    except msgpack.ExtraData as exc:
        raise RemoteProtocolError("trailing_bytes", "bytes left over after the value") from exc
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise RemoteProtocolError("undecodable", f"not valid msgpack ({exc})") from exc
    _check_decoded(value)
    if _pack(value) != data:
        raise RemoteProtocolError("non_canonical", "encoding is not canonical")
    return value
