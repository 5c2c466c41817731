"""The `learnmesh` command line: global options, the table of command modules, and
one-line errors (a user mistake never shows a traceback)."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from learnmesh.ledger import BlobError, LedgerBusyError, LedgerError, WrongNetworkError
from learnmesh.protocol import ProtocolError

from ._datadir import DataDir, DataDirError

# To add commands, write a module with `register(subparsers)` that adds parsers
# whose defaults carry `func=handler` (`handler(args) -> int`). The node's own
# modules are listed in COMMAND_MODULES; any other package adds its command groups
# through the entry-point group ENTRY_POINT_GROUP (in pyproject.toml:
# `[project.entry-points."learnmesh.commands"] name = "package.module"`), so this
# file names no other package, and a group whose package is absent is simply not
# listed. Handlers get `args.data_dir` (resolved), `args.data` (as given, or None)
# and `args.json`. A module may export `CliError` (or a tuple `USER_ERRORS`):
# raising one prints "error: <message>" and exits 2. Anything else unexpected
# prints one line too and exits 1 (LEARNMESH_DEBUG=1 re-raises).
__all__ = ["COMMAND_MODULES", "ENTRY_POINT_GROUP", "UserError", "build_parser", "main"]

# The node's own command modules, in help order (before any from entry points).
COMMAND_MODULES: tuple[str, ...] = (
    "learnmesh.node._cli_offline",
    "learnmesh.node._cli_node",
    "learnmesh.node._cli_client",
    "learnmesh.node._cli_credentials",
    "learnmesh.node._cli_disputes",
    "learnmesh.node._cli_messages",
    "learnmesh.node._cli_learning",
    "learnmesh.node._cli_recommend",
    "learnmesh.node._cli_moderation",
)
ENTRY_POINT_GROUP = "learnmesh.commands"

EXIT_USER = 2  # the command line or the data directory is wrong: fix and retry
EXIT_FAILED = 1  # the command ran and failed (verification found problems, I/O)


class UserError(Exception):
    """A mistake the user can fix; printed as one line."""


class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints usage plus a message; one line that names the command is enough.
        raise _ArgumentError(f"{message} (see: {self.prog} --help)")


def build_parser() -> tuple[argparse.ArgumentParser, tuple[type[BaseException], ...]]:
    """The parser, and the exception types that mean "user mistake"."""
    parser = _Parser(
        prog="learnmesh",
        description="learnmesh: a peer-to-peer bounty learning network node.",
    )
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="data directory (default: $LEARNMESH_HOME or ~/.learnmesh); accepted anywhere",
    )
    parser.add_argument(
        "--json", action="store_true", help="machine-readable output; accepted anywhere"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    user_errors: list[type[BaseException]] = [
        UserError,
        DataDirError,
        ProtocolError,
        WrongNetworkError,  # the wrong file or directory was named
        LedgerBusyError,  # the node is running: stop it or use the API
    ]
    for name in _command_modules():
        try:
            mod = importlib.import_module(name)
            mod.register(sub)
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                continue  # declared, but its package is not there: not listed
            print(f"warning: commands from {name} are unavailable: {exc}", file=sys.stderr)
            continue
        except Exception as exc:  # one broken module must not take every command down
            print(f"warning: commands from {name} are unavailable: {exc}", file=sys.stderr)
            continue
        declared = [getattr(mod, "CliError", None), *getattr(mod, "USER_ERRORS", ())]
        user_errors += [e for e in declared if isinstance(e, type) and issubclass(e, Exception)]
    return parser, tuple(user_errors)


def _command_modules() -> list[str]:
    """The node's own modules, then those that installed packages declare under
    ENTRY_POINT_GROUP (by entry name; each value is a module with `register`)."""
    names = list(COMMAND_MODULES)
    try:
        found = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=_ep_name)
    except Exception as exc:  # broken metadata must not take the node's own commands down
        print(f"warning: command plugins could not be listed: {exc}", file=sys.stderr)
        found = []
    for ep in found:
        module = ep.value.split(":", 1)[0].strip()
        if module and module not in names:
            names.append(module)
    return names


def _ep_name(ep: importlib.metadata.EntryPoint) -> str:
    return ep.name


def _globals(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Pull --data/--json from anywhere on the line, so both `learnmesh --json
    ledger show` and `learnmesh ledger show --json` work for every module."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--data")
    pre.add_argument("--json", action="store_true")
    return pre.parse_known_args(argv)


def _one_line(exc: BaseException) -> str:
    msg = exc.reason if isinstance(exc, ProtocolError) else str(exc)
    msg = msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
    return msg


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser, user_errors = build_parser()
    try:
        glob, rest = _globals(args_in)
        args = parser.parse_args(rest)
    except _ArgumentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER
    args.data = glob.data
    args.json = glob.json
    args.data_dir = DataDir.resolve(glob.data).root
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_USER
    try:
        return int(func(args))
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except user_errors as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USER
    except (LedgerError, BlobError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        if os.environ.get("LEARNMESH_DEBUG"):
            raise
        print(
            f"error: unexpected {type(exc).__name__}: {_one_line(exc)} "
            "(LEARNMESH_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILED


if __name__ == "__main__":
    # `python -m learnmesh.node.cli` runs this file as __main__, while command
    # modules import `learnmesh.node.cli`: run that copy, so the UserError they
    # raise is the one `main` catches (else a user's mistake read "unexpected").
    from learnmesh.node.cli import main as _main

    sys.exit(_main())
