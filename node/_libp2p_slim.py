"""Stand-ins for the py-libp2p modules a learnmesh node does not need to start (issue 14).

Importing py-libp2p 0.8.1 loads every transport and discovery service it has,
whether a host enables it or not: `libp2p/__init__` and `libp2p.custom_types`
import QUIC (aioquic), `libp2p.host.basic_host` imports mDNS (zeroconf), the
AutoTLS ACME and broker clients (requests, urllib3, httpx, charset_normalizer,
dnspython) and circuit relay v2, and `libp2p.transport.tcp.tcp` imports
multiaddr's DNS resolver (dnspython). A learnmesh node dials and listens on TCP
with Noise, never enables QUIC, AutoTLS or the relay, and enables mDNS only
with `node start --mdns`, yet paid for all of them in start-up time and memory
in every process.

`install()` puts small modules in `sys.modules` under those names before
libp2p is first imported, so the importers get every name they take and the
libraries behind them are not loaded:

- `libp2p.transport.quic.utils`, `.transport`, `.stream` (aioquic). The QUIC
  package's `exceptions` and `config` modules import no aioquic and stay real,
  so `isinstance`/`except` on them behave as upstream. Any other QUIC module
  (listener, connection, security, ...) refuses to import.
- `libp2p.security.tls.autotls.acme` and `.broker` (requests, httpx, dnspython);
  the package's other modules refuse to import.
- `libp2p.discovery.mdns.mdns` (zeroconf): `create_mdns_discovery` and
  `MDNSDiscovery` load the real module on first use (a node started with
  --mdns), and its package `libp2p.discovery.mdns` is lazy (below).
- `libp2p.crypto.rsa` (pycryptodome, which parses C declarations with cffi and
  pycparser at import), `libp2p.security.secio.transport` (fastecdsa) and
  `libp2p.security.pnet.protector`: RSA peer keys, SECIO and private networks
  load the real module on first use (a peer with an RSA identity, a host built
  with libp2p's default security options or a pre-shared key).
- `multiaddr.resolvers.dns` (dnspython): its `DNSResolver` is built by the TCP
  transport and the swarm for every host, and resolves only /dns* addresses,
  so here it loads the real resolver on first use instead of at import.
- `libp2p.relay` and `libp2p.relay.circuit_v2` (circuit relay v2 and DCUtR,
  which a node never runs): `basic_host` needs only `circuit_v2.nat`, but the
  two packages' `__init__` import the whole relay (about 6 MB). They, and
  `libp2p.discovery.mdns`, are lazy packages: the real directory, so every
  submodule imports as upstream, and each name the real `__init__` exports
  loads its submodule on first use (read from that `__init__`, which must hold
  nothing but imports).

What would actually use QUIC or AutoTLS fails loudly: constructing any of
their stand-in classes or calling their stand-in functions raises
`SlimUnavailable` naming the feature and this module. mDNS and DNS addresses
and the other deferred modules (`DEFERRED`) work: the real module loads then,
under a private name (`..._learnmesh_real_*`), since its own name is the
stand-in's; a deferred stand-in class builds real instances, forwards its class
attributes and answers isinstance for the real class.

The stand-ins match what the pinned versions import (`PINNED`); with any other
installed version `install()` does nothing and libp2p loads in full, as
`node/_libp2p_patches.py` refuses to patch an unknown libp2p. Setting
LEARNMESH_LIBP2P_FULL=1 also loads libp2p in full (for measuring the
difference). tests/test_libp2p_slim.py checks every name libp2p's own source
imports from these modules against the stand-ins.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = [
    "BLOCKED_PACKAGES",
    "DEFERRED",
    "DEFERRED_DNS",
    "DEFERRED_METHODS",
    "LAZY_PACKAGES",
    "PINNED",
    "STANDINS",
    "LazyDNSResolver",
    "SlimUnavailable",
    "install",
    "installed",
    "installed_version",
    "lazy_exports",
]

log = logging.getLogger(__name__)

# Distribution name -> the version the stand-ins were written against.
PINNED: dict[str, str] = {"libp2p": "0.8.1", "multiaddr": "0.2.0"}

_OFF_ENV = "LEARNMESH_LIBP2P_FULL"


class SlimUnavailable(RuntimeError):
    """Something tried to use a libp2p feature a learnmesh node does not load."""


def _unavailable(feature: str, what: str) -> SlimUnavailable:
    return SlimUnavailable(
        f"{what}: {feature} is not loaded in a learnmesh node process "
        "(learnmesh.node._libp2p_slim stands in for it; set LEARNMESH_LIBP2P_FULL=1 "
        "to load libp2p in full)"
    )


def _stand_in_class(module: str, name: str, feature: str) -> type:
    """A class whose construction raises: a name importers can use in annotations,
    type aliases and `isinstance`, but never instantiate."""

    def __init__(self: object, *args: Any, **kwargs: Any) -> None:
        raise _unavailable(feature, f"{module}.{name}()")

    return type(name, (), {"__init__": __init__, "__module__": module, "__slim__": True})


def _stand_in_function(module: str, name: str, feature: str) -> Callable[..., Any]:
    def stand_in(*args: Any, **kwargs: Any) -> Any:
        raise _unavailable(feature, f"{module}.{name}()")

    stand_in.__name__ = stand_in.__qualname__ = name
    stand_in.__module__ = module
    return stand_in


_QUIC = "QUIC (aioquic)"
_AUTOTLS = "AutoTLS (ACME and the libp2p.direct broker)"

# module -> (feature, classes, functions): the names libp2p 0.8.1 imports from it.
STANDINS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "libp2p.transport.quic.utils": (_QUIC, (), ("is_quic_multiaddr",)),
    "libp2p.transport.quic.transport": (_QUIC, ("QUICTransport",), ()),
    "libp2p.transport.quic.stream": (_QUIC, ("QUICStream",), ()),
    "libp2p.security.tls.autotls.acme": (_AUTOTLS, ("ACMEClient",), ("compute_b36_peer_id",)),
    "libp2p.security.tls.autotls.broker": (_AUTOTLS, ("BrokerClient",), ()),
}

# Packages whose other submodules refuse to import (they need the libraries above);
# QUIC's exceptions and config are real (no aioquic) and allowed.
BLOCKED_PACKAGES: dict[str, tuple[str, frozenset[str]]] = {
    "libp2p.transport.quic": (
        _QUIC,
        frozenset({"libp2p.transport.quic.exceptions", "libp2p.transport.quic.config"}),
    ),
    "libp2p.security.tls.autotls": (_AUTOTLS, frozenset()),
}

# Packages whose __init__ does not run at import: their exports load on first use.
LAZY_PACKAGES = ("libp2p.relay", "libp2p.relay.circuit_v2", "libp2p.discovery.mdns")

# Modules whose stand-in loads the real module on first use: module -> (classes,
# functions, constants), the names importers take (tests/test_libp2p_slim.py checks
# them against libp2p's source). A stand-in class builds, and forwards its class
# attributes (RSAPublicKey.from_bytes) and isinstance to, the real class.
DEFERRED: dict[str, tuple[tuple[str, ...], tuple[str, ...], dict[str, str]]] = {
    # mDNS (zeroconf): a node started with --mdns.
    "libp2p.discovery.mdns.mdns": (("MDNSDiscovery",), ("create_mdns_discovery",), {}),
    # RSA keys (pycryptodome, and through it cffi parsing C declarations with
    # pycparser at import): a peer whose identity is an RSA key.
    "libp2p.crypto.rsa": (("RSAPublicKey", "RSAPrivateKey"), ("create_new_key_pair",), {}),
    # SECIO (fastecdsa, pycryptodome): libp2p's default security options only; a
    # node passes Noise alone.
    "libp2p.security.secio.transport": (("Transport",), (), {"ID": "/secio/1.0.0"}),
    # Private networks (a pre-shared key; pycryptodome's Salsa20): a swarm with a psk.
    "libp2p.security.pnet.protector": ((), ("new_protected_conn",), {}),
}
# Class methods that importers read at import time (serialization's table of key
# deserializers): forwarded on call, so reading them loads nothing.
DEFERRED_METHODS: dict[str, tuple[str, ...]] = {"libp2p.crypto.rsa": ("from_bytes",)}
# multiaddr's DNS resolver: its own stand-in (an instance is built per host).
DEFERRED_DNS = {"multiaddr.resolvers.dns": ("DNSResolver", "DNSADDR_TXT_PREFIX")}

_DNS_MODULE = "multiaddr.resolvers.dns"
_MDNS_MODULE = "libp2p.discovery.mdns.mdns"

# Loaded already means too late: a stand-in would then differ from what importers hold.
_MUST_NOT_BE_LOADED = (
    "libp2p",
    "multiaddr.resolvers",
    *STANDINS,
    *DEFERRED,
    *DEFERRED_DNS,
    *LAZY_PACKAGES,
)

_installed = False


def installed() -> bool:
    return _installed


def installed_version(dist: str) -> str:
    """The installed version of `dist` ("none" if absent); also what
    node/_libp2p_patches.py checks its pinned libp2p against."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def _build_standin(name: str) -> ModuleType:
    feature, classes, functions = STANDINS[name]
    module = ModuleType(name, f"learnmesh stand-in for {name}: {feature} is not loaded.")
    module.__file__ = __file__
    if name in BLOCKED_PACKAGES:
        module.__path__ = []  # a package: its submodules go through _Blocker
    for cls in classes:
        setattr(module, cls, _stand_in_class(name, cls, feature))
    for fn in functions:
        setattr(module, fn, _stand_in_function(name, fn, feature))
    module.__all__ = [*classes, *functions]  # type: ignore[attr-defined]
    return module


class _Blocker(importlib.abc.MetaPathFinder):
    """Refuses, with a reason, the submodules of stood-in packages that would load
    the libraries the stand-ins keep out."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        for package, (feature, allowed) in BLOCKED_PACKAGES.items():
            if fullname.startswith(package + ".") and fullname not in allowed:
                reason = _unavailable(feature, f"import {fullname}").args[0]
                raise ImportError(reason, name=fullname)
        return None


# ---- multiaddr's DNS resolver, loaded on first use ------------------------------------


def _real(name: str) -> ModuleType:
    """The real module `name` (whose own name the stand-in holds), loaded once under
    a private name in the same package, so its relative imports resolve as upstream."""
    package, _, leaf = name.rpartition(".")
    private = f"{package}._learnmesh_real_{leaf}"
    loaded = sys.modules.get(private)
    if loaded is not None:
        return loaded
    parent = importlib.import_module(package)
    found = importlib.machinery.PathFinder.find_spec(name, list(parent.__path__))
    if found is None or found.origin is None:
        raise ImportError(f"cannot find {name} in {list(parent.__path__)}")
    spec = importlib.util.spec_from_file_location(private, found.origin)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[private] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[private]
        raise
    return module


def _real_dns() -> ModuleType:
    return _real(_DNS_MODULE)


class LazyDNSResolver:
    """multiaddr's DNSResolver, built on first use: every libp2p host constructs
    one (TCP transport, swarm) but only /dns, /dns4, /dns6 and /dnsaddr addresses
    use it, and building it imports dnspython."""

    MAX_RECURSIVE_DEPTH = 32
    DEFAULT_TIMEOUT = 5.0

    def __init__(self) -> None:
        self._real: Any = None

    def _resolver(self) -> Any:
        if self._real is None:
            self._real = _real_dns().DNSResolver()
        return self._real

    async def resolve(self, maddr: Any, options: dict[str, Any] | None = None) -> Any:
        return await self._resolver().resolve(maddr, options)

    def __getattr__(self, name: str) -> Any:  # the rest of the real resolver's API
        if name.startswith("__") or name == "_real":
            raise AttributeError(name)
        return getattr(self._resolver(), name)


def _build_dns_standin() -> ModuleType:
    module = ModuleType(_DNS_MODULE, "learnmesh stand-in: the real resolver loads on first use.")
    module.__file__ = __file__
    module.DNSADDR_TXT_PREFIX = "dnsaddr="  # type: ignore[attr-defined]
    LazyDNSResolver.__module__ = _DNS_MODULE
    module.DNSResolver = LazyDNSResolver  # type: ignore[attr-defined]

    def __getattr__(name: str) -> Any:  # anything else: the real module
        if name.startswith("__"):  # the import system probing (__path__, ...)
            raise AttributeError(name)
        return getattr(_real_dns(), name)

    setattr(module, "__getattr__", __getattr__)  # noqa: B010 (a module-level __getattr__)
    module.__all__ = ["DNSADDR_TXT_PREFIX", "DNSResolver"]  # type: ignore[attr-defined]
    return module


class _DeferredClass(type):
    """The metaclass of a deferred stand-in class: calling it, reading a class
    attribute from it or an isinstance check loads the real module and uses the
    real class."""

    _module: str

    def _real_class(cls) -> type:
        real = getattr(_real(cls._module), cls.__name__)
        assert isinstance(real, type)
        return real

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls._real_class()(*args, **kwargs)

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):  # probing (typing, inspect): not a use
            raise AttributeError(name)
        return getattr(cls._real_class(), name)

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls._real_class())


def _build_deferred(name: str) -> ModuleType:
    classes, functions, constants = DEFERRED[name]
    module = ModuleType(name, f"learnmesh stand-in for {name}: the real module loads on first use.")
    module.__file__ = __file__
    for cls in classes:
        body: dict[str, Any] = {"__module__": name, "_module": name}
        for method in DEFERRED_METHODS.get(name, ()):

            def forward_method(*args: Any, __cls: str = cls, __m: str = method, **kw: Any) -> Any:
                return getattr(getattr(_real(name), __cls), __m)(*args, **kw)

            body[method] = staticmethod(forward_method)
        setattr(module, cls, _DeferredClass(cls, (), body))
    for fn in functions:

        def forward(*args: Any, __fn: str = fn, **kwargs: Any) -> Any:
            return getattr(_real(name), __fn)(*args, **kwargs)

        forward.__name__ = forward.__qualname__ = fn
        forward.__module__ = name
        setattr(module, fn, forward)
    for key, value in constants.items():
        setattr(module, key, value)

    def __getattr__(attr: str) -> Any:  # anything else: the real module
        if attr.startswith("__"):  # the import system probing (__path__, ...)
            raise AttributeError(attr)
        return getattr(_real(name), attr)

    setattr(module, "__getattr__", __getattr__)  # noqa: B010 (a module-level __getattr__)
    module.__all__ = [*classes, *functions, *constants]  # type: ignore[attr-defined]
    return module


# ---- lazy packages ---------------------------------------------------------------------


def lazy_exports(name: str, init: Path) -> tuple[dict[str, tuple[str, str]], list[str]] | None:
    """What the package `name`'s real `__init__` (at `init`) exports: name ->
    (absolute module, attribute), and its `__all__`. None unless that `__init__`
    holds nothing but a docstring, `from ... import` statements and `__all__`
    (anything else could be a side effect a lazy package would skip)."""
    tree = ast.parse(init.read_text(encoding="utf-8"))
    table: dict[str, tuple[str, str]] = {}
    names: list[str] = []
    for i, node in enumerate(tree.body):
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and "*" not in [a.name for a in node.names]
        ):
            source = (
                node.module
                if node.level == 0
                else ".".join(
                    [*name.split(".")[: len(name.split(".")) - node.level + 1], node.module]
                )
            )
            for alias in node.names:
                table[alias.asname or alias.name] = (source, alias.name)
            continue
        if (
            isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == ["__all__"]
            and isinstance(node.value, ast.List | ast.Tuple)
        ):
            names = [
                e.value
                for e in node.value.elts
                if isinstance(e, ast.Constant) and isinstance(e.value, str)
            ]
            continue
        return None
    return table, names


def _build_lazy_package(name: str, init: Path) -> ModuleType | None:
    found = lazy_exports(name, init)
    if found is None:
        log.warning("libp2p: %s loads in full: its __init__ is not imports only", name)
        return None
    table, names = found
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = [str(init.parent)]
    module = importlib.util.module_from_spec(spec)
    module.__file__ = str(init)

    def __getattr__(attr: str) -> Any:
        where = table.get(attr)
        if where is None:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        value = getattr(importlib.import_module(where[0]), where[1])
        setattr(module, attr, value)
        return value

    setattr(module, "__getattr__", __getattr__)  # noqa: B010 (a module-level __getattr__)
    module.__all__ = names  # type: ignore[attr-defined]
    return module


def _package_init(name: str) -> Path | None:
    """The real __init__.py of a libp2p package, found without importing libp2p."""
    top = importlib.util.find_spec(name.split(".")[0])
    if top is None or not top.submodule_search_locations:
        return None
    for root in top.submodule_search_locations:
        init = Path(root, *name.split(".")[1:], "__init__.py")
        if init.is_file():
            return init
    return None


# ---- install ---------------------------------------------------------------------------


def install() -> bool:
    """Put the stand-ins in sys.modules (once per process). Returns whether they are
    in place: False if libp2p or multiaddr is not the pinned version, if
    LEARNMESH_LIBP2P_FULL is set, or if libp2p was imported before this ran."""
    global _installed
    if _installed:
        return True
    if os.environ.get(_OFF_ENV, "") not in ("", "0"):
        log.debug("libp2p loads in full: %s is set", _OFF_ENV)
        return False
    for dist, pinned in PINNED.items():
        found = installed_version(dist)
        if found != pinned:
            log.warning(
                "libp2p loads in full: the stand-ins were written for %s %s, found %s",
                dist,
                pinned,
                found,
            )
            return False
    early = [name for name in _MUST_NOT_BE_LOADED if name in sys.modules]
    if early:
        log.warning("libp2p loads in full: %s imported before the stand-ins", ", ".join(early))
        return False
    lazy: dict[str, ModuleType] = {}
    for name in LAZY_PACKAGES:
        init = _package_init(name)
        package = _build_lazy_package(name, init) if init is not None else None
        if package is not None:
            lazy[name] = package
    sys.modules.update(lazy)
    for name in STANDINS:
        sys.modules[name] = _build_standin(name)
    sys.modules[_DNS_MODULE] = _build_dns_standin()
    for name in DEFERRED:
        if name == _MDNS_MODULE and "libp2p.discovery.mdns" not in lazy:
            continue  # its package's __init__ would load the rest of mDNS anyway
        sys.modules[name] = _build_deferred(name)
    sys.meta_path.insert(0, _Blocker())
    _installed = True
    return True


install()
