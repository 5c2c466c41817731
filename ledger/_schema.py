"""The on-disk schema: tables, append-only triggers and numbered migrations."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    insert,
    select,
)
from sqlalchemy import func as sqlfunc

from ._errors import LedgerError

# A database records each migration it ran in `schema_version`; opening runs the
# missing ones in order, each in its own transaction, so an older file upgrades.
__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "events",
    "fork_proofs",
    "meta",
    "migrate",
    "pending",
    "rejected",
    "schema_version",
]

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_ms", BigInteger, nullable=False),
)

# key -> value: "genesis" (canonical genesis bytes), "network" (its id).
meta = Table(
    "meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

# Applied events; idx is the apply order, which is a valid causal order to replay.
# void_code/void_reason are what the fold said when the event was applied; a fork
# found later can void it afterwards (the live answer is in the replica's state).
events = Table(
    "events",
    metadata,
    # INTEGER on SQLite so that idx is the rowid (the table is stored in apply order).
    Column(
        "idx", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    ),
    Column("id", LargeBinary(32), nullable=False, unique=True),
    Column("author", LargeBinary(32), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("kind", Integer, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("void_code", Text, nullable=True),
    Column("void_reason", Text, nullable=True),
)
Index("events_author_seq", events.c.author, events.c.seq)

# Verified events whose prev or refs are not applied yet. Rows leave this table
# (delete is allowed here) in the same transaction that writes them to events.
pending = Table(
    "pending",
    metadata,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("id", LargeBinary(32), nullable=False, unique=True),
    Column("raw", LargeBinary, nullable=False),
)

# Two signed events at one (author, seq); `key` dedupes a pair in either order.
fork_proofs = Table(
    "fork_proofs",
    metadata,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("key", LargeBinary(32), nullable=False, unique=True),
    Column("author", LargeBinary(32), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("first", LargeBinary, nullable=False),
    Column("second", LargeBinary, nullable=False),
)

# Signed events refused for a bad prev. The replica keeps them as fork evidence
# (a claim at their (author, seq)), so a restart must see them again.
rejected = Table(
    "rejected",
    metadata,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("id", LargeBinary(32), nullable=False, unique=True),
    Column("raw", LargeBinary, nullable=False),
)


def _append_only(conn: Connection, table: str) -> None:
    """Refuse UPDATE and DELETE in the database itself, not only in our code.
    (Someone with the file can still drop the trigger: verify() is the real check.)"""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        for op in ("UPDATE", "DELETE"):
            conn.exec_driver_sql(
                f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
    elif dialect == "postgresql":
        # Not exercised by the tests yet: written so the schema stays portable.
        conn.exec_driver_sql(
            "CREATE OR REPLACE FUNCTION learnmesh_append_only() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END; $$ LANGUAGE plpgsql"
        )
        conn.exec_driver_sql(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION learnmesh_append_only()"
        )
    else:
        raise NotImplementedError(f"no append-only trigger for the {dialect} dialect")


# A migration that changes an existing table must issue its own DDL; creating
# from the Table objects above is only right for tables a migration introduces.


def _v1(conn: Connection) -> None:
    """Genesis, events (append-only) and pending events."""
    for t in (meta, events, pending):
        t.create(conn)
    _append_only(conn, "events")


def _v2(conn: Connection) -> None:
    """Fork proofs get a table of their own (append-only)."""
    fork_proofs.create(conn)
    _append_only(conn, "fork_proofs")


def _v3(conn: Connection) -> None:
    """Events rejected for a bad prev, kept as fork evidence (append-only)."""
    rejected.create(conn)
    _append_only(conn, "rejected")


MIGRATIONS: list[Callable[[Connection], None]] = [_v1, _v2, _v3]
LATEST_VERSION = len(MIGRATIONS)


def current_version(conn: Connection) -> int:
    v = conn.execute(select(sqlfunc.max(schema_version.c.version))).scalar()
    return int(v or 0)


def migrate(engine: Engine, now_ms: int) -> tuple[int, int]:
    """Run the missing migrations; returns (version before, version after)."""
    with engine.begin() as conn:
        schema_version.create(conn, checkfirst=True)
        before = current_version(conn)
    if before > LATEST_VERSION:
        raise LedgerError(
            f"the database has schema version {before}, newer than this program's "
            f"{LATEST_VERSION}: upgrade learnmesh"
        )
    for version in range(before + 1, LATEST_VERSION + 1):
        # One transaction per step: a crash leaves the file at a known version.
        with engine.begin() as conn:
            MIGRATIONS[version - 1](conn)
            conn.execute(insert(schema_version).values(version=version, applied_ms=now_ms))
    return before, LATEST_VERSION
