"""Versioned migrations of the store schema.  Add a step; never edit an applied one.

A new store is created in the latest shape (:mod:`samband.store.schema`) and stamped
with the latest version; an existing store runs every step above its version, in one
transaction per step.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from sqlalchemy import Connection, Table, func, inspect, select, update

from samband.store import schema as s


def _v2(conn: Connection) -> None:
    """Fewer index writes per record: snapshots, merge keys and intents are clustered on
    their primary key (SQLite ``WITHOUT ROWID``); the dirty index holds only the dirty
    snapshots, ordered by id; a link's uniqueness indexes lead with the ref, so they also
    serve lookups by ref and the two extra ref indexes go.

    The rebuild creates the tables in today's shape; the dirty marks move to their queue
    first (see :func:`_v3`), so a store of version 1 keeps them."""
    if conn.dialect.name == "sqlite":
        _move_dirty_marks(conn)
        # the intents are re-created by version 3
        for table in (s.snapshots, s.links, s.match_keys):
            _rebuild_sqlite(conn, table)
        return
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_samband_snapshots_dirty")
    for index in s.snapshots.indexes:
        index.create(conn)
    conn.exec_driver_sql(
        "ALTER TABLE samband_links"
        " DROP CONSTRAINT IF EXISTS uq_samband_links_source,"
        " DROP CONSTRAINT IF EXISTS uq_samband_links_target,"
        " ADD CONSTRAINT uq_samband_links_source UNIQUE (source_ref, dataflow),"
        " ADD CONSTRAINT uq_samband_links_target UNIQUE (target_ref, dataflow)"
    )
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_samband_links_target")
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_samband_links_source")


def _v3(conn: Connection) -> None:
    """Fewer rows per created record.  The dirty marks leave the snapshots for a queue
    table of their own: clearing a mark no longer rewrites the snapshot (its data and
    all).  Create intents are kept one row per chunk instead of one per record."""
    if _move_dirty_marks(conn):
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_samband_snapshots_dirty")
        if conn.dialect.name == "sqlite":
            _rebuild_sqlite(conn, s.snapshots)
        else:
            conn.exec_driver_sql("ALTER TABLE samband_snapshots DROP COLUMN dirty")
    _intents_by_chunk(conn)


def _intents_by_chunk(conn: Connection) -> None:
    """Re-create the intents table with one row per chunk; each open intent of the old
    table (one row per record) becomes a chunk of one."""
    old = conn.exec_driver_sql(
        'SELECT "key", dataflow, source_ref, target_system, target_etype, external_ref,'
        ' "values", run_id, created_at FROM samband_intents'
    ).fetchall()
    _ddl(conn, "DROP TABLE {}", s.intents.name)
    s.intents.create(conn)
    for key, flow, source_ref, system, etype, external_ref, values, run_id, at in old:
        item = {
            "key": key,
            "source_ref": source_ref,
            "external_ref": external_ref,
            "values": orjson.loads(values),
        }
        conn.execute(
            s.intents.insert().values(
                key=uuid.uuid4().hex,
                dataflow=flow,
                target_system=system,
                target_etype=etype,
                items=orjson.dumps([item]).decode(),
                run_id=run_id,
                created_at=at,
            )
        )


def _v4(conn: Connection) -> None:
    """Config changes keep links and merge keys right: the dataflows the links belong to
    (so a renamed dataflow keeps its links), and which merge-criteria indexes are built
    (indexes are now named after their properties and normalisation, so every index is
    rebuilt once, from the stored snapshots, by the first run after this step)."""
    s.dataflows.create(conn, checkfirst=True)
    s.match_indexes.create(conn, checkfirst=True)
    conn.exec_driver_sql("DELETE FROM samband_match_keys")  # under their old names
    now = datetime.now(UTC).isoformat()
    rows = conn.exec_driver_sql(
        "SELECT dataflow, MIN(source_ref), MIN(target_ref) FROM samband_links GROUP BY dataflow"
    ).fetchall()
    for key, source_ref, target_ref in rows:
        conn.execute(
            s.dataflows.insert().values(
                key=key,
                source=".".join(source_ref.split(":", 2)[:2]),
                target=".".join(target_ref.split(":", 2)[:2]),
                updated_at=now,
            )
        )


def _v5(conn: Connection) -> None:
    """A snapshot to be read again before it is planned is flagged in a column of its
    own (``refresh``) instead of by the text "refresh" in place of its content hash; such
    a snapshot keeps no hash (whatever is read next is a change)."""
    columns = {c["name"] for c in inspect(conn).get_columns(s.snapshots.name)}
    if "refresh" not in columns:  # a store rebuilt by an earlier step has it already
        no = "0" if conn.dialect.name == "sqlite" else "false"
        conn.exec_driver_sql(
            f"ALTER TABLE samband_snapshots ADD COLUMN refresh BOOLEAN NOT NULL DEFAULT {no}"
        )
    conn.execute(
        update(s.snapshots).where(s.snapshots.c.hash == "refresh").values(refresh=True, hash="")
    )


def _v6(conn: Connection) -> None:
    """A dataflow records a digest of what decides which records flow and how they are
    linked (``linking``); a store from before knows none, and the first run records it
    without planning anything again."""
    columns = {c["name"] for c in inspect(conn).get_columns(s.dataflows.name)}
    if "linking" not in columns:
        conn.exec_driver_sql("ALTER TABLE samband_dataflows ADD COLUMN linking VARCHAR(40)")


def _v7(conn: Connection) -> None:
    """Each entity type keeps what its last complete read returned, and a read held back
    because it returned far fewer records (see :mod:`samband.engine.fullscan`).  A store
    from before knows no counts: the first complete read of each type is compared with the
    records the store holds."""
    s.full_scans.create(conn, checkfirst=True)


def _v8(conn: Connection) -> None:
    """Acting on what a run shows: a conflict keeps the side a user chose for it
    (``resolution``) and when it was applied; a dead letter can be dismissed; the pairs a
    user unlinked are kept (``samband_unlinked``) so no run links them again."""
    added = {
        s.conflicts.name: (("resolution", 20), ("resolved_at", 40), ("applied_at", 40)),
        s.dead_letters.name: (("dismissed_at", 40),),
    }
    for table, columns in added.items():
        present = {c["name"] for c in inspect(conn).get_columns(table)}
        for column, length in columns:
            if column not in present:
                size = "(20)" if length == 20 else "(40)"
                _ddl(conn, "ALTER TABLE {} ADD COLUMN {} VARCHAR" + size, table, column)
    s.unlinked.create(conn, checkfirst=True)


def _v9(conn: Connection) -> None:
    """Per-dataflow controls (pause, writes to a side, full sync), the records a dataflow
    has still to plan, and the baseline of "only new records"."""
    for table in (s.dataflow_controls, s.dataflow_held, s.dataflow_baseline):
        table.create(conn, checkfirst=True)


def _v11(conn: Connection) -> None:
    """Records are searched by their values (see :mod:`samband.store.search`): every live
    snapshot is queued for its search terms, which the next search or service run makes."""
    s.search_terms.create(conn, checkfirst=True)
    s.search_queue.create(conn, checkfirst=True)
    conn.exec_driver_sql(
        "INSERT INTO samband_search_queue (system, etype, rid, hash)"
        " SELECT system, etype, rid, hash FROM samband_snapshots WHERE deleted = "
        + ("false" if conn.dialect.name == "postgresql" else "0")
        + " ON CONFLICT DO NOTHING"
    )


def _v13(conn: Connection) -> None:
    """The links are indexed by dataflow: a count per dataflow (the overview, `samband
    status`, /metrics) reads the index, not every link."""
    for index in s.links.indexes:
        if index.name == "ix_samband_links_dataflow":
            index.create(conn, checkfirst=True)


def _move_dirty_marks(conn: Connection) -> bool:
    """Create the dirty queue and copy the snapshots' dirty marks into it; False when the
    snapshots have no dirty column (any more)."""
    s.dirty.create(conn, checkfirst=True)
    columns = {c["name"] for c in inspect(conn).get_columns(s.snapshots.name)}
    if "dirty" not in columns:
        return False
    conn.exec_driver_sql(
        "INSERT INTO samband_dirty (system, etype, rid, seq)"
        " SELECT system, etype, rid, dirty FROM samband_snapshots WHERE dirty > 0"
    )
    return True


def _lock(conn: Connection) -> None:
    """Hold the store's migration lock until the transaction ends.  On SQLite, the write
    lock of an explicit transaction (Python's sqlite3 would also run DDL outside one, and
    a crash half-way through a rebuild must leave the store as it was)."""
    if conn.dialect.name == "sqlite":
        if not conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        return
    conn.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))


MIGRATION_LOCK = 0x53616D62616E64  # "Samband": the advisory lock id of schema changes


def _rebuild_sqlite(conn: Connection, table: Table) -> None:
    """Re-create ``table`` in its current shape and copy every row over (SQLite cannot
    change a table's storage or constraints in place)."""
    old = f"{table.name}_before_migration"
    _ddl(conn, "ALTER TABLE {} RENAME TO {}", table.name, old)
    for index in inspect(conn).get_indexes(old):
        _ddl(conn, "DROP INDEX {}", str(index["name"]))
    kept = {c["name"] for c in inspect(conn).get_columns(old)}
    table.create(conn)
    # a column added since takes its default
    names = [c.name for c in table.columns if c.name in kept]
    columns = "{}" + ", {}" * (len(names) - 1)
    _ddl(
        conn,
        f"INSERT INTO {{}} ({columns}) SELECT {columns} FROM {{}}",
        table.name,
        *names,
        *names,
        old,
    )
    _ddl(conn, "DROP TABLE {}", old)


def _ddl(conn: Connection, template: str, *identifiers: str) -> None:
    """A statement whose ``{}`` are identifiers, quoted by the dialect (never values)."""
    quote = conn.dialect.identifier_preparer.quote
    conn.exec_driver_sql(template.format(*(quote(name) for name in identifiers)))


MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (2, _v2),
    (3, _v3),
    (4, _v4),
    (5, _v5),
    (6, _v6),
    (7, _v7),
    (8, _v8),
    (9, _v9),
    (11, _v11),
    (13, _v13),
]
LATEST = MIGRATIONS[-1][0]


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table(s.schema_version.name):
        return 0
    value = conn.execute(
        select(s.schema_version.c.version).order_by(s.schema_version.c.version.desc())
    ).first()
    return int(value[0]) if value else 0


def migrate(conn: Connection) -> int:
    """Bring the schema to the latest version; return the version applied.  The caller
    commits.  Processes opening the same store at once take turns (a lock held until that
    commit), so a store is created or migrated once."""
    if current_version(conn) == LATEST:
        return LATEST
    _lock(conn)
    version = current_version(conn)
    if version > LATEST:
        from samband.errors import StoreError

        raise StoreError(
            f"the store has schema version {version}, newer than this samband ({LATEST}); "
            "upgrade samband"
        )
    if version == 0:
        s.metadata.create_all(conn)
        _stamp(conn, LATEST)
        return LATEST
    for number, step in MIGRATIONS:
        if number > version:
            step(conn)
            _stamp(conn, number)
    return LATEST


def _stamp(conn: Connection, number: int) -> None:
    conn.execute(
        s.schema_version.insert().values(version=number, applied_at=datetime.now(UTC).isoformat())
    )
