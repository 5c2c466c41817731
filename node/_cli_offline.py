"""CLI commands that work without a running node: init, key, genesis, ledger, bench."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from learnmesh.ledger import Ledger, read_header
from learnmesh.protocol import Genesis, Params, account_from_text, account_text
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ._datadir import DataDir, NodeConfig, read_genesis_file, read_passphrase_file
from .cli import UserError

# They act on the data directory directly (a running node holds the ledger's lock,
# so ledger commands then say so and stop).
__all__ = ["register"]


# -- output helpers ----------------------------------------------------------------------


def _emit(args: argparse.Namespace, data: Any, render: Callable[[Console], None]) -> None:
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        render(Console())


@contextmanager
def _progress(args: argparse.Namespace) -> Iterator[Callable[[str, int, int], None]]:
    """A (phase, done, total) callback drawing rich bars on stderr (silent when
    stderr is not a terminal, so JSON on stdout stays clean)."""
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield update


def _data(args: argparse.Namespace) -> DataDir:
    return DataDir(args.data_dir)


def _short(b: bytes, n: int = 16) -> str:
    return b.hex()[:n]


# -- init and keys -------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    dd = _data(args)
    passphrase = read_passphrase_file(args.passphrase_file) if args.passphrase_file else None
    key = dd.create_identity(passphrase, name=args.name or "")
    if not dd.config_path.exists():
        dd.write_config(NodeConfig())
    dd.api_token()
    data = {
        "account": key.account,
        "data_dir": str(dd.root),
        "encrypted": passphrase is not None,
        "genesis": dd.has_genesis(),
    }

    def render(c: Console) -> None:
        c.print(f"[bold]identity created[/] in {dd.root}")
        c.print(f"account: [cyan]{key.account}[/]")
        if passphrase is None:
            c.print("[yellow]the key is not encrypted (use --passphrase-file to encrypt it)[/]")
        if not dd.has_genesis():
            c.print("next: learnmesh genesis create ...  or  learnmesh genesis join FILE")

    _emit(args, data, render)
    return 0


def cmd_key_show(args: argparse.Namespace) -> int:
    info = _data(args).identity()
    data = {"account": info.account, "name": info.name, "encrypted": info.encrypted}
    _emit(args, data, lambda c: c.print(info.account))
    return 0


def cmd_key_export(args: argparse.Namespace) -> int:
    info = _data(args).export_identity(args.file)
    data = {"account": info.account, "file": args.file, "encrypted": info.encrypted}

    def render(c: Console) -> None:
        c.print(f"identity {info.account} written to {args.file} (mode 0600)")
        if not info.encrypted:
            c.print("[yellow]the backup holds the key in clear: keep it somewhere safe[/]")

    _emit(args, data, render)
    return 0


def cmd_key_import(args: argparse.Namespace) -> int:
    dd = _data(args)
    info = dd.import_identity(args.file)
    data = {"account": info.account, "data_dir": str(dd.root), "encrypted": info.encrypted}

    def render(c: Console) -> None:
        c.print(f"identity {info.account} installed in {dd.root}")
        c.print("the node will fetch its own chain from peers before it signs anything")

    _emit(args, data, render)
    return 0


# -- genesis ---------------------------------------------------------------------------------


def _account(dd: DataDir, text: str) -> bytes:
    if text == "me":
        return dd.identity().public_key
    return account_from_text(text)


def _genesis_json(g: Genesis) -> dict[str, Any]:
    return {"network_id": g.network_id.hex(), "total_supply": g.total_supply, **g.to_json()}


def _render_genesis(g: Genesis) -> Callable[[Console], None]:
    def render(c: Console) -> None:
        c.print(f"[bold]{g.name}[/]  network id [cyan]{g.network_id.hex()}[/]")
        if g.description:
            c.print(g.description)
        c.print(f"created_ms {g.created_ms}, total supply {g.total_supply}")
        t = Table("account", "allocation", "trusted", title="allocations")
        trusted = set(g.trusted)
        for acct, amount in sorted(g.allocations, key=lambda a: -a[1]):
            t.add_row(account_text(acct), str(amount), "yes" if acct in trusted else "")
        for acct in sorted(trusted - {a for a, _ in g.allocations}):
            t.add_row(account_text(acct), "0", "yes")
        c.print(t)
        p = Table("parameter", "value", title="parameters")
        for k, v in g.params.to_map().items():
            p.add_row(k, str(v))
        c.print(p)

    return render


def cmd_genesis_create(args: argparse.Namespace) -> int:
    dd = _data(args)
    allocations: dict[bytes, int] = {}
    for item in args.alloc or []:
        who, sep, amount = item.partition("=")
        if not sep or not amount.strip().isdigit() or int(amount) <= 0:
            raise UserError(f"--alloc wants ACCOUNT=AMOUNT with a positive integer: {item!r}")
        acct = _account(dd, who.strip())
        if acct in allocations:
            raise UserError(f"--alloc names {who.strip()} twice")
        allocations[acct] = int(amount)
    if not allocations:
        raise UserError("a genesis needs at least one --alloc ACCOUNT=AMOUNT")
    trusted = sorted({_account(dd, t.strip()) for t in args.trusted or []})
    params: dict[str, int] = {}
    for item in args.param or []:
        k, sep, v = item.partition("=")
        try:
            params[k.strip()] = int(v)
        except ValueError:
            raise UserError(f"--param wants NAME=INTEGER: {item!r}") from None
        if not sep:
            raise UserError(f"--param wants NAME=INTEGER: {item!r}")
    g = Genesis(
        name=args.name,
        description=args.description or "",
        created_ms=args.created_ms if args.created_ms is not None else int(time.time() * 1000),
        allocations=tuple(sorted(allocations.items())),
        trusted=tuple(trusted),
        params=Params.from_map(params),
    )
    dd.write_genesis(g)
    if args.out:
        Path(args.out).write_text(json.dumps(g.to_json(), indent=2, sort_keys=True) + "\n")
    data = {**_genesis_json(g), "path": str(dd.genesis_path), "out": args.out}

    def render(c: Console) -> None:
        c.print(f"network [bold]{g.name}[/] created; genesis written to {dd.genesis_path}")
        if args.out:
            c.print(f"copy for the community: {args.out} (they run: learnmesh genesis join FILE)")
        c.print(f"network id: [cyan]{g.network_id.hex()}[/]")

    _emit(args, data, render)
    return 0


def cmd_genesis_show(args: argparse.Namespace) -> int:
    g = read_genesis_file(Path(args.file)) if args.file else _data(args).load_genesis()
    _emit(args, _genesis_json(g), _render_genesis(g))
    return 0


def cmd_genesis_join(args: argparse.Namespace) -> int:
    dd = _data(args)
    g = read_genesis_file(Path(args.file))
    dd.write_genesis(g)
    data = {**_genesis_json(g), "path": str(dd.genesis_path)}
    _emit(
        args,
        data,
        lambda c: c.print(f"joined [bold]{g.name}[/]: network id [cyan]{g.network_id.hex()}[/]"),
    )
    return 0


# -- ledger ----------------------------------------------------------------------------------


def _open(args: argparse.Namespace) -> Ledger:
    return _data(args).open_ledger()


def cmd_ledger_show(args: argparse.Namespace) -> int:
    with _open(args) as ledger:
        st = ledger.state
        heads = ledger.heads()
        balances = sorted(
            (
                (k, a.balance, a.spendable)
                for k, a in st.accounts.items()
                if a.balance or a.spendable
            ),
            key=lambda r: (-r[1], r[0]),
        )
        forks = sorted(st.forks.items())
        kinds = ledger.counts_by_kind()
        data: dict[str, Any] = {
            "network": ledger.genesis.name,
            "network_id": ledger.network.hex(),
            "events": ledger.count(),
            "pending": ledger.pending_count(),
            "void": len(st.void),
            "digest": ledger.digest().hex(),
            "schema_version": ledger.schema_version(),
            "kinds": kinds,
            "heads": {account_text(a): {"seq": s, "id": i.hex()} for a, (s, i) in heads.items()},
            "balances": {account_text(k): {"balance": b, "spendable": sp} for k, b, sp in balances},
            "forks": {account_text(a): seq for a, seq in forks},
            "fork_proofs": len(ledger.fork_proofs()),
            "total_supply": st.total_supply(),
        }
    limit = args.limit

    def render(c: Console) -> None:
        c.print(f"[bold]{data['network']}[/]  network id {data['network_id'][:16]}…")
        c.print(
            f"events {data['events']} (void {data['void']}), pending {data['pending']}, "
            f"forks {len(forks)}, supply {data['total_supply']}"
        )
        c.print(f"digest [cyan]{data['digest']}[/]")
        k = Table("kind", "events", title="events by kind")
        for name, n in sorted(kinds.items(), key=lambda kv: -kv[1]):
            k.add_row(name, str(n))
        c.print(k)
        b = Table("account", "balance", "spendable", title="balances")
        for acct, bal, sp in balances[:limit]:
            b.add_row(account_text(acct), str(bal), str(sp))
        if len(balances) > limit:
            b.add_row(f"… {len(balances) - limit} more", "", "")
        c.print(b)
        h = Table("author", "seq", "head", title="chain heads")
        for a, (seq, i) in sorted(heads.items(), key=lambda kv: -kv[1][0])[:limit]:
            h.add_row(account_text(a), str(seq), _short(i))
        if len(heads) > limit:
            h.add_row(f"… {len(heads) - limit} more", "", "")
        c.print(h)
        if forks:
            f = Table("equivocating author", "forked at seq", title="forks")
            for a, seq in forks:
                f.add_row(account_text(a), str(seq))
            c.print(f)

    _emit(args, data, render)
    return 0


def cmd_ledger_verify(args: argparse.Namespace) -> int:
    with _open(args) as ledger, _progress(args) as progress:
        report = ledger.verify(
            lambda done, total: progress("verifying", done, total), full=not args.quick
        )
    checks = "hash links and each chain's last signature" if args.quick else "every signature"

    def render(c: Console) -> None:
        verdict = "[green]OK[/]" if report.ok else "[red]PROBLEMS FOUND[/]"
        phases = (
            f" (signatures {report.signature_seconds:.2f}s on all threads, "
            f"then the fold {report.fold_seconds:.2f}s)"
            if report.signature_seconds
            else ""
        )
        c.print(
            f"{verdict}: {report.events} events replayed checking {checks} in "
            f"{report.seconds:.2f}s{phases} ({report.events_per_s:,.0f}/s); "
            f"pending {report.pending}, void {report.void}, forks {report.forks}"
        )
        c.print(f"digest [cyan]{report.digest.hex()}[/]")
        for p in report.problems:
            c.print(f"[red]- {p}[/]")

    _emit(args, report.to_json(), render)
    return 0 if report.ok else 1


def cmd_ledger_export(args: argparse.Namespace) -> int:
    with _open(args) as ledger:
        summary = ledger.export(args.file)
    _emit(
        args,
        summary.to_json(),
        lambda c: c.print(
            f"exported {summary.events} events, {summary.pending} pending, "
            f"{summary.forks} fork proofs to {args.file} ({summary.bytes:,} bytes)"
        ),
    )
    return 0


def cmd_ledger_import(args: argparse.Namespace) -> int:
    dd = _data(args)
    if not dd.has_genesis():
        g = read_header(args.file)
        raise UserError(
            f"{dd.root} has no genesis; {args.file} is network {g.name!r}: "
            "join it first with learnmesh genesis join GENESIS.json"
        )
    with _open(args) as ledger:
        report = ledger.import_(args.file)
        digest = ledger.digest().hex()
    data = {**report.to_json(), "digest": digest}

    def render(c: Console) -> None:
        c.print(
            f"imported {args.file}: {report.applied} applied, {report.duplicate} already "
            f"present, {report.pending} pending, {report.rejected} rejected"
        )
        for p in report.problems:
            c.print(f"[red]- {p}[/]")
        c.print(f"digest [cyan]{digest}[/]")

    _emit(args, data, render)
    return 0


# -- bench -----------------------------------------------------------------------------------


def cmd_bench_ingest(args: argparse.Namespace) -> int:
    from learnmesh.ledger.bench import run_bench

    if args.events < 1:
        raise UserError("--events must be at least 1")
    if args.batch < 1:
        raise UserError("--batch must be at least 1")

    def run(workdir: Path) -> dict[str, Any]:
        with _progress(args) as progress:
            return run_bench(
                args.events,
                workdir,
                batch=args.batch,
                seed=args.seed,
                threads=args.threads,
                progress=progress,
            )

    if args.data is not None:  # only an explicit --data keeps the scratch files
        result = run(Path(args.data) / "bench")
    else:
        with tempfile.TemporaryDirectory(prefix="learnmesh-bench-") as tmp:
            result = run(Path(tmp))

    def render(c: Console) -> None:
        t = Table(
            "measure", "value", "target", title=f"ingest benchmark, {result['events']} events"
        )
        par = result["verify_threads"]
        t.add_row(
            f"ingest events/s ({par} verify threads)",
            f"{result['ingest_events_per_s']:,.0f}",
            f"{result['targets']['ingest_events_per_s']:,}",
        )
        t.add_row(
            f"replay events/s ({par} verify threads)",
            f"{result['replay_events_per_s']:,.0f}",
            f"{result['targets']['replay_events_per_s']:,}",
        )
        t.add_row("ingest events/s (1 thread)", f"{result['ingest_events_per_s_1thread']:,.0f}", "")
        peers = result["runs"][str(par)]["ingest_from_peers_events_per_s"]
        t.add_row(f"ingest from peers, no flush per batch ({par} threads)", f"{peers:,.0f}", "")
        t.add_row(
            "vs one-core verify: ingest, from peers, replay",
            f"{result['ingest_vs_1core_verify']:.2f}, "
            f"{result['ingest_from_peers_vs_1core_verify']:.2f}, "
            f"{result['replay_vs_1core_verify']:.2f}",
            "",
        )
        t.add_row("replay events/s (1 thread)", f"{result['replay_events_per_s_1thread']:,.0f}", "")
        t.add_row("Ed25519 verify/s, one core", f"{result['verify_per_s_1core']:,.0f}", "")
        t.add_row("decode+verify/s, one core", f"{result['decode_verify_per_s_1core']:,.0f}", "")
        t.add_row("peak RSS (MB)", f"{result['peak_rss_mb']}", "")
        m = result["machine"]
        t.add_row("machine", f"{m['cpu_count']} CPUs, Python {m['python']}", "")
        c.print(t)

    _emit(args, result, render)
    return 0


# -- registration ----------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the offline commands to the top-level parser's subcommands."""
    p = sub.add_parser("init", help="create the data directory and this node's identity")
    p.add_argument("--passphrase-file", metavar="F", help="encrypt the key with this passphrase")
    p.add_argument("--name", help="a label for this identity")
    p.set_defaults(func=cmd_init)

    k = sub.add_parser("key", help="show, back up or restore the identity key").add_subparsers(
        dest="key_cmd", metavar="ACTION", required=True
    )
    p = k.add_parser("show", help="print this node's account id")
    p.set_defaults(func=cmd_key_show)
    p = k.add_parser("export", help="write the identity file to FILE (a backup)")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_key_export)
    p = k.add_parser("import", help="install an identity backup (refuses to replace another)")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_key_import)

    g = sub.add_parser("genesis", help="create, show or join a network").add_subparsers(
        dest="genesis_cmd", metavar="ACTION", required=True
    )
    p = g.add_parser("create", help="define a new network and make this directory part of it")
    p.add_argument("--name", required=True)
    p.add_argument("--description")
    p.add_argument(
        "--alloc", action="append", metavar="ACCOUNT=AMOUNT", help="repeat; ACCOUNT may be 'me'"
    )
    p.add_argument("--trusted", action="append", metavar="ACCOUNT", help="repeat; may be 'me'")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="network parameter")
    p.add_argument("--out", metavar="FILE", help="also write the genesis here, to share")
    p.add_argument("--created-ms", type=int, help=argparse.SUPPRESS)  # reproducible tests
    p.set_defaults(func=cmd_genesis_create)
    p = g.add_parser("show", help="show this directory's genesis (or FILE)")
    p.add_argument("file", nargs="?", metavar="FILE")
    p.set_defaults(func=cmd_genesis_show)
    p = g.add_parser("join", help="join a community: copy its genesis.json here")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_genesis_join)

    led = sub.add_parser("ledger", help="inspect, verify, export or import the ledger")
    lsub = led.add_subparsers(dest="ledger_cmd", metavar="ACTION", required=True)
    p = lsub.add_parser("show", help="counts, heads, digest, balances, pending, forks")
    p.add_argument("--limit", type=int, default=20, help="rows per table (default 20)")
    p.set_defaults(func=cmd_ledger_show)
    p = lsub.add_parser("verify", help="replay everything with signature checks")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--full", action="store_true", help="check every signature (the default)")
    how.add_argument(
        "--quick",
        action="store_true",
        help="check hash links and each chain's last signature only, as opening does "
        "(PROTOCOL.md §10.1)",
    )
    p.set_defaults(func=cmd_ledger_verify)
    p = lsub.add_parser("export", help="write the whole event log to FILE")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_ledger_export)
    p = lsub.add_parser("import", help="verify and add the events of an export FILE")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_ledger_import)

    b = sub.add_parser("bench", help="benchmarks").add_subparsers(
        dest="bench_cmd", metavar="ACTION", required=True
    )
    p = b.add_parser("ingest", help="time ingest and replay of generated events")
    p.add_argument("--events", type=int, default=20_000, metavar="N")
    p.add_argument("--batch", type=int, default=500, help="events per append (transaction)")
    p.add_argument("--threads", type=int, help="verify threads (default: one per CPU)")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=cmd_bench_ingest)

    from ._bench_gossip import register_bench as register_gossip_bench

    register_gossip_bench(b)
