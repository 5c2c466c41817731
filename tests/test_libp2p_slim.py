"""The stand-ins for the libp2p modules a node never uses (node/_libp2p_slim.py):
they keep every name libp2p imports from them, what would use QUIC, mDNS or
AutoTLS fails loudly, DNS addresses still resolve, and a libp2p other than the
pinned one loads in full.

Each check runs in a fresh interpreter: whether the stand-ins are in place
depends on what the process imported first, which a shared pytest worker does
not control."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from learnmesh.node._libp2p_slim import (
    BLOCKED_PACKAGES,
    DEFERRED,
    DEFERRED_DNS,
    LAZY_PACKAGES,
    PINNED,
    STANDINS,
)


def _run(code: str, env_extra: dict[str, str] | None = None) -> dict[str, object]:
    """Run `code` in a fresh interpreter; it prints one JSON object last."""
    env = {k: v for k, v in os.environ.items() if k != "LEARNMESH_LIBP2P_FULL"}
    env.update(env_extra or {})
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert isinstance(result, dict)
    return result


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)))


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def test_every_name_libp2p_imports_from_a_stand_in_is_there() -> None:
    """Scan the installed libp2p and multiaddr sources: any `from X import n` of a
    stood-in module (outside the stood-in packages, which never load), at module
    level or deferred, must find n in the stand-in; and no module outside them may
    import one of their blocked submodules at module level (it would fail to import
    in a node)."""
    standin_names = {m: {*classes, *functions} for m, (_, classes, functions) in STANDINS.items()}
    standin_names.update({m: {*c, *f, *k} for m, (c, f, k) in DEFERRED.items()})
    standin_names.update({m: set(names) for m, names in DEFERRED_DNS.items()})
    missing: list[str] = []
    blocked: list[str] = []
    seen = 0
    for top in ("libp2p", "multiaddr"):
        root = _package_dir(top)
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root.parent).with_suffix("")
            is_package = rel.name == "__init__"
            module = ".".join(rel.parts[:-1] if is_package else rel.parts)
            if (
                any(module == p or module.startswith(p + ".") for p in BLOCKED_PACKAGES)
                or module in STANDINS
                or module in DEFERRED
                or module in DEFERRED_DNS
            ):
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            top_level = {id(n) for n in tree.body}
            for node in ast.walk(tree):
                if not isinstance(node, ast.ImportFrom):
                    continue
                target = _absolute(module, node, is_package)
                if target in standin_names:
                    seen += 1
                    for alias in node.names:
                        if alias.name not in standin_names[target]:
                            missing.append(f"{module}: {target}.{alias.name}")
                if id(node) not in top_level:
                    continue  # a deferred import of a blocked module fails when used: wanted
                for package, (_, allowed) in BLOCKED_PACKAGES.items():
                    if (
                        target.startswith(package + ".")
                        and target not in allowed
                        and target not in STANDINS
                    ):
                        blocked.append(f"{module}: {target}")
    assert seen >= 8, "the scan found too few imports of stood-in modules to be meaningful"
    assert missing == []
    assert blocked == []


def test_a_node_imports_none_of_the_optional_libraries_and_uses_tcp() -> None:
    out = _run(
        """
        import json, sys
        import trio
        from learnmesh.node import _libp2p_slim
        from learnmesh.node._p2p import P2PConfig, P2PHost
        async def main():
            a_cfg = P2PConfig(identity_seed=bytes([1]) * 32)
            b_cfg = P2PConfig(identity_seed=bytes([2]) * 32)
            async with P2PHost.open(a_cfg) as a, P2PHost.open(b_cfg) as b:
                peer = await b.connect(a.listen_addrs()[0])
                rtt = await b.ping(peer)
                return a.listen_addrs(), rtt

        addrs, rtt = trio.run(main)
        heavy = ["aioquic", "zeroconf", "dns", "requests", "urllib3", "httpx", "Crypto",
                 "fastecdsa", "pycparser"]
        print(json.dumps({"installed": _libp2p_slim.installed(), "addrs": addrs, "rtt": rtt,
                          "loaded": [m for m in heavy if m in sys.modules]}))
        """
    )
    assert out["installed"] is True
    assert out["loaded"] == []
    assert out["addrs"] and all("/tcp/" in a for a in out["addrs"])  # type: ignore[union-attr]
    assert isinstance(out["rtt"], float) and out["rtt"] >= 0


def test_quic_and_autotls_fail_loudly() -> None:
    out = _run(
        """
        import json
        from learnmesh.node import _p2p  # installs the stand-ins before libp2p
        import libp2p
        from libp2p.crypto.ed25519 import create_new_key_pair
        from libp2p.transport.quic.transport import QUICTransport
        from libp2p.security.tls.autotls.acme import ACMEClient
        from learnmesh.node._libp2p_slim import SlimUnavailable

        errors = {}
        def attempt(name, fn):
            try:
                fn()
            except SlimUnavailable as exc:
                errors[name] = str(exc)
            except ImportError as exc:
                errors[name] = "ImportError: " + str(exc)

        kp = create_new_key_pair()
        attempt("quic_host", lambda: libp2p.new_host(key_pair=kp, enable_quic=True))
        attempt("quic_transport", lambda: QUICTransport(kp.private_key))
        attempt("acme", lambda: ACMEClient(kp.private_key, None))
        attempt("quic_listener", lambda: __import__("libp2p.transport.quic.listener"))
        attempt("autotls_other", lambda: __import__("libp2p.security.tls.autotls.other"))
        print(json.dumps(errors))
        """
    )
    assert set(out) == {
        "quic_host",
        "quic_transport",
        "acme",
        "quic_listener",
        "autotls_other",
    }
    for name, message in out.items():
        assert "is not loaded in a learnmesh node process" in str(message), name
    assert "QUIC" in str(out["quic_host"]) and "AutoTLS" in str(out["acme"])
    assert str(out["quic_listener"]).startswith("ImportError: ")


def test_a_dns_resolver_loads_dnspython_on_first_use() -> None:
    out = _run(
        """
        import json, sys
        import trio
        from learnmesh.node import _p2p
        import multiaddr
        from multiaddr.resolvers import DNSResolver
        from multiaddr.exceptions import ResolutionError

        before = "dns" in sys.modules
        resolver = DNSResolver()
        built = "dns" in sys.modules
        plain = multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/4001")
        same = trio.run(resolver.resolve, plain)
        real = type(resolver._real).__module__
        print(json.dumps({"before": before, "built": built, "after": "dns" in sys.modules,
                          "same": [str(a) for a in same], "real": real,
                          "timeout": resolver.DEFAULT_TIMEOUT}))
        """
    )
    assert out["before"] is False and out["built"] is False
    assert out["after"] is True
    assert out["same"] == ["/ip4/127.0.0.1/tcp/4001"]
    assert out["real"] == "multiaddr.resolvers._learnmesh_real_dns"
    assert out["timeout"] == 5.0


def test_another_libp2p_version_loads_in_full() -> None:
    out = _run(
        """
        import importlib.metadata, json, sys
        real = importlib.metadata.version
        importlib.metadata.version = lambda d: "9.9.9" if d == "libp2p" else real(d)
        from learnmesh.node import _libp2p_slim, _p2p
        importlib.metadata.version = real
        print(json.dumps({"installed": _libp2p_slim.installed(),
                          "aioquic": "aioquic" in sys.modules}))
        """
    )
    assert out == {"installed": False, "aioquic": True}


def test_the_switch_loads_libp2p_in_full() -> None:
    out = _run(
        """
        import json, sys
        from learnmesh.node import _libp2p_slim, _p2p
        print(json.dumps({"installed": _libp2p_slim.installed(),
                          "zeroconf": "zeroconf" in sys.modules}))
        """,
        {"LEARNMESH_LIBP2P_FULL": "1"},
    )
    assert out == {"installed": False, "zeroconf": True}


def test_the_pins_match_the_project() -> None:
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert f'"libp2p=={PINNED["libp2p"]}"' in pyproject


def test_the_lazy_relay_packages_export_what_the_real_ones_do() -> None:
    """libp2p.relay, libp2p.relay.circuit_v2 and libp2p.discovery.mdns skip their
    __init__ at import; every public name a full import has is still there, from
    the same module."""
    probe = """
        import json, sys, types
        import learnmesh.node._p2p
        import {package} as p
        names = sorted(
            n
            for n in {names}
            if not n.startswith("_") and not isinstance(getattr(p, n), types.ModuleType)
        )
        where = {{n: getattr(p, n).__module__ + "." + n for n in names
                 if hasattr(getattr(p, n), "__module__")}}
        print(json.dumps({{"names": names, "where": where,
                          "transport": "libp2p.relay.circuit_v2.transport" in sys.modules}}))
        """
    for package in LAZY_PACKAGES:
        full = _run(probe.format(package=package, names="dir(p)"), {"LEARNMESH_LIBP2P_FULL": "1"})
        names = full["names"]
        assert isinstance(names, list)
        assert len(names) >= 4, package
        lazy = _run(probe.format(package=package, names=repr(names)))
        assert lazy["names"] == names, package
        assert lazy["where"] == full["where"], package
        if package.startswith("libp2p.relay"):
            assert lazy["transport"] is True  # loaded on first use


def test_a_node_does_not_load_the_relay() -> None:
    out = _run(
        """
        import json, sys
        import learnmesh.node.cli, learnmesh.node._runner
        from libp2p.relay.circuit_v2.nat import is_private_ip
        print(json.dumps({"relay": sorted(m for m in sys.modules
                                          if m.startswith("libp2p.relay.")),
                          "private": is_private_ip("10.0.0.1")}))
        """
    )
    assert out == {
        "relay": ["libp2p.relay.circuit_v2", "libp2p.relay.circuit_v2.nat"],
        "private": True,
    }


def test_a_node_started_with_mdns_loads_the_real_discovery() -> None:
    """`node start --mdns`: the host builds libp2p's real MDNSDiscovery (zeroconf
    loads then), and stops cleanly."""
    out = _run(
        """
        import json, sys
        import trio
        from learnmesh.node._p2p import P2PConfig, P2PHost

        before = "zeroconf" in sys.modules

        async def main():
            cfg = P2PConfig(identity_seed=bytes([3]) * 32, mdns=True)
            async with P2PHost.open(cfg) as h:
                d = h._host.mDNS
                return type(d).__module__, type(d).__name__, len(h.listen_addrs())

        where, name, addrs = trio.run(main)
        print(json.dumps({"before": before, "after": "zeroconf" in sys.modules,
                          "where": where, "name": name, "addrs": addrs}))
        """
    )
    assert out["before"] is False and out["after"] is True
    assert out["name"] == "MDNSDiscovery"
    assert out["where"] == "libp2p.discovery.mdns._learnmesh_real_mdns"
    assert out["addrs"] == 1


def test_deferred_modules_work_when_used() -> None:
    """An RSA peer key deserializes (pycryptodome loads then), the SECIO protocol id
    is the real one, and isinstance sees the real classes."""
    out = _run(
        """
        import json, sys
        from learnmesh.node import _p2p
        from libp2p.crypto.serialization import deserialize_public_key
        from libp2p.crypto.rsa import RSAPublicKey, create_new_key_pair
        import libp2p.security.secio.transport as secio

        before = "Crypto" in sys.modules
        pair = create_new_key_pair(1024)
        key = deserialize_public_key(pair.public_key.serialize())
        real_secio = sys.modules["libp2p.security.secio.transport"]
        from learnmesh.node._libp2p_slim import _real
        print(json.dumps({
            "before": before,
            "after": "Crypto" in sys.modules,
            "same": key.to_bytes() == pair.public_key.to_bytes(),
            "isinstance": isinstance(key, RSAPublicKey),
            "type": type(key).__name__,
            "secio_id": secio.ID,
            "real_secio_id": _real("libp2p.security.secio.transport").ID,
        }))
        """
    )
    assert out["before"] is False and out["after"] is True
    assert out["same"] is True and out["isinstance"] is True
    assert out["type"] == "RSAPublicKey"
    assert out["secio_id"] == out["real_secio_id"] == "/secio/1.0.0"


def test_the_devnet_baseline_gets_the_stand_ins_too() -> None:
    """`bench propagation`'s plain-GossipSub baseline (devnet/_baseline.py) imports
    libp2p through node/_p2p.py, so it is measured with the same imports as a node."""
    out = _run(
        """
        import json, sys
        import learnmesh.devnet._baseline
        from learnmesh.node import _libp2p_slim
        print(json.dumps({"installed": _libp2p_slim.installed(),
                          "aioquic": "aioquic" in sys.modules}))
        """
    )
    assert out == {"installed": True, "aioquic": False}
