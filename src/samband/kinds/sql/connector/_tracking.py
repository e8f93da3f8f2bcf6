"""Change tracking for ``kind: sql`` tables: triggers and a change log.

``samband sql install-tracking`` creates, in the tracked table's schema:

* ``samband_tracking(table_id, table_name, installed_at)`` — one row per tracked table;
  the integer ``table_id`` names the triggers and fills the log, so no table name is ever
  written into trigger text as a literal;
* ``samband_changes(seq, table_id, row_id, op, changed_at)`` — one row per INSERT (I),
  UPDATE (U) and DELETE (D) made by *any* program;
* triggers on the table that stamp the change column (when it is a timestamp; the column
  is added when missing) and append to the change log; on PostgreSQL they also
  ``pg_notify('samband_changes', 'schema.table')``, which ``samband serve`` listens to.

Reads of a tracked table follow the log: ``seq > cursor seq`` or ``changed_at > cursor
time - overlap`` (sequence numbers are handed out before commit, so a transaction that
commits late is still seen), then fetch the rows named there; a row that is gone is a
deletion.  The cursor is ``log:<seq>:<iso time>``.

The log is pruned as it is read: entries the reader has passed that are older than the
system's ``keep_changes`` (7 days by default) are deleted, and a marker entry (op ``P``,
``row_id`` = the last sequence number pruned) is left, so a reader whose cursor is older
(another store, a store restored from a backup) knows its place is gone and reads the
table in full instead.  The newest entry is never pruned: SQLite would hand its sequence
number out again.

Trigger DDL cannot take parameters; it is built only from identifiers quoted by the
dialect's own quoting (``IdentifierPreparer``) and from integers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    inspect,
    or_,
    select,
)
from sqlalchemy import types as sqltypes
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine

from samband.kinds.sql.connector._schema import reflect_table, to_db_datetime

if TYPE_CHECKING:
    from samband.kinds.sql.connector._schema import TableSpec

#: PostgreSQL: the triggers also ``pg_notify`` this channel with ``schema.table`` (delivered
#: at commit, once per table and transaction), for ``samband serve`` to LISTEN on
NOTIFY_CHANNEL = "samband_changes"

TRACKING = "samband_tracking"
CHANGES = "samband_changes"
_PREFIX = "log:"
PRUNED = "P"  # op of a marker entry: entries up to row_id (a seq) were pruned
_TIMESTAMP = DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_SEQ = BigInteger().with_variant(Integer(), "sqlite")


@dataclass(frozen=True)
class Entry:
    seq: int
    row_id: str
    op: str
    changed_at: datetime


def log_tables(schema: str | None) -> tuple[Table, Table]:
    metadata = MetaData(schema=schema)
    tracking = Table(
        TRACKING,
        metadata,
        Column("table_id", Integer, primary_key=True, autoincrement=True),
        Column("table_name", String(255), nullable=False, unique=True),
        Column("installed_at", _TIMESTAMP, nullable=False),
    )
    changes = Table(
        CHANGES,
        metadata,
        Column("seq", _SEQ, primary_key=True, autoincrement=True),
        Column("table_id", Integer, nullable=False),
        Column("row_id", String(255), nullable=False),
        Column("op", String(1), nullable=False),
        Column("changed_at", _TIMESTAMP, nullable=False),
        Index("samband_changes_table_seq", "table_id", "seq"),
        Index("samband_changes_table_time", "table_id", "changed_at"),
    )
    return tracking, changes


# -- reading ----------------------------------------------------------------------------
def table_id(engine: Engine, spec: TableSpec) -> int | None:
    """The tracking id of the entity type's table, or None when it is not tracked."""
    if not spec.table or not inspect(engine).has_table(TRACKING, schema=spec.schema):
        return None
    tracking, _ = log_tables(spec.schema)
    with engine.connect() as conn:
        value = conn.execute(
            select(tracking.c.table_id).where(tracking.c.table_name == spec.table)
        ).scalar()
    return int(value) if value is not None else None


def _aware(value: datetime) -> datetime:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def log_position(conn: Connection, spec: TableSpec, tid: int) -> tuple[int, datetime]:
    """Where the log of a table stands now."""
    _, changes = log_tables(spec.schema)
    row = conn.execute(
        select(func.max(changes.c.seq), func.max(changes.c.changed_at)).where(
            changes.c.table_id == tid
        )
    ).first()
    if row is None or row[0] is None:
        return 0, datetime.now(UTC)
    return int(row[0]), _aware(row[1])


def log_entries(
    conn: Connection,
    spec: TableSpec,
    tid: int,
    seq: int,
    since: datetime,
    after_seq: int | None,
    limit: int,
) -> list[Entry]:
    _, changes = log_tables(spec.schema)
    stmt = (
        select(changes.c.seq, changes.c.row_id, changes.c.op, changes.c.changed_at)
        .where(changes.c.table_id == tid)
        .where(changes.c.op != PRUNED)
        .where(
            or_(
                changes.c.seq > seq,
                changes.c.changed_at > to_db_datetime(changes.c.changed_at, since),
            )
        )
        .order_by(changes.c.seq)
        .limit(limit)
    )
    if after_seq is not None:
        stmt = stmt.where(changes.c.seq > after_seq)
    return [Entry(int(r[0]), str(r[1]), str(r[2]), _aware(r[3])) for r in conn.execute(stmt)]


def pruned_past(conn: Connection, spec: TableSpec, tid: int, seq: int) -> bool:
    """Whether log entries after ``seq`` were pruned (a reader at ``seq`` lost its place)."""
    _, changes = log_tables(spec.schema)
    marks = conn.execute(
        select(changes.c.row_id).where(
            changes.c.table_id == tid, changes.c.op == PRUNED, changes.c.seq > seq
        )
    ).scalars()
    return any(int(through) > seq for through in marks)


def prune(conn: Connection, spec: TableSpec, tid: int, read_to: int, before: datetime) -> int:
    """Delete the entries of a table that a reader at ``read_to`` has passed and that are
    older than ``before``, and mark how far; return how many were deleted."""
    _, changes = log_tables(spec.schema)
    newest = conn.execute(
        select(func.max(changes.c.seq)).where(
            changes.c.table_id == tid,
            changes.c.seq <= read_to,
            changes.c.changed_at < to_db_datetime(changes.c.changed_at, before),
        )
    ).scalar()
    if newest is None or int(newest) <= 1:
        return 0
    through = int(newest) - 1  # the newest stays (see the module's notes)
    count = conn.execute(
        delete(changes).where(changes.c.table_id == tid, changes.c.seq <= through)
    ).rowcount
    if count:
        conn.execute(
            insert(changes).values(
                table_id=tid,
                row_id=str(through),
                op=PRUNED,
                changed_at=to_db_datetime(changes.c.changed_at, _now()),
            )
        )
    return int(count or 0)


def advance(current: tuple[int, datetime], entries: Sequence[Entry]) -> tuple[int, datetime]:
    seq, at = current
    for entry in entries:
        seq, at = max(seq, entry.seq), max(at, entry.changed_at)
    return seq, at


def format_cursor(position: tuple[int, datetime]) -> str:
    return f"{_PREFIX}{position[0]}:{position[1].astimezone(UTC).isoformat()}"


def parse_cursor(cursor: str | None) -> tuple[int, datetime] | None:
    if not cursor or not cursor.startswith(_PREFIX):
        return None
    seq, _, at = cursor[len(_PREFIX) :].partition(":")
    try:
        return int(seq), _aware(datetime.fromisoformat(at))
    except ValueError:
        return None


# -- installing ---------------------------------------------------------------------------
def _now_sql(dialect: str, column: Column[Any] | None) -> str:
    """The SQL expression for 'now, in UTC' in the form ``column`` holds."""
    if dialect == "postgresql":
        aware = column is None or bool(getattr(column.type, "timezone", False))
        return "clock_timestamp()" if aware else "(clock_timestamp() AT TIME ZONE 'UTC')"
    if dialect in ("mysql", "mariadb"):
        if column is not None and type(column.type).__name__ == "TIMESTAMP":
            return "CURRENT_TIMESTAMP(6)"
        return "UTC_TIMESTAMP(6)"
    return "(strftime('%Y-%m-%d %H:%M:%f', 'now') || '000')"


def _names(tid: int) -> dict[str, str]:
    return {k: f"samband_{tid}_{k}" for k in ("stamp", "log", "bi", "bu", "ai", "au", "ad")}


def _qualified(engine: Engine, schema: str | None, name: str) -> str:
    prep = engine.dialect.identifier_preparer
    return f"{prep.quote_schema(schema)}.{prep.quote(name)}" if schema else prep.quote(name)


def _drop_statements(engine: Engine, table: Table, tid: int, schema: str | None) -> list[str]:
    dialect = engine.dialect.name
    names = _names(tid)
    target = engine.dialect.identifier_preparer.format_table(table)
    if dialect == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS {names['bi']} ON {target}",
            f"DROP TRIGGER IF EXISTS {names['ai']} ON {target}",
            f"DROP FUNCTION IF EXISTS {_qualified(engine, schema, names['stamp'])}()",
            f"DROP FUNCTION IF EXISTS {_qualified(engine, schema, names['log'])}()",
        ]
    triggers = ("bi", "bu", "ai", "au", "ad")
    if dialect == "sqlite":
        schema = None
    return [f"DROP TRIGGER IF EXISTS {_qualified(engine, schema, names[t])}" for t in triggers]


def _create_statements(
    engine: Engine, table: Table, changes: Table, tid: int, spec: TableSpec
) -> list[str]:
    dialect = engine.dialect.name
    prep = engine.dialect.identifier_preparer
    names = _names(tid)
    target = prep.format_table(table)
    log = prep.format_table(changes)
    row_id = prep.quote(spec.id)
    stamp_col = table.c[spec.updated] if spec.updated and spec.updated in table.c else None
    if stamp_col is not None and not isinstance(stamp_col.type, sqltypes.DateTime):
        stamp_col = None  # an integer version column: the log alone carries the changes
    stamp = prep.quote(stamp_col.name) if stamp_col is not None else None
    cols = "(table_id, row_id, op, changed_at)"
    statements: list[str] = []
    if dialect == "postgresql":
        body_tag = "$samband$"
        if stamp is not None:
            fn = _qualified(engine, spec.schema, names["stamp"])
            statements += [
                f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS "
                f"{body_tag} BEGIN NEW.{stamp} := {_now_sql(dialect, stamp_col)}; "
                f"RETURN NEW; END {body_tag}",
                f"CREATE TRIGGER {names['bi']} BEFORE INSERT OR UPDATE ON {target} "
                f"FOR EACH ROW EXECUTE PROCEDURE {fn}()",
            ]
        fn = _qualified(engine, spec.schema, names["log"])
        statements += [
            f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS {body_tag} "
            f"BEGIN PERFORM pg_notify('{NOTIFY_CHANNEL}', TG_TABLE_SCHEMA || '.' || "
            f"TG_TABLE_NAME); IF TG_OP = 'DELETE' THEN "
            f"INSERT INTO {log} {cols} VALUES ({tid}, CAST(OLD.{row_id} AS text), 'D', "
            f"clock_timestamp()); RETURN OLD; END IF; "
            f"INSERT INTO {log} {cols} VALUES ({tid}, CAST(NEW.{row_id} AS text), "
            f"substr(TG_OP, 1, 1), clock_timestamp()); RETURN NEW; END {body_tag}",
            f"CREATE TRIGGER {names['ai']} AFTER INSERT OR UPDATE OR DELETE ON {target} "
            f"FOR EACH ROW EXECUTE PROCEDURE {fn}()",
        ]
        return statements
    now = _now_sql(dialect, None)
    if dialect in ("mysql", "mariadb"):

        def trigger(key: str) -> str:
            return _qualified(engine, spec.schema, names[key])

        if stamp is not None:
            value = _now_sql(dialect, stamp_col)
            statements += [
                f"CREATE TRIGGER {trigger('bi')} BEFORE INSERT ON {target} "
                f"FOR EACH ROW SET NEW.{stamp} = {value}",
                f"CREATE TRIGGER {trigger('bu')} BEFORE UPDATE ON {target} "
                f"FOR EACH ROW SET NEW.{stamp} = {value}",
            ]
        for key, op, ref in (("ai", "I", "NEW"), ("au", "U", "NEW"), ("ad", "D", "OLD")):
            event = {"I": "INSERT", "U": "UPDATE", "D": "DELETE"}[op]
            statements.append(
                f"CREATE TRIGGER {trigger(key)} AFTER {event} ON {target} FOR EACH ROW "
                f"INSERT INTO {log} {cols} VALUES ({tid}, CAST({ref}.{row_id} AS CHAR), "
                f"'{op}', {now})"
            )
        return statements
    # SQLite: AFTER triggers (recursive triggers are off, so the stamping UPDATE does not
    # fire them again); the log table must live in the same database as the table.
    target = prep.quote(table.name)
    log = prep.quote(changes.name)
    for key, op, ref in (("ai", "I", "NEW"), ("au", "U", "NEW"), ("ad", "D", "OLD")):
        event = {"I": "INSERT", "U": "UPDATE", "D": "DELETE"}[op]
        body = ""
        if stamp is not None and op != "D":
            body += (
                f"UPDATE {target} SET {stamp} = {_now_sql(dialect, stamp_col)} "
                f"WHERE {row_id} = NEW.{row_id}; "
            )
        body += (
            f"INSERT INTO {log} {cols} VALUES ({tid}, CAST({ref}.{row_id} AS TEXT), '{op}', {now});"
        )
        statements.append(
            f"CREATE TRIGGER {prep.quote(names[key])} AFTER {event} ON {target} "
            f"FOR EACH ROW BEGIN {body} END"
        )
    return statements


def _add_column_sql(engine: Engine, table: Table, column: str) -> str:
    prep = engine.dialect.identifier_preparer
    kind = {
        "postgresql": "TIMESTAMP WITH TIME ZONE",
        "mysql": "DATETIME(6)",
        "mariadb": "DATETIME(6)",
    }.get(engine.dialect.name, "DATETIME")
    return f"ALTER TABLE {prep.format_table(table)} ADD COLUMN {prep.quote(column)} {kind}"


def _check_identifiers(spec: TableSpec) -> None:
    for name in (spec.table or "", spec.id, spec.updated or ""):
        if "$samband$" in name:
            raise ValueError(f"identifier {name!r} cannot be tracked")


def install(engine: Engine, spec: TableSpec, system_id: str) -> str:
    _check_identifiers(spec)
    assert spec.table is not None
    tracking, changes = log_tables(spec.schema)
    done: list[str] = []
    reflect_table(engine, spec.table, spec.schema)  # NoSuchTableError before any change
    with engine.begin() as conn:
        tracking.metadata.create_all(conn, checkfirst=True)
        tid = conn.execute(
            select(tracking.c.table_id).where(tracking.c.table_name == spec.table)
        ).scalar()
        if tid is None:
            result = conn.execute(
                insert(tracking).values(table_name=spec.table, installed_at=datetime.now(UTC))
            )
            assert result.inserted_primary_key is not None
            tid = result.inserted_primary_key[0]
            done.append("registered the table in samband_tracking")
    tid = int(tid)
    with engine.begin() as conn:
        table = reflect_table(engine, spec.table, spec.schema)
        if spec.updated and spec.updated not in table.c:
            conn.exec_driver_sql(_add_column_sql(engine, table, spec.updated))
            table = Table(
                spec.table,
                MetaData(),
                Column(spec.updated, _TIMESTAMP),
                schema=spec.schema,
            )
            column = table.c[spec.updated]
            conn.execute(table.update().values({spec.updated: to_db_datetime(column, _now())}))
            done.append(f"added the change column {spec.updated!r}")
    table = reflect_table(engine, spec.table, spec.schema)
    with engine.begin() as conn:
        for statement in _drop_statements(engine, table, tid, spec.schema):
            conn.exec_driver_sql(statement)
        for statement in _create_statements(engine, table, changes, tid, spec):
            conn.exec_driver_sql(statement)
    stamp = (
        f"keep {spec.updated!r} up to date and "
        if spec.updated and isinstance(table.c[spec.updated].type, sqltypes.DateTime)
        else ""
    )
    done.append(f"triggers {stamp}log every insert, update and delete to samband_changes")
    return f"{system_id}.{spec.type_name} (table {spec.table!r}): " + "; ".join(done)


def remove(engine: Engine, spec: TableSpec, system_id: str) -> str:
    assert spec.table is not None
    tracking, changes = log_tables(spec.schema)
    tid = table_id(engine, spec)
    if tid is None:
        return f"{system_id}.{spec.type_name}: no tracking installed; nothing to remove"
    table = reflect_table(engine, spec.table, spec.schema)
    with engine.begin() as conn:
        for statement in _drop_statements(engine, table, tid, spec.schema):
            conn.exec_driver_sql(statement)
        conn.execute(delete(changes).where(changes.c.table_id == tid))
        conn.execute(delete(tracking).where(tracking.c.table_id == tid))
        left = conn.execute(select(func.count()).select_from(tracking)).scalar()
    message = f"{system_id}.{spec.type_name} (table {spec.table!r}): removed the triggers"
    if not left:
        with engine.begin() as conn:
            changes.drop(conn, checkfirst=True)
            tracking.drop(conn, checkfirst=True)
        message += " and the change log (no other table was tracked)"
    column = f"; the column {spec.updated!r} stays" if spec.updated else ""
    return message + column


def _now() -> datetime:
    return datetime.now(UTC)
