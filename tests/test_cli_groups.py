"""The CLI imports only the module of the command it runs (node/cli.py
_GROUP_MODULE): the table must name, for each word, the one module that
registers it, and a narrowed parser must parse a line as the full one does."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from collections import Counter

from learnmesh.node import cli


def _groups(module: str) -> list[str]:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    importlib.import_module(module).register(sub)
    return list(sub.choices)


def test_every_word_in_the_table_is_registered_by_that_module_alone() -> None:
    owners: Counter[str] = Counter()
    by_module = {m: _groups(m) for m in cli._command_modules()}
    for groups in by_module.values():
        owners.update(groups)
    for word, module in cli._GROUP_MODULE.items():
        assert word in by_module[module], f"{module} does not register {word!r}"
        assert owners[word] == 1, f"{word!r} is registered by more than one module"


def test_every_command_of_the_node_s_own_modules_is_in_the_table() -> None:
    # A new command word left out of the table would still work (full parser),
    # only slower; this keeps the table whole.
    shared = {"bench"}  # node/_cli_offline.py and devnet/cli.py both add to it
    for module in cli.COMMAND_MODULES:
        for word in _groups(module):
            assert word in cli._GROUP_MODULE or word in shared, word


def test_a_narrowed_line_parses_as_with_the_full_parser() -> None:
    line = ["ledger", "show", "--limit", "5"]
    full, _ = cli.build_parser()
    narrow, _ = cli.build_parser([cli._GROUP_MODULE["ledger"]])
    a, b = vars(full.parse_args(line)), vars(narrow.parse_args(line))
    assert a == b


def test_node_start_does_not_import_the_devnet_or_the_benchmarks() -> None:
    code = (
        "import sys\n"
        "from learnmesh.node import cli\n"
        "sys.argv = ['learnmesh', 'node', 'start', '--help']\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('learnmesh.devnet', "
        "'learnmesh.node._sim', 'learnmesh.node._bench_gossip', 'learnmesh.node._cli_client')))\n"
        "print('imported:' + ','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert "usage: learnmesh node start" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "imported:"


def test_an_unknown_word_still_gets_the_full_parser_s_error() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "learnmesh.node.cli", "nosuchcommand"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "invalid choice: 'nosuchcommand'" in out.stderr
    assert "devnet" in out.stderr  # the choices listed come from every module
