"""`learnmesh devnet run|up|down|sim` and `learnmesh bench propagation|sync|sybil|recommend`.

`register(subparsers)` adds them to the main `learnmesh` parser, which finds this
module by its entry point (`learnmesh.commands` in pyproject.toml): the node does
not name its harness. Each command is `func(args) -> exit code`, like the others.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

from learnmesh.node._sim import SimError
from rich.console import Console
from rich.table import Table

from ._cluster import Cluster, DevnetError, sparse_topology, stop_pids
from ._scenarios import SCENARIOS, RunOptions, run_devnet

__all__ = ["USER_ERRORS", "main", "register"]

# node/cli.py prints these as one line (exit 2), never as a traceback.
USER_ERRORS = (DevnetError, SimError)

_DEFAULT_UP_DIR = Path(tempfile.gettempdir()) / "learnmesh-devnet"


def _term_as_interrupt() -> None:
    """SIGTERM to the devnet stops it like Ctrl-C: every node is stopped too."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def cmd_run(args: argparse.Namespace) -> int:
    _term_as_interrupt()
    console = None if _json(args) else Console()
    opts = RunOptions(
        nodes=args.nodes,
        scenario=args.scenario,
        faults=args.faults,
        duration=args.duration,
        seed=args.seed,
        report=Path(args.report) if args.report else None,
        dir=Path(args.dir) if args.dir else None,
        keep=args.keep,
        console=console,
    )
    report = run_devnet(opts)
    if _json(args):
        print(json.dumps(report, indent=2))
    ok = report["converged"] and report["supply_conserved"] and report["bounties_final"]
    return 0 if ok else 1


def cmd_up(args: argparse.Namespace) -> int:
    import random

    console = Console(stderr=_json(args))
    root = Path(args.dir)
    if (root / "devnet.json").exists():
        raise DevnetError(
            f"a devnet already runs in {root}: `learnmesh devnet down --dir {root}` first"
        )
    if (root / "n00").exists():
        raise DevnetError(f"{root} holds an old devnet; remove it or choose another --dir")
    c = Cluster(root, args.nodes, log=lambda m: console.print(f"[dim]{m}[/]"))
    ok = False
    try:
        c.init_all()
        c.make_genesis(
            "devnet", {x.account: 100_000 for x in c.nodes}, trusted=[c.nodes[0].account]
        )
        c.start_all(sparse_topology(args.nodes, random.Random(args.seed)))
        c.wait_connected(90)
        c.write_state(root / "devnet.json", {"kind": "up"})
        ok = True
    finally:
        if not ok:
            c.stop_all()
    if _json(args):
        print((root / "devnet.json").read_text())
        return 0
    t = Table(title=f"devnet of {args.nodes} nodes in {root}")
    for col in ("node", "pid", "api", "token", "data dir", "account"):
        t.add_column(col)
    for x in c.nodes:
        t.add_row(x.name, str(x.pid), x.api, x.token, str(x.data), x.account[:16] + "…")
    console.print(t)
    console.print(
        f"use any node with the CLI: [bold]learnmesh --data {c.nodes[0].data} status[/]\n"
        f"stop them all with: [bold]learnmesh devnet down --dir {root}[/]"
    )
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    path = root / "devnet.json"
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        raise DevnetError(f"no devnet recorded in {root} (no readable devnet.json)") from None
    stopped = stop_pids(state.get("nodes", []))
    path.unlink(missing_ok=True)
    if _json(args):
        print(json.dumps({"stopped": stopped}))
    else:
        Console().print(f"stopped {len(stopped)} node(s): {', '.join(stopped) or 'none running'}")
    return 0


def _partition(text: str) -> tuple[int, int, range]:
    """START_MS:END_MS:COUNT: the first COUNT nodes cut off from the rest."""
    try:
        start, end, count = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a partition is START_MS:END_MS:COUNT (three integers), not {text!r}"
        ) from None
    return start, end, range(count)


def _per_mille(text: str) -> int:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction like 0.05, not {text!r}") from None
    if not 0 <= x <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, not {text}")
    return round(x * 1000)


def cmd_sim(args: argparse.Namespace) -> int:
    """The simulator (node/_sim.py): real node cores and sync over a simulated
    network and clock, in this process."""
    import logging
    import time

    from learnmesh.node._sim import Simulation

    logging.getLogger("learnmesh").setLevel(logging.ERROR)  # a warning per ban and fork
    started = time.perf_counter()
    with Simulation(
        args.seed,
        args.nodes,
        degree=args.degree,
        loss_pm=args.loss,
        dup_pm=args.dup,
        sync_loss_pm=args.sync_loss,
        min_delay_ms=args.min_delay,
        max_delay_ms=args.max_delay,
        partitions=args.partition or (),
        actors=args.actors,
        spacing_ms=args.spacing,
        equivocations=args.equivocations,
        late_clocks=args.late_clocks,
        hostile=args.hostile,
        verify=not args.no_verify,
        store=args.store,
    ) as sim:
        report = sim.run(events=args.events, max_ms=args.max_ms)
    out = report.as_json()
    out["wall_s"] = round(time.perf_counter() - started, 3)
    if _json(args):
        print(json.dumps(out, indent=2))
        return 0 if report.converged else 1
    t = Table(title=f"simulation: {args.nodes} nodes, seed {args.seed}", show_header=False)
    verdict = "[green]yes[/]" if report.converged else "[red]no[/]"
    ttc = report.time_to_converge_ms
    rows = [
        ("converged", verdict),
        ("time to converge (simulated)", "-" if ttc is None else f"{ttc / 1000:.1f} s"),
        ("simulated time", f"{report.sim_ms / 1000:.1f} s"),
        ("wall time", f"{out['wall_s']:.2f} s"),
        ("events authored", str(report.events)),
        ("distinct digests", str(len(set(report.digests)))),
        ("pending (max per node)", str(max(report.pending))),
        ("forks (min..max per node)", f"{min(report.forks)}..{max(report.forks)}"),
    ]
    skip = {"seed", "nodes", "events", "expected", "digests", "pending", "forks", "held"}
    skip |= {"converged", "converged_at_ms", "sim_ms", "time_to_converge_ms", "wall_s"}
    rows += [(k.replace("_", " "), json.dumps(v)) for k, v in out.items() if k not in skip]
    for k, v in rows:
        t.add_row(k, v)
    Console().print(t)
    return 0 if report.converged else 1


def cmd_bench_propagation(args: argparse.Namespace) -> int:
    from ._bench import bench_propagation

    _term_as_interrupt()
    console = Console(stderr=True)
    out = bench_propagation(
        nodes=args.nodes,
        rate=args.rate,
        duration=args.duration,
        seed=args.seed,
        root=Path(args.dir) if args.dir else None,
        baseline=not args.no_baseline,
        log=lambda m: console.print(f"[dim]{m}[/]"),
    )
    _print_bench(args, out, "propagation")
    return 0


def cmd_bench_sync(args: argparse.Namespace) -> int:
    from ._bench import bench_sync

    _term_as_interrupt()
    console = Console(stderr=True)
    out = bench_sync(
        events=args.events,
        partition_events=args.partition_events,
        root=Path(args.dir) if args.dir else None,
        single_events=args.single_events,
        batch=args.batch,
        log=lambda m: console.print(f"[dim]{m}[/]"),
    )
    _print_bench(args, out, "sync")
    return 0


def _print_bench(args: argparse.Namespace, out: dict[str, Any], name: str) -> None:
    if _json(args):
        print(json.dumps(out, indent=2))
        return
    t = Table(title=f"bench {name}", show_header=False)
    for k, v in out.items():
        t.add_row(k, json.dumps(v) if isinstance(v, dict) else str(v))
    Console().print(t)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `devnet` and `bench` to the top-level parser's subcommands."""
    d = sub.add_parser(
        "devnet", help="many local nodes: scenarios, faults, a verdict"
    ).add_subparsers(dest="devnet_cmd", required=True)
    p = d.add_parser("run", help="run a scenario on a fresh local network and report")
    p.add_argument("--nodes", type=int, default=8)
    p.add_argument("--scenario", choices=SCENARIOS, default="classroom")
    p.add_argument("--faults", action="store_true", help="kill/restart, partition/heal, pause")
    p.add_argument("--duration", type=float, default=0.0, help="repeat rounds for this many s")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--report", help="write the JSON report here")
    p.add_argument("--dir", help="folder for the nodes' data (default: a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    p.set_defaults(func=cmd_run)
    p = d.add_parser("up", help="start a local network and leave it running")
    p.add_argument("--nodes", type=int, default=4)
    p.add_argument("--dir", default=str(_DEFAULT_UP_DIR))
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=cmd_up)
    p = d.add_parser("down", help="stop the network that `devnet up` started")
    p.add_argument("--dir", default=str(_DEFAULT_UP_DIR))
    p.set_defaults(func=cmd_down)
    p = d.add_parser(
        "sim", help="simulate many nodes in this process: real node cores, simulated network"
    )
    p.add_argument("--nodes", type=int, default=50)
    p.add_argument("--events", type=int, default=200, help="workload events to author")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--degree", type=int, default=4, help="links each node makes")
    p.add_argument("--loss", type=_per_mille, default=0, help="gossip loss, a fraction")
    p.add_argument("--dup", type=_per_mille, default=0, help="gossip duplication, a fraction")
    p.add_argument(
        "--sync-loss", type=_per_mille, default=0, help="sync frames lost (dead connections)"
    )
    p.add_argument("--min-delay", type=int, default=5, help="ms")
    p.add_argument("--max-delay", type=int, default=80, help="ms")
    p.add_argument(
        "--partition",
        type=_partition,
        action="append",
        metavar="START_MS:END_MS:COUNT",
        help="cut the first COUNT nodes off the rest for that window (repeatable)",
    )
    p.add_argument("--actors", type=int, default=12, help="members in the workload")
    p.add_argument("--spacing", type=int, default=100, help="ms between authored events")
    p.add_argument("--equivocations", type=int, default=0, help="authors that fork")
    p.add_argument("--late-clocks", type=int, default=0, help="nodes with a clock past the skew")
    p.add_argument("--hostile", type=int, default=0, help="nodes that send junk")
    p.add_argument("--max-ms", type=int, default=600_000, help="simulated time at most")
    p.add_argument("--no-verify", action="store_true", help="skip signature checks (faster)")
    p.add_argument("--store", choices=("file", "memory"), default="file")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    p.set_defaults(func=cmd_sim)

    b = _subcommands_of(sub, "bench", "benchmarks")
    p = b.add_parser("propagation", help="propagation and delivery at a steady event rate")
    p.add_argument("--nodes", type=int, default=20)
    p.add_argument("--rate", type=float, default=20.0, help="events per second, network-wide")
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--dir")
    p.set_defaults(func=cmd_bench_propagation)
    p = b.add_parser("sync", help="catch-up after missing many events; partition heal; memory")
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--partition-events", type=int, default=1_000)
    p.add_argument(
        "--single-events",
        type=int,
        default=1_000,
        help="of --events, how many are written one request each (the rest in batches)",
    )
    p.add_argument(
        "--batch", type=int, default=500, help="events per POST /api/events/batch (0: none)"
    )
    p.add_argument("--dir")
    p.set_defaults(func=cmd_bench_sync)
    from ._bench_sybil import register_bench as register_sybil_bench

    register_sybil_bench(b)
    from ._bench_recommend import register_bench as register_recommend_bench

    register_recommend_bench(b)
    from ._bench_soak import register_bench as register_soak_bench

    register_soak_bench(b)
    from ._bench_core import register_bench as register_core_bench

    register_core_bench(b)


def _subcommands_of(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    help: str,
) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    """The subcommands of `name`, joining a parser another module already added
    (`bench ingest` lives in node/_cli_offline.py) rather than clashing with it."""
    existing = sub.choices.get(name) if isinstance(sub.choices, dict) else None
    if isinstance(existing, argparse.ArgumentParser):
        for action in existing._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action
    made: argparse._SubParsersAction = sub.add_parser(name, help=help).add_subparsers(  # type: ignore[type-arg]
        dest=f"{name}_cmd", required=True
    )
    return made


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m learnmesh.devnet.cli`), for when the package's
    entry points are not installed (`pip install -e .` registers them)."""
    parser = argparse.ArgumentParser(prog="learnmesh")
    parser.add_argument("--json", action="store_true")
    register(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except USER_ERRORS as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted: every node was stopped[/]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
