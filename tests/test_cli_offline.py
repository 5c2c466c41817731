"""The offline CLI: init, keys, genesis, ledger show/verify/export/import, bench,
and one-line errors for user mistakes."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from learnmesh.ledger import Ledger
from learnmesh.node._datadir import DataDir, DataDirError
from learnmesh.node.cli import main
from learnmesh.protocol import KeyPair
from learnmesh.protocol._workload import Workload


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    rc, out, err = run(capsys, *argv, "--json")
    assert rc == 0, err
    return json.loads(out)


def assert_one_line_error(rc: int, err: str, match: str) -> None:
    assert rc in (1, 2)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert match in lines[0], lines[0]


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_init_creates_a_private_identity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "node"
    j = run_json(capsys, "--data", str(d), "init", "--name", "alice")
    assert j["account"].startswith("lm") and j["encrypted"] is False
    assert mode(d / "identity.key") == 0o600 and mode(d / "api.token") == 0o600
    assert (d / "config.json").exists() and (d / "blobs").is_dir() and (d / "logs").is_dir()
    assert DataDir(d).load_identity().account == j["account"]
    rc, _, err = run(capsys, "init", "--data", str(d))
    assert_one_line_error(rc, err, "refusing to overwrite")
    assert DataDir(d).identity().account == j["account"]


def test_learnmesh_home_is_the_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEARNMESH_HOME", str(tmp_path / "home"))
    j = run_json(capsys, "init")
    assert j["data_dir"] == str(tmp_path / "home")
    other = run_json(capsys, "init", "--data", str(tmp_path / "other"))  # --data wins
    assert other["data_dir"] == str(tmp_path / "other")


def test_encrypted_identity_and_key_backup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery staple\n")
    a, b = tmp_path / "a", tmp_path / "b"
    j = run_json(capsys, "--data", str(a), "init", "--passphrase-file", str(pw))
    assert j["encrypted"] is True
    assert "seed" not in json.loads((a / "identity.key").read_text())
    dd = DataDir(a)
    assert dd.load_identity(b"correct horse battery staple").account == j["account"]
    with pytest.raises(DataDirError, match="wrong passphrase"):
        dd.load_identity(b"wrong")
    with pytest.raises(DataDirError, match="passphrase is needed"):
        dd.load_identity()
    assert run_json(capsys, "--data", str(a), "key", "show")["account"] == j["account"]

    backup = tmp_path / "backup.key"
    run_json(capsys, "--data", str(a), "key", "export", str(backup))
    assert mode(backup) == 0o600
    imported = run_json(capsys, "--data", str(b), "key", "import", str(backup))
    assert imported["account"] == j["account"]
    assert DataDir(b).restored_marker.exists()  # the node syncs its own head first
    run_json(capsys, "--data", str(b), "key", "import", str(backup))  # same key: fine

    c = tmp_path / "c"
    run_json(capsys, "--data", str(c), "init")
    rc, _, err = run(capsys, "--data", str(c), "key", "import", str(backup))
    assert_one_line_error(rc, err, "already holds another identity")


def test_genesis_create_show_join(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    me = run_json(capsys, "--data", str(a), "init")["account"]
    friend = KeyPair(bytes(range(32))).account
    out = tmp_path / "community.json"
    g = run_json(
        capsys,
        "--data",
        str(a),
        "genesis",
        "create",
        "--name",
        "maths-club",
        "--alloc",
        "me=1000",
        "--alloc",
        f"{friend}=500",
        "--trusted",
        "me",
        "--param",
        "min_quorum=2",
        "--out",
        str(out),
        "--created-ms",
        "1700000000000",
    )
    assert g["total_supply"] == 1500 and g["allocations"] == {me: 1000, friend: 500}
    assert g["trusted"] == [me] and g["params"]["min_quorum"] == 2
    shown = run_json(capsys, "--data", str(a), "genesis", "show")
    assert shown["network_id"] == g["network_id"]
    joined = run_json(capsys, "--data", str(b), "genesis", "join", str(out))
    assert joined["network_id"] == g["network_id"]
    assert json.loads((b / "genesis.json").read_text())["name"] == "maths-club"

    other = tmp_path / "other.json"
    other.write_text(json.dumps(Workload(seed=3).genesis.to_json()))
    rc, _, err = run(capsys, "--data", str(b), "genesis", "join", str(other))
    assert_one_line_error(rc, err, "already belongs to network 'maths-club'")
    rc, _, err = run(capsys, "--data", str(b), "genesis", "create", "--name", "x", "--alloc", "bad")
    assert_one_line_error(rc, err, "--alloc wants ACCOUNT=AMOUNT")
    rc, _, err = run(
        capsys, "--data", str(b), "genesis", "create", "--name", "x", "--alloc", "lmnotanaccount=5"
    )
    assert_one_line_error(rc, err, "account id")
    rc, _, err = run(
        capsys,
        "--data",
        str(b),
        "genesis",
        "create",
        "--name",
        "x",
        "--alloc",
        f"{friend}=5",
        "--param",
        "no_such=1",
    )
    assert_one_line_error(rc, err, "unknown parameters")


@pytest.fixture(scope="module")
def workload() -> tuple[Workload, list[bytes]]:
    w = Workload(seed=21)
    return w, [e.raw for e in w.events(600)]


def joined_dir(tmp_path: Path, name: str, w: Workload) -> Path:
    d = tmp_path / name
    DataDir(d).write_genesis(w.genesis)
    return d


def test_ledger_show_verify_export_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], workload: tuple[Workload, list[bytes]]
) -> None:
    w, raws = workload
    a = joined_dir(tmp_path, "a", w)
    with DataDir(a).open_ledger() as ledger:
        ledger.append(raws[:500])
        ledger.append(raws[550:])  # leaves some pending
        digest, pending = ledger.digest().hex(), ledger.pending_count()
    assert pending > 0
    show = run_json(capsys, "--data", str(a), "ledger", "show")
    assert show["events"] == 500 and show["pending"] == pending and show["digest"] == digest
    assert sum(show["kinds"].values()) == 500 and show["forks"] == {}
    assert show["total_supply"] == w.genesis.total_supply
    assert all(k.startswith("lm") for k in show["balances"])
    assert all(k.startswith("lm") for k in show["heads"])
    rc, text, _ = run(capsys, "--data", str(a), "ledger", "show")  # the human form too
    assert rc == 0 and digest in text

    rep = run_json(capsys, "ledger", "verify", "--full", "--data", str(a))
    assert rep["ok"] and rep["events"] == 500 and rep["digest"] == digest
    quick = run_json(capsys, "ledger", "verify", "--quick", "--data", str(a))
    assert quick["ok"] and quick["events"] == 500 and quick["digest"] == digest
    rc, text, _ = run(capsys, "--data", str(a), "ledger", "verify", "--quick")
    assert rc == 0 and "each chain's last signature" in text
    assert rep["signature_seconds"] > 0 and quick["signature_seconds"] == 0
    rc, text, _ = run(capsys, "--data", str(a), "ledger", "verify", "--full")
    assert rc == 0 and "every signature" in text and "then the fold" in text

    dump = tmp_path / "ledger.lmx"
    ex = run_json(capsys, "--data", str(a), "ledger", "export", str(dump))
    assert ex["events"] == 500 and ex["pending"] == pending
    b = joined_dir(tmp_path, "b", w)
    im = run_json(capsys, "--data", str(b), "ledger", "import", str(dump))
    assert im["applied"] == 500 and im["pending"] == pending and im["digest"] == digest

    c = joined_dir(tmp_path, "c", Workload(seed=22))
    rc, _, err = run(capsys, "--data", str(c), "ledger", "import", str(dump))
    assert_one_line_error(rc, err, "is from network")
    rc, _, err = run(capsys, "--data", str(tmp_path / "empty"), "ledger", "import", str(dump))
    assert_one_line_error(rc, err, "is network 'workload': join it first")


def test_user_mistakes_print_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], workload: tuple[Workload, list[bytes]]
) -> None:
    empty = tmp_path / "empty"
    rc, _, err = run(capsys, "--data", str(empty), "ledger", "show")
    assert_one_line_error(rc, err, "no data directory")
    empty.mkdir()
    rc, _, err = run(capsys, "--data", str(empty), "ledger", "show")
    assert_one_line_error(rc, err, "no genesis")
    rc, _, err = run(capsys, "ledger")
    assert_one_line_error(rc, err, "required")
    rc, _, err = run(capsys, "ledger", "show", "--limit", "many")
    assert_one_line_error(rc, err, "invalid int value")
    rc, _, err = run(capsys, "--data", str(empty), "genesis", "join", str(tmp_path / "nope.json"))
    assert_one_line_error(rc, err, "no such file")
    d = joined_dir(tmp_path, "busy", workload[0])
    with DataDir(d).open_ledger():
        rc, _, err = run(capsys, "--data", str(d), "ledger", "verify")
        assert_one_line_error(rc, err, "in use by another process")


def test_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "learnmesh.node.cli",
            "--data",
            str(tmp_path / "x"),
            "ledger",
            "show",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2 and p.stdout == ""
    assert_one_line_error(p.returncode, p.stderr, "no data directory")


def test_a_command_modules_mistake_is_a_user_error_under_python_m(tmp_path: Path) -> None:
    """`python -m learnmesh.node.cli` (how the harness runs the CLI): a mistake
    a command module raises is one line and exit 2, not "unexpected UserError"."""
    p = subprocess.run(
        [sys.executable, "-m", "learnmesh.node.cli", "genesis", "create", "--name", "x",
         "--out", str(tmp_path / "g.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2 and "unexpected" not in p.stderr
    assert_one_line_error(p.returncode, p.stderr, "at least one --alloc")


def test_bench_ingest_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    j = run_json(capsys, "--data", str(tmp_path), "bench", "ingest", "--events", "2000")
    for key in ("events", "ingest_events_per_s", "replay_events_per_s", "peak_rss_mb"):
        assert key in j
    assert j["events"] == 2000 and j["ingest_events_per_s"] > 0 and j["replay_events_per_s"] > 0
    assert j["machine"]["cpu_count"] >= 1 and j["machine"]["python"]
    assert j["verify_per_s_1core"] > 0
    # every core at once, a process each (how much more than one core is this
    # machine's own figure, and a loaded machine's: not compared here)
    assert j["verify_per_s_all_cores"] > 0 and j["verify_all_cores_vs_1core"] > 0
    assert j["replay_signatures_vs_all_cores_verify"] > 0
    assert all(r["verify_ok"] and r["not_applied"] == 0 for r in j["runs"].values())
    assert j["replay_signatures_events_per_s"] > j["replay_events_per_s"] > 0
    assert all(0 < r["replay_signatures_s"] < r["replay_s"] for r in j["runs"].values())
    # the same events taken in as from peers (no flush per batch), all applied
    assert all(r["ingest_from_peers_events_per_s"] > 0 for r in j["runs"].values())
    assert j["ingest_from_peers_vs_1core_verify_1thread"] > 0
    # where the ingest's CPU went: one thread does it all; with verify threads
    # the signature checks move to them, and their waiting share is a fraction
    one = j["runs"]["1"]["ingest_cpu"]
    assert one["main_thread_us_per_event"] > 0 and one["verify_threads_waiting_share"] == 0
    for r in j["runs"].values():
        c = r["ingest_cpu"]
        assert c["cores_busy"] > 0 and 0 <= c["verify_threads_waiting_share"] < 1
        if r["threads"] > 1:
            assert c["other_threads_us_per_event"] > 0
            assert c["main_thread_us_per_event"] < one["main_thread_us_per_event"]
    # The scratch ledger is removed; the generated workload stays cached for the next run.
    assert not list((tmp_path / "bench").glob("*.db"))
    assert list((tmp_path / "bench" / "cache").glob("workload-*"))


def test_ledger_opened_by_the_cli_is_the_data_dir_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], workload: tuple[Workload, list[bytes]]
) -> None:
    w, raws = workload
    d = joined_dir(tmp_path, "n", w)
    with Ledger.open(d / "ledger.db", w.genesis) as ledger:
        ledger.append(raws[:50])
    assert run_json(capsys, "--data", str(d), "ledger", "show")["events"] == 50
