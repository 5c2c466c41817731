"""`learnmesh node start`: run this data directory's node in the foreground."""

from __future__ import annotations

import argparse
import os

from ._datadir import DataDir, DataDirError, check_loopback, read_passphrase_file

__all__ = ["register"]


def _passphrase(args: argparse.Namespace) -> bytes | None:
    if args.passphrase_file:
        return read_passphrase_file(args.passphrase_file)  # the same rule as `init`
    env = os.environ.get("LEARNMESH_PASSPHRASE")
    return env.encode() if env else None


def cmd_node_start(args: argparse.Namespace) -> int:
    api_host = args.api_host or "127.0.0.1"
    try:
        check_loopback(api_host)  # refused before the node's modules load (about 1 s)
    except ValueError as exc:
        raise DataDirError(str(exc)) from None
    from ._runner import run_node
    from ._service import NodeSettings  # here: every `learnmesh` command registers this one

    dd = DataDir(args.data_dir)
    cfg = dd.load_config()
    key = dd.load_identity(_passphrase(args))
    genesis = dd.load_genesis()
    settings = NodeSettings(
        listen_host=args.listen_host or cfg.listen_host,
        listen_port=cfg.listen_port if args.listen_port is None else args.listen_port,
        api_host=api_host,
        api_port=cfg.api_port if args.api_port is None else args.api_port,
        bootstrap=list(dict.fromkeys(cfg.bootstrap + (args.bootstrap or []))),
        log_level=args.log_level or cfg.log_level,
        fetch_attachments=not args.no_fetch_attachments,
        sync_interval=args.sync_interval,
        mdns=args.mdns,
    )
    return run_node(
        data_dir=dd.root,
        key_seed=key.seed,
        genesis=genesis,
        token=dd.api_token(),
        settings=settings,
        restored_marker=dd.restored_marker,
        admin=args.admin,
    )


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    n = sub.add_parser("node", help="run a node").add_subparsers(dest="node_cmd", required=True)
    p = n.add_parser("start", help="run the node in the foreground until Ctrl-C")
    p.add_argument("--listen-host", help="libp2p listen address (config default 0.0.0.0)")
    p.add_argument("--listen-port", type=int, help="libp2p TCP port (0: any free port)")
    p.add_argument("--api-host", help="must be a loopback address (default 127.0.0.1)")
    p.add_argument("--api-port", type=int, help="local API port (0: any free port)")
    p.add_argument("--bootstrap", action="append", metavar="MULTIADDR", help="peer to dial; repeat")
    p.add_argument("--mdns", action="store_true", help="discover peers on the local network (mDNS)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--sync-interval", type=float, default=3.0, help="seconds between anti-entropy rounds"
    )
    p.add_argument(
        "--no-fetch-attachments", action="store_true", help="fetch attachments only on demand"
    )
    p.add_argument(
        "--passphrase-file", help="passphrase of an encrypted key (or LEARNMESH_PASSPHRASE)"
    )
    p.add_argument(
        "--admin",
        action="store_true",
        help="serve /api/admin/* (connect, partition, heal, sync, clock): devnets and tests only",
    )
    p.set_defaults(func=cmd_node_start)
