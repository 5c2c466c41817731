"""The node's data directory: identity key, genesis, config, API token, ledger, blobs, logs."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils
from learnmesh.ledger import BlobStore, Ledger
from learnmesh.protocol import (
    Genesis,
    KeyPair,
    ProtocolError,
    account_from_text,
    account_text,
)

# Default `~/.learnmesh`; `LEARNMESH_HOME` overrides it and `--data DIR` overrides both.
# Key seeds come from `os.urandom` here: the protocol itself has no randomness.
__all__ = [
    "DataDir",
    "DataDirError",
    "NodeConfig",
    "check_loopback",
    "default_root",
    "read_passphrase_file",
]

_IDENTITY_KIND = "learnmesh-identity"
_IDENTITY_VERSION = 1


class DataDirError(Exception):
    """A data directory problem, with a one-line message for the user."""


def read_passphrase_file(path: str | os.PathLike[str]) -> bytes:
    """A passphrase from a file, surrounding whitespace (the final newline) removed:
    the one rule for `init` and `node start`, or a key could not be opened again."""
    try:
        data = Path(path).read_bytes().strip()
    except OSError as exc:
        raise DataDirError(f"cannot read the passphrase file {path}: {exc.strerror}") from None
    if not data:
        raise DataDirError(f"the passphrase file {path} is empty")
    return data


def default_root() -> Path:
    env = os.environ.get("LEARNMESH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".learnmesh"


@dataclass(slots=True)
class NodeConfig:
    listen_host: str = "0.0.0.0"
    listen_port: int = 4001
    api_port: int = 8642
    bootstrap: list[str] = field(default_factory=list)
    log_level: str = "info"

    def to_json(self) -> dict[str, Any]:
        return {"v": 1, **asdict(self)}

    @classmethod
    def from_json(cls, j: Any, where: Path) -> NodeConfig:
        if not isinstance(j, dict):
            raise DataDirError(f"{where} must hold a JSON object")
        c = cls()
        for name, want in (
            ("listen_host", str),
            ("listen_port", int),
            ("api_port", int),
            ("log_level", str),
        ):
            if name in j:
                v = j[name]
                if not isinstance(v, want) or isinstance(v, bool):
                    raise DataDirError(f"{where}: {name} must be a {want.__name__}")
                setattr(c, name, v)
        if "bootstrap" in j:
            b = j["bootstrap"]
            if not isinstance(b, list) or not all(isinstance(x, str) for x in b):
                raise DataDirError(f"{where}: bootstrap must be a list of multiaddr strings")
            c.bootstrap = list(b)
        for port in (c.listen_port, c.api_port):
            if not 0 <= port <= 65535:
                raise DataDirError(f"{where}: port {port} is out of range")
        return c


def _write_private(path: Path, data: bytes, *, exclusive: bool) -> None:
    """Write a 0600 file atomically; `exclusive` refuses to replace one."""
    if exclusive and path.exists():
        raise DataDirError(f"{path} already exists; refusing to overwrite it")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)  # in case the file existed with looser bits
        if exclusive:
            os.link(tmp, path)  # fails if someone created it meanwhile
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except FileExistsError:
        raise DataDirError(f"{path} already exists; refusing to overwrite it") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _kdf(passphrase: bytes, salt: bytes, ops: int, mem: int) -> bytes:
    key: bytes = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase, salt, opslimit=ops, memlimit=mem
    )
    return key


def encode_identity(seed: bytes, passphrase: bytes | None = None, name: str = "") -> bytes:
    """The identity file: JSON with a version; the seed sealed with a key derived
    from the passphrase (argon2id + XSalsa20-Poly1305) when one is given."""
    pub = KeyPair(seed).public_key
    doc: dict[str, Any] = {
        "kind": _IDENTITY_KIND,
        "v": _IDENTITY_VERSION,
        "account": account_text(pub),  # readable without the passphrase
        "name": name,
    }
    if passphrase:
        # libsodium's INTERACTIVE limits (64 MiB, well under a second): asked at
        # every node start. The limits are stored, so a file can use stronger ones.
        ops = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
        mem = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        box = nacl.secret.SecretBox(_kdf(passphrase, salt, ops, mem))
        doc["encrypted"] = {
            "kdf": "argon2id",
            "opslimit": ops,
            "memlimit": mem,
            "salt": salt.hex(),
            "box": bytes(box.encrypt(seed)).hex(),
        }
    else:
        doc["seed"] = seed.hex()
    return (json.dumps(doc, indent=2) + "\n").encode()


@dataclass(frozen=True, slots=True)
class IdentityInfo:
    account: str
    public_key: bytes
    name: str
    encrypted: bool


def _parse_identity(data: bytes, where: Path) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError:
        raise DataDirError(f"{where} is not an identity file (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("kind") != _IDENTITY_KIND:
        raise DataDirError(f"{where} is not a learnmesh identity file")
    if doc.get("v") != _IDENTITY_VERSION:
        raise DataDirError(f"{where} has identity format {doc.get('v')!r}; expected 1")
    return doc


def identity_info(data: bytes, where: Path) -> IdentityInfo:
    doc = _parse_identity(data, where)
    try:
        pub = account_from_text(str(doc["account"]))
    except (KeyError, ProtocolError):
        raise DataDirError(f"{where} has no valid account id") from None
    return IdentityInfo(account_text(pub), pub, str(doc.get("name", "")), "encrypted" in doc)


def decode_identity(data: bytes, where: Path, passphrase: bytes | None) -> KeyPair:
    doc = _parse_identity(data, where)
    enc = doc.get("encrypted")
    try:
        if enc is None:
            seed = bytes.fromhex(doc["seed"])
        else:
            if not passphrase:
                raise DataDirError(f"{where} is encrypted: a passphrase is needed")
            if enc.get("kdf") != "argon2id":
                raise DataDirError(f"{where} uses an unknown key derivation {enc.get('kdf')!r}")
            key = _kdf(
                passphrase, bytes.fromhex(enc["salt"]), int(enc["opslimit"]), int(enc["memlimit"])
            )
            seed = nacl.secret.SecretBox(key).decrypt(bytes.fromhex(enc["box"]))
    except nacl.exceptions.CryptoError:
        raise DataDirError(f"wrong passphrase for {where}") from None
    except (KeyError, ValueError, TypeError, AttributeError):
        raise DataDirError(f"{where} is damaged") from None
    if len(seed) != 32:
        raise DataDirError(f"{where} is damaged (the seed is not 32 bytes)")
    key_pair = KeyPair(seed)
    if "account" in doc and doc["account"] != key_pair.account:
        raise DataDirError(f"{where} is damaged (its account does not match its key)")
    return key_pair


class DataDir:
    """Paths and loaders for one data directory. Nothing is created until asked."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()

    @classmethod
    def resolve(cls, data: str | os.PathLike[str] | None = None) -> DataDir:
        """`--data` if given, else `LEARNMESH_HOME`, else `~/.learnmesh`."""
        return cls(data if data is not None else default_root())

    # -- paths -------------------------------------------------------------------------

    @property
    def identity_path(self) -> Path:
        return self.root / "identity.key"

    @property
    def restored_marker(self) -> Path:
        # Present after `key import`: the node must sync its own chain's head from
        # peers before it signs anything, or it may fork its own chain.
        return self.root / "identity.restored"

    @property
    def genesis_path(self) -> Path:
        return self.root / "genesis.json"

    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def token_path(self) -> Path:
        return self.root / "api.token"

    @property
    def ledger_path(self) -> Path:
        return self.root / "ledger.db"

    @property
    def blobs_dir(self) -> Path:
        return self.root / "blobs"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    # -- creation ------------------------------------------------------------------------

    def ensure(self) -> None:
        """Create the directory tree (0700: it holds a private key)."""
        try:
            for d in (self.root, self.blobs_dir, self.logs_dir):
                d.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise DataDirError(f"cannot create {self.root}: {exc.strerror}") from None

    def _require(self) -> None:
        if not self.root.is_dir():
            raise DataDirError(f"no data directory at {self.root} (run: learnmesh init)")

    # -- identity ------------------------------------------------------------------------

    def has_identity(self) -> bool:
        return self.identity_path.exists()

    def create_identity(
        self, passphrase: bytes | None = None, name: str = "", seed: bytes | None = None
    ) -> KeyPair:
        """A new key (seed from os.urandom unless given); refuses to overwrite one."""
        self.ensure()
        if self.has_identity():
            raise DataDirError(
                f"an identity already exists at {self.identity_path}; refusing to overwrite it"
            )
        seed = seed if seed is not None else os.urandom(32)
        _write_private(self.identity_path, encode_identity(seed, passphrase, name), exclusive=True)
        return KeyPair(seed)

    def identity(self) -> IdentityInfo:
        """The public part of the identity (no passphrase needed)."""
        return identity_info(self._read_identity(), self.identity_path)

    def load_identity(self, passphrase: bytes | None = None) -> KeyPair:
        return decode_identity(self._read_identity(), self.identity_path, passphrase)

    def _read_identity(self) -> bytes:
        try:
            return self.identity_path.read_bytes()
        except FileNotFoundError:
            raise DataDirError(
                f"no identity in {self.root} (run: learnmesh --data {self.root} init)"
            ) from None
        except OSError as exc:
            raise DataDirError(f"cannot read {self.identity_path}: {exc.strerror}") from None

    def export_identity(self, dest: str | os.PathLike[str]) -> IdentityInfo:
        """Copy the identity file (encrypted if it is) to `dest`, mode 0600."""
        data = self._read_identity()
        info = identity_info(data, self.identity_path)
        _write_private(Path(dest), data, exclusive=True)
        return info

    def import_identity(self, src: str | os.PathLike[str]) -> IdentityInfo:
        """Install a backed-up identity; refuses to replace a different one."""
        try:
            data = Path(src).read_bytes()
        except OSError as exc:
            raise DataDirError(f"cannot read {src}: {exc.strerror}") from None
        info = identity_info(data, Path(src))
        if self.has_identity():
            have = self.identity()
            if have.public_key == info.public_key:
                return info
            raise DataDirError(
                f"{self.identity_path} already holds another identity ({have.account[:16]}…); "
                "move it away first"
            )
        self.ensure()
        _write_private(self.identity_path, data, exclusive=True)
        self.restored_marker.write_text("sync own chain head before signing\n")
        return info

    # -- genesis ---------------------------------------------------------------------------

    def has_genesis(self) -> bool:
        return self.genesis_path.exists()

    def load_genesis(self) -> Genesis:
        return read_genesis_file(self.genesis_path, missing_hint=self.root)

    def write_genesis(self, genesis: Genesis) -> None:
        """Install the network's genesis; refuses to switch a directory to
        another network."""
        self.ensure()
        if self.has_genesis():
            have = self.load_genesis()
            if have.network_id == genesis.network_id:
                return
            raise DataDirError(
                f"{self.root} already belongs to network {have.name!r} "
                f"({have.network_id.hex()[:16]}…); use another --data directory"
            )
        text = json.dumps(genesis.to_json(), indent=2, sort_keys=True) + "\n"
        tmp = self.genesis_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.genesis_path)

    # -- config and token ----------------------------------------------------------------

    def load_config(self) -> NodeConfig:
        try:
            j = json.loads(self.config_path.read_text())
        except FileNotFoundError:
            return NodeConfig()
        except ValueError as exc:
            raise DataDirError(f"{self.config_path} is not valid JSON ({exc})") from None
        return NodeConfig.from_json(j, self.config_path)

    def write_config(self, config: NodeConfig) -> None:
        self.ensure()
        text = json.dumps(config.to_json(), indent=2) + "\n"
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config_path)

    def api_token(self) -> str:
        """The local API's bearer token, created (0600) on first use."""
        try:
            return self.token_path.read_text().strip()
        except FileNotFoundError:
            self.ensure()
            token = secrets.token_urlsafe(32)
            _write_private(self.token_path, (token + "\n").encode(), exclusive=False)
            return token

    # -- storage ---------------------------------------------------------------------------

    def open_ledger(self, **kwargs: Any) -> Ledger:
        """The ledger of this directory's network (needs genesis.json)."""
        self._require()
        return Ledger.open(self.ledger_path, self.load_genesis(), **kwargs)

    def blob_store(self) -> BlobStore:
        g = self.load_genesis()
        return BlobStore(self.blobs_dir, max_bytes=g.params.max_blob_bytes)


def read_genesis_file(path: Path, missing_hint: Path | None = None) -> Genesis:
    """A genesis from its readable JSON form, with a clear error."""
    try:
        j = json.loads(path.read_text())
    except FileNotFoundError:
        if missing_hint is not None:
            raise DataDirError(
                f"no genesis in {missing_hint} (run: learnmesh genesis create, "
                "or learnmesh genesis join FILE)"
            ) from None
        raise DataDirError(f"no such file: {path}") from None
    except (OSError, ValueError) as exc:
        raise DataDirError(f"cannot read a genesis from {path}: {exc}") from None
    try:
        return Genesis.from_json(j)
    except ProtocolError as exc:
        raise DataDirError(f"{path}: {exc.reason}") from None


def check_loopback(host: str) -> None:
    """The API holds the node's keys' power: it never listens beyond loopback."""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"the API binds only to a loopback address (127.0.0.1 or ::1), not {host!r}")
