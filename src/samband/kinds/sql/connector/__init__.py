"""``kind: sql`` — any SQLAlchemy database: SQLite, PostgreSQL (psycopg 3), MariaDB/MySQL.

Config::

    pms:
      kind: sql
      url: postgresql+psycopg://pms:${PMS_PASSWORD}@db.example/pms   # or sqlite:///pms.db
      entity_types:
        Customer:
          table: customer          # default: the type's name
          id: id
          updated: updated_at      # change column: a timestamp or an integer version
          deleted: is_deleted      # optional soft-delete flag
          external_ref: external_ref
          columns: [name, org_no]  # optional: only these (plus the ones above)
        OpenOrders: {view: open_orders, id: order_id}   # a view: read only

An entity type is a table (or a view, for reading).  Its schema is reflected, so
``samband validate`` can check property names and types.  With a change column, reads
are incremental: rows whose change column is at or after ``cursor - overlap`` in pages
ordered by (change column, id), keyset-paginated.  Without one every read is a full scan
(``incremental=False``) and the engine detects deletions.  ``samband sql install-tracking``
installs triggers and a change log so that edits and deletions made by other programs
are seen incrementally and exactly (see :mod:`samband.kinds.sql.connector._tracking`).

Writes are parameterised statements, one transaction each, built from SQLAlchemy
``Table`` objects, so identifiers are quoted by the dialect and no value is ever put
into SQL text.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import Column, MetaData, Table, and_, func, inspect, or_, select
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import URL, Connection, Engine, Row
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    NoSuchTableError,
    OperationalError,
    SQLAlchemyError,
    StatementError,
)

from samband.config.env import resolve_all
from samband.config.model import Config, SystemConfig
from samband.connectors.base import (
    ConfigNote,
    Connector,
    EntityType,
    Page,
    Property,
    RecordData,
)
from samband.durations import parse_interval
from samband.errors import (
    ConnectorError,
    ConversionError,
    CursorExpired,
    InUse,
    NotFound,
    RecordError,
    SambandError,
    Stale,
    TransientError,
)
from samband.kinds.sql.connector import _schema as schema
from samband.kinds.sql.connector import _tracking as tracking
from samband.kinds.sql.connector import _values as values_
from samband.kinds.sql.settings import SqlSettings
from samband.types import DataType, coerce, same_stored_value

__all__ = ["SqlConnector", "install_tracking", "remove_tracking"]

T = TypeVar("T")


@dataclass
class _Bound:
    """An entity type bound to reflected tables."""

    spec: schema.TableSpec
    read: Table  # table or view rows come from
    write: Table | None  # table writes go to
    types: dict[str, DataType | None]  # column → data type
    columns: list[str]  # the columns records carry
    key: schema.KeyShape = field(default_factory=schema.KeyShape.none)  # of a new row
    # column → what it holds exactly (checked before a value is written)
    checks: dict[str, values_.Check] = field(default_factory=dict)
    # CHAR columns the database pads with spaces: read without them
    padded: frozenset[str] = frozenset()

    @property
    def where(self) -> str:
        """The entity type and its table, for messages."""
        return f"{self.spec.type_name} (table {self.spec.table or self.spec.source!r})"

    def column(self, name: str) -> Column[Any]:
        return self.read.c[name]

    def id_value(self, record_id: str) -> Any:
        """``record_id`` as the id column's Python type, or None when it cannot be one."""
        if self.types.get(self.spec.id) is DataType.INTEGER:
            text = record_id.strip()
            return int(text) if text.lstrip("-").isdigit() else None
        return record_id

    @property
    def version_column(self) -> bool:
        return bool(self.spec.updated) and self.types.get(self.spec.updated or "") is (
            DataType.INTEGER
        )


class SqlConnector(Connector):
    kind = "sql"

    def __init__(self, system_id: str, config: SystemConfig, credentials: Any, **options: Any):
        super().__init__(system_id, config, credentials, **options)
        self.url = schema.database_url(config, self.credentials, system=system_id)
        settings = SqlSettings.of(config, system_id)
        self.page_size = settings.page_size or schema.PAGE_SIZE
        self.specs = schema.table_specs(config)
        self.keep_changes = keep_seconds(settings.keep_changes, system_id)
        # An integer version is handed out before its transaction commits, so a lower
        # version can become visible after a higher one was read: reads go back this many
        # versions (re-read rows are recognised by their content hash and cost nothing).
        self.overlap_versions = (
            DEFAULT_OVERLAP_VERSIONS
            if settings.overlap_versions is None
            else settings.overlap_versions
        )
        self._engine: Engine | None = None
        self._bound: dict[str, _Bound] = {}
        self._pruned: dict[int, float] = {}  # tracked table id → when its log was pruned
        self._undecodable = False  # the last read decoded text leniently (SQLite)

    # -- schema ---------------------------------------------------------------------
    @classmethod
    def config_warnings(cls, config: SystemConfig) -> list[ConfigNote]:
        try:
            url = schema.database_url(config, resolve_all(config.credentials, system="sql"))
        except ConnectorError:  # an unset ${VAR}: reported on its own
            return []
        missing = schema.missing_sqlite_file(url)
        if missing is None:
            return []
        return [
            ConfigNote(
                ("url",),
                f"the SQLite database {missing} does not exist",
                "check the url (a relative path is beside the config file), or create the "
                "database and its tables before a run",
            )
        ]

    @classmethod
    def describe(cls, config: SystemConfig) -> dict[str, EntityType]:
        """Reflect the configured tables; when the database cannot be reached, the
        types from the config with ``open_schema=True``."""
        specs = schema.table_specs(config)
        try:
            credentials = resolve_all(config.credentials, system="sql")
            url = schema.database_url(config, credentials, system="sql")
            engine = schema.make_engine(url)
        except ConnectorError:
            return {name: _offline_type(spec) for name, spec in specs.items()}
        try:
            tables = {spec.table or spec.source: name for name, spec in specs.items()}
            result: dict[str, EntityType] = {}
            for name, spec in specs.items():
                bound = _bind(engine, spec, "sql", url)
                tracked = tracking.table_id(engine, spec) is not None
                result[name] = _entity_type(engine, bound, tables, tracked)
            return result
        except schema.IdNotUnique:
            raise  # the config is wrong, not the database out of reach
        except (SQLAlchemyError, ConnectorError):
            return {name: _offline_type(spec) for name, spec in specs.items()}
        finally:
            engine.dispose()

    def entity_types(self) -> dict[str, EntityType]:
        if not hasattr(self, "_entity_types"):
            engine = self.engine
            tables = {spec.table or spec.source: name for name, spec in self.specs.items()}
            self._entity_types = {
                name: _entity_type(
                    engine,
                    self.bound(name),
                    tables,
                    self._tracked(self.bound(name)) is not None,
                )
                for name in self.specs
            }
        return self._entity_types

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = schema.make_engine(self.url, self.system_id)
        return self._engine

    def bound(self, type_name: str) -> _Bound:
        if type_name not in self._bound:
            if type_name not in self.specs:
                raise KeyError(f"system {self.system_id!r} has no entity type {type_name!r}")
            self._bound[type_name] = _bind(
                self.engine, self.specs[type_name], self.system_id, self.url
            )
        return self._bound[type_name]

    # -- lifecycle ------------------------------------------------------------------
    def check(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except (SQLAlchemyError, OSError) as exc:
            raise schema.connection_error(self.system_id, self.url, exc) from None
        for name in self.specs:
            self.bound(name)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _run(self, bound: _Bound, work: Callable[[Connection], T]) -> T:
        """Run ``work(conn)`` in a transaction.  Whatever the database, its driver or
        SQLAlchemy raises comes out as Samband's error for it, never as a SQLAlchemy error
        (which the engine would take for its own store failing)."""
        self.stats.api_calls += 1
        self._undecodable = False
        try:
            try:
                with self.engine.begin() as conn:
                    return work(conn)
            except OperationalError as exc:
                if not _not_utf8(exc):
                    raise
            # SQLite hands back the bytes a program stored as TEXT; a row whose text is not
            # UTF-8 (Latin-1 from a legacy tool) fails the whole fetch.  Read again with a
            # decoder that marks such a value, so only that row is quarantined (_record).
            with self.engine.begin() as conn:
                raw = conn.connection.dbapi_connection
                assert raw is not None
                raw.text_factory = _lenient_text
                self._undecodable = True
                try:
                    return work(conn)
                finally:
                    raw.text_factory = str
        except SQLAlchemyError as exc:
            raise database_error(self.system_id, self.url, bound.where, exc) from None
        except (UnicodeError, OverflowError) as exc:
            # the driver could not encode a value (a lone surrogate, a number too large)
            raise RecordError(
                f"{bound.where}: a value cannot be sent to the database ({exc}); correct it "
                "in its source system"
            ) from None

    # -- reading --------------------------------------------------------------------
    def _tracked(self, bound: _Bound) -> int | None:
        self.stats.api_calls += 1
        try:
            return tracking.table_id(self.engine, bound.spec)
        except SQLAlchemyError:
            return None

    def _record(self, bound: _Bound, row: Row[Any]) -> RecordData:
        mapping = row._mapping
        data = {c: schema.from_db(mapping[c], bound.types.get(c)) for c in bound.columns}
        for name in bound.padded:
            value = data.get(name)
            if isinstance(value, str):
                data[name] = value.rstrip(" ")
        spec = bound.spec
        modified: datetime | None = None
        if spec.updated and isinstance(mapping[spec.updated], datetime):
            value = mapping[spec.updated]
            modified = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
        deleted = bool(spec.deleted and mapping[spec.deleted])
        record = RecordData(str(mapping[spec.id]), data, modified, deleted)
        if self._undecodable:
            bad = [name for name, value in data.items() if type(value) is _NotUtf8]
            if bad:
                shown = data[bad[0]]
                record.problem = (
                    f"column {bound.read.name}.{bad[0]} holds {shown!s} (not UTF-8 text; "
                    "written by a program in another encoding, e.g. Latin-1): correct the "
                    "value in the database (as UTF-8)"
                )
        return record

    def _select(self, bound: _Bound) -> Any:
        return select(*(bound.column(c) for c in bound.columns))

    def read(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        bound = self.bound(entity_type)
        table_id = self._tracked(bound) if bound.spec.table else None
        if table_id is not None:
            yield from self._read_log(bound, table_id, cursor)
        elif bound.spec.updated:
            yield from self._read_changes(bound, cursor)
        else:
            for records in self._scan(bound):
                yield Page(records, None)

    def _scan(self, bound: _Bound, where: Any = None) -> Iterator[list[RecordData]]:
        """Every row (matching ``where``) in pages, keyset-paginated on the id."""
        id_col = bound.column(bound.spec.id)
        last: Any = None
        while True:
            stmt = self._select(bound).order_by(id_col).limit(self.page_size)
            if where is not None:
                stmt = stmt.where(where)
            if last is not None:
                stmt = stmt.where(id_col > last)
            rows = self._run(bound, _fetch_all(stmt))
            if not rows:
                return
            self.stats.reads += len(rows)
            yield [self._record(bound, row) for row in rows]
            if len(rows) < self.page_size:
                return
            last = rows[-1]._mapping[bound.spec.id]

    def _cursor_value(self, bound: _Bound, cursor: str | None) -> Any:
        if not cursor or cursor.startswith("log:"):
            return None
        col = bound.column(bound.spec.updated or "")
        if bound.version_column:
            if not cursor.lstrip("-").isdigit():
                return None
            return int(cursor) - self.overlap_versions
        try:
            since = datetime.fromisoformat(cursor)
        except ValueError:
            return None
        return schema.to_db_datetime(col, since - timedelta(seconds=self.overlap_seconds))

    def _read_changes(self, bound: _Bound, cursor: str | None) -> Iterator[Page]:
        spec = bound.spec
        upd = bound.column(spec.updated or "")
        id_col = bound.column(spec.id)
        since = self._cursor_value(bound, cursor)
        out_cursor = cursor if cursor and not cursor.startswith("log:") else None
        # a row stamped by a clock ahead of the database's must not carry the cursor past
        # the database's now: later edits (stamped by correct clocks) would wait for it
        ceiling = None if bound.version_column else self._run(bound, _database_now)
        if since is None:
            # a first read also returns the rows no change column value was ever set for
            for records in self._scan(bound, upd.is_(None)):
                yield Page(records, out_cursor)
        last: tuple[Any, Any] | None = None
        while True:
            stmt = self._select(bound).order_by(upd, id_col).limit(self.page_size)
            stmt = stmt.where(upd.is_not(None))
            if since is not None:
                stmt = stmt.where(upd >= since)
            if last is not None:
                stmt = stmt.where(or_(upd > last[0], and_(upd == last[0], id_col > last[1])))
            rows = self._run(bound, _fetch_all(stmt))
            self.stats.reads += len(rows)
            if rows:
                top = rows[-1]._mapping
                last = (top[spec.updated or ""], top[spec.id])
                out_cursor = _cursor_text(_not_after(last[0], ceiling))
            if rows or last is None:
                yield Page([self._record(bound, row) for row in rows], out_cursor)
            if len(rows) < self.page_size:
                return

    def _read_log(self, bound: _Bound, table_id: int, cursor: str | None) -> Iterator[Page]:
        """Read through the change log that install-tracking keeps (deletions included)."""
        position = tracking.parse_cursor(cursor)
        if position is None:
            # first read: the whole table, then the log from where it stood before the scan
            start = self._run(bound, lambda conn: tracking.log_position(conn, bound.spec, table_id))
            for records in self._scan(bound):
                yield Page(records, None)
            yield Page([], tracking.format_cursor(start))
            return
        seq, at = position
        since = at - timedelta(seconds=self.overlap_seconds)
        after_seq: int | None = None
        current = position

        def entries_after(conn: Connection, after: int | None) -> list[tracking.Entry]:
            if after is None and tracking.pruned_past(conn, bound.spec, table_id, seq):
                raise CursorExpired(
                    f"{self.system_id}: the change log of {bound.spec.table!r} was pruned "
                    "past this store's cursor"
                )
            return tracking.log_entries(
                conn, bound.spec, table_id, seq, since, after, self.page_size
            )

        while True:
            entries = self._run(bound, functools.partial(entries_after, after=after_seq))
            if not entries:
                if after_seq is None:
                    yield Page([], tracking.format_cursor(current))
                break
            after_seq = entries[-1].seq
            current = tracking.advance(current, entries)
            ids: dict[str, datetime] = {}
            for entry in entries:
                ids[entry.row_id] = entry.changed_at
            yield Page(self._rows_by_id(bound, ids), tracking.format_cursor(current))
            if len(entries) < self.page_size:
                break
        self._prune(bound, table_id, current[0])

    def _prune(self, bound: _Bound, table_id: int, read_to: int) -> None:
        """Delete what this store has read of the change log and no longer needs (older
        than ``keep_changes``); at most once an hour per table."""
        if self.keep_changes is None or self.dry_run:
            return
        last = self._pruned.get(table_id)
        if last is not None and time.monotonic() - last < PRUNE_EVERY:
            return
        self._pruned[table_id] = time.monotonic()
        before = datetime.now(UTC) - timedelta(seconds=self.keep_changes)
        # pruning is housekeeping: a database that refuses it (rights, a lock) still syncs
        with contextlib.suppress(ConnectorError, TransientError, RecordError):
            self._run(
                bound, lambda conn: tracking.prune(conn, bound.spec, table_id, read_to, before)
            )

    def _rows_by_id(self, bound: _Bound, ids: dict[str, datetime]) -> list[RecordData]:
        keys = {bound.id_value(rid): rid for rid in ids}
        keys.pop(None, None)
        id_col = bound.column(bound.spec.id)
        stmt = self._select(bound).where(id_col.in_(list(keys)))
        rows = self._run(bound, _fetch_all(stmt)) if keys else []
        found = {str(row._mapping[bound.spec.id]): self._record(bound, row) for row in rows}
        self.stats.reads += len(rows)
        records: list[RecordData] = []
        for rid, changed_at in ids.items():
            if rid in found:
                records.append(found[rid])
            else:
                records.append(RecordData(rid, {bound.spec.id: rid}, changed_at, deleted=True))
        return records

    def get(self, entity_type: str, record_id: str) -> RecordData | None:
        bound = self.bound(entity_type)
        key = bound.id_value(record_id)
        if key is None:
            return None
        stmt = self._select(bound).where(bound.column(bound.spec.id) == key)
        rows = self._run(bound, _fetch_all(stmt))
        exact = bound.types.get(bound.spec.id) is not DataType.INTEGER
        for row in rows:
            record = self._record(bound, row)
            # a text id is compared exactly (a case-insensitive collation finds "A1" for "a1")
            if exact and not _same_text(record.id, record_id):
                continue
            return None if record.deleted else _whole(record)
        return None

    def find_by_external_ref(self, entity_type: str, external_ref: str) -> RecordData | None:
        bound = self.bound(entity_type)
        column = bound.spec.external_ref
        if not column:
            return None
        stmt = self._select(bound).where(bound.column(column) == external_ref)
        stmt = stmt.order_by(bound.column(bound.spec.id))
        for row in self._run(bound, _fetch_all(stmt)):
            record = self._record(bound, row)
            # compared here, exactly: a case- or accent-insensitive collation (MariaDB's
            # default) also finds the ref of another record that differs only in case
            if not record.deleted and _same_text(record.data.get(column), external_ref):
                return _whole(record)
        return None

    # -- writing --------------------------------------------------------------------
    def _writable(self, entity_type: str) -> tuple[_Bound, Table]:
        bound = self.bound(entity_type)
        if bound.write is None or bound.spec.read_only:
            raise RecordError(
                f"{entity_type} in {self.system_id} is read only (a view or read_only: true)"
            )
        return bound, bound.write

    def _row_values(self, bound: _Bound, table: Table, values: dict[str, Any]) -> dict[str, Any]:
        """Canonical values → column values, refusing unknown columns and any value the
        column would not hold exactly (too long, too many digits, out of range)."""
        row: dict[str, Any] = {}
        for path, given in values.items():
            if path not in table.c:
                raise RecordError(
                    f"{bound.spec.type_name}: table {table.name!r} has no column {path!r}"
                )
            column = table.c[path]
            kind = bound.types.get(path)
            value = given
            if kind is not None and value is not None:
                try:
                    value = coerce(value, kind)
                except ConversionError as exc:
                    raise RecordError(f"{path}: {exc}; column {table.name}.{path}") from None
            check = bound.checks.get(path)
            if check is not None and value is not None:
                reason = check(value, given)
                if reason is not None:
                    raise RecordError(f"{path}: {reason}")
            if isinstance(value, datetime) and isinstance(column.type, sqltypes.DateTime):
                value = schema.to_db_datetime(column, value)
            row[path] = value
        return row

    def _stamp(self, conn: Connection, bound: _Bound, table: Table, row: dict[str, Any]) -> None:
        """Set the change column (a trigger may set it again; that is fine)."""
        self._stamp_many(conn, bound, table, [row])

    def _new_row(
        self, bound: _Bound, table: Table, values: dict[str, Any], external_ref: str | None
    ) -> dict[str, Any]:
        row = self._row_values(bound, table, values)
        if external_ref and bound.spec.external_ref:
            row[bound.spec.external_ref] = external_ref
        key = bound.spec.id
        if row.get(key) is None:
            if not bound.key.generated:
                raise RecordError(
                    f"{bound.where}: the database does not fill in the key column {key!r} "
                    "of a new row, and no value is mapped to it: map one, or let the "
                    "database count it (INTEGER PRIMARY KEY on SQLite, serial or identity "
                    "on PostgreSQL, AUTO_INCREMENT on MariaDB)"
                )
            row.pop(key, None)
        return row

    def _insert(
        self, conn: Connection, bound: _Bound, table: Table, row: dict[str, Any], entity_type: str
    ) -> Any:
        """Insert one row; return the id the database gave it."""
        spec = bound.spec
        id_col = table.c[spec.id]
        self._stamp(conn, bound, table, row)
        stmt = table.insert().values(row)
        if self.engine.dialect.insert_returning:
            return conn.execute(stmt.returning(id_col)).scalar_one()
        result = conn.execute(stmt)
        if spec.id in row:
            return row[spec.id]
        pk = result.inserted_primary_key
        names = [c.name for c in table.primary_key.columns]
        new_id = pk[names.index(spec.id)] if pk and spec.id in names else None
        if new_id is None:
            raise ConnectorError(
                self.system_id,
                f"the database did not say which id it gave the new {entity_type}",
                f"make {spec.id!r} the primary key of {table.name!r}",
            )
        return new_id

    def _insert_many(
        self,
        conn: Connection,
        bound: _Bound,
        table: Table,
        rows: list[dict[str, Any]],
        entity_type: str,
    ) -> list[Any]:
        """Insert rows; return the ids the database gave them, in order.  Rows with the
        same columns go in one multi-row statement (``INSERT … RETURNING``) wherever the
        database can say which id went to which row:

        * by the external reference each row carries, returned beside its new id;
        * by the ids the rows carry themselves (a key the caller gives);
        * by the order of the new ids, where the database counts the key up row by row
          (SQLite's rowid, a PostgreSQL ``serial`` or identity, MariaDB's AUTO_INCREMENT).

        Otherwise (a key the database makes up, such as a ``uuid`` default, and no
        external reference; a database without multi-row ``RETURNING``) one statement
        per row."""
        if len(rows) < 2:
            return [self._insert(conn, bound, table, row, entity_type) for row in rows]
        self._stamp_many(conn, bound, table, rows)
        ids: list[Any] = [None] * len(rows)
        groups: dict[tuple[str, ...], list[int]] = {}
        for position, row in enumerate(rows):
            groups.setdefault(tuple(sorted(row)), []).append(position)
        for columns, positions in groups.items():
            batch = [rows[position] for position in positions]
            new_ids = self._insert_batch(conn, bound, table, columns, batch, entity_type)
            for position, new_id in zip(positions, new_ids, strict=True):
                ids[position] = new_id
        return ids

    def _insert_batch(
        self,
        conn: Connection,
        bound: _Bound,
        table: Table,
        columns: tuple[str, ...],
        batch: list[dict[str, Any]],
        entity_type: str,
    ) -> Sequence[Any]:
        """Insert rows that have the same columns; return their new ids in order."""
        spec = bound.spec
        id_col = table.c[spec.id]
        returning = conn.dialect.insert_executemany_returning
        ext = spec.external_ref
        if returning and ext is not None and ext in columns:
            refs = [str(row[ext]) for row in batch]
            if len(set(refs)) == len(batch):
                return self._insert_by_ref(conn, table, id_col, ext, batch, refs)
        if spec.id in columns:
            conn.execute(table.insert(), batch)
            return [row[spec.id] for row in batch]
        if returning and bound.key.counted and columns:
            return self._insert_counted(conn, table, id_col, batch)
        return [self._insert(conn, bound, table, row, entity_type) for row in batch]

    def _insert_counted(
        self, conn: Connection, table: Table, id_col: Any, batch: list[dict[str, Any]]
    ) -> list[Any]:
        """One multi-row insert into a table whose key the database counts up row by row
        as it inserts the rows in their order: the new ids, sorted, are the rows' ids."""
        new_ids = sorted(conn.execute(table.insert().returning(id_col), batch).scalars())
        if len(set(new_ids)) != len(batch):
            # not what a counted key gives: the rows go again one per transaction
            raise RecordError(
                f"the database returned {len(set(new_ids))} distinct ids for {len(batch)} "
                f"new rows of {table.name!r}"
            )
        return new_ids

    def _insert_by_ref(
        self,
        conn: Connection,
        table: Table,
        id_col: Any,
        ext: str,
        batch: list[dict[str, Any]],
        refs: list[str],
    ) -> list[Any]:
        """One multi-row insert; each new id is matched to its row by the external
        reference (distinct within ``batch``) the database returns beside it."""
        result = conn.execute(table.insert().returning(id_col, table.c[ext]), batch)
        given = {str(ref): new_id for new_id, ref in result}
        missing = [ref for ref in refs if ref not in given]
        if missing:
            # the column changed the value (a padded CHAR, a collation): the rows go again
            # one per transaction, each with its own RETURNING
            raise RecordError(
                f"the database stored external reference {missing[0]!r} of a new row in "
                f"{table.name}.{ext} as a different value"
            )
        return [given[ref] for ref in refs]

    def _stamp_many(
        self, conn: Connection, bound: _Bound, table: Table, rows: list[dict[str, Any]]
    ) -> None:
        """Set the change column of rows (versions counted on from one MAX)."""
        column = bound.spec.updated
        if not column or column not in table.c:
            return
        if bound.version_column:
            top = int(conn.execute(select(func.max(table.c[column]))).scalar() or 0)
            for offset, row in enumerate(rows, 1):
                row[column] = top + offset
            return
        stamp = schema.to_db_datetime(table.c[column], datetime.now(UTC))
        for row in rows:
            row[column] = stamp

    def create(
        self, entity_type: str, values: dict[str, Any], external_ref: str | None = None
    ) -> RecordData:
        bound, table = self._writable(entity_type)
        spec = bound.spec
        row = self._new_row(bound, table, values, external_ref)

        def work(conn: Connection) -> Row[Any] | None:
            new_id = self._insert(conn, bound, table, row, entity_type)
            return conn.execute(self._select(bound).where(bound.column(spec.id) == new_id)).first()

        created = self._run(bound, work)
        self.stats.writes += 1
        if created is None:
            raise ConnectorError(
                self.system_id, f"the new {entity_type} cannot be read back from {spec.source!r}"
            )
        return self._record(bound, created)

    batch_creates = True

    def create_many(
        self, entity_type: str, items: list[tuple[dict[str, Any], str | None]]
    ) -> list[RecordData | RecordError]:
        """Create a chunk of records in one transaction (one commit, one read-back query).
        When the database refuses a row the transaction is rolled back and the records are
        created one per transaction, so each refusal is reported with its own record."""
        bound, table = self._writable(entity_type)
        spec = bound.spec
        rows: list[dict[str, Any] | RecordError] = []
        for values, ext in items:
            try:
                rows.append(self._new_row(bound, table, values, ext))
            except RecordError as exc:
                rows.append(exc)

        def work(conn: Connection) -> tuple[list[Any], dict[str, Row[Any]]]:
            good = [i for i, row in enumerate(rows) if not isinstance(row, RecordError)]
            new_ids = self._insert_many(
                conn, bound, table, [cast(dict[str, Any], rows[i]) for i in good], entity_type
            )
            ids: list[Any] = [None] * len(rows)
            for position, new_id in zip(good, new_ids, strict=True):
                ids[position] = new_id
            found: dict[str, Row[Any]] = {}
            wanted = [i for i in ids if i is not None]
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                query = self._select(bound).where(bound.column(spec.id).in_(part))
                for record in conn.execute(query):
                    found[str(record._mapping[spec.id])] = record
            return ids, found

        try:
            ids, found = self._run(bound, work)
        except RecordError:
            results: list[RecordData | RecordError] = []
            for (values, ext), row in zip(items, rows, strict=True):
                if isinstance(row, RecordError):
                    results.append(row)
                    continue
                try:
                    results.append(self.create(entity_type, values, ext))
                except RecordError as exc:
                    results.append(exc)
            return results
        out: list[RecordData | RecordError] = []
        for row, new_id in zip(rows, ids, strict=True):
            if isinstance(row, RecordError):
                out.append(row)
                continue
            record = found.get(str(new_id))
            if record is None:
                raise ConnectorError(
                    self.system_id,
                    f"the new {entity_type} cannot be read back from {spec.source!r}",
                )
            self.stats.writes += 1
            out.append(self._record(bound, record))
        return out

    checks_expected = True

    def update(
        self,
        entity_type: str,
        record_id: str,
        changes: dict[str, Any],
        expected: dict[str, Any] | None = None,
    ) -> RecordData:
        """Set the changed columns.  With ``expected`` (the changed properties as they were
        read), the row is locked and read first, and :class:`Stale` is raised, writing
        nothing, when one of them holds another value now (an edit made since the read)."""
        bound, table = self._writable(entity_type)
        key = bound.id_value(record_id)
        if key is None:
            raise NotFound(f"{entity_type} {record_id} does not exist in {self.system_id}")
        row = self._row_values(bound, table, changes)

        def work(conn: Connection) -> Row[Any] | None:
            query = self._select(bound).where(bound.column(bound.spec.id) == key)
            if expected:
                if conn.dialect.name == "sqlite":
                    # no row locks: take the database's write lock before the read
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                current = conn.execute(query.with_for_update()).first()
                if current is None:
                    raise NotFound(f"{entity_type} {record_id} does not exist in {self.system_id}")
                self._check_expected(bound, current, expected, f"{entity_type} {record_id}")
            self._stamp(conn, bound, table, row)
            if not row:  # nothing to change and no change column to stamp
                return conn.execute(query).first()
            result = conn.execute(table.update().where(table.c[bound.spec.id] == key).values(row))
            if result.rowcount == 0:
                raise NotFound(f"{entity_type} {record_id} does not exist in {self.system_id}")
            if result.rowcount > 1:  # rolled back: one record's edit never reaches another
                raise self._several_rows(bound, record_id, result.rowcount, "update")
            return conn.execute(query).first()

        updated = self._run(bound, work)
        self.stats.writes += 1
        if updated is None:
            raise NotFound(f"{entity_type} {record_id} does not exist in {self.system_id}")
        return _whole(self._record(bound, updated))

    def _several_rows(self, bound: _Bound, record_id: str, count: int, what: str) -> RecordError:
        return _SeveralRows(
            f"{bound.where}: {count} rows have {bound.spec.id} = {record_id!r}, so the {what} "
            f"was refused (nothing written); the id column must be unique: add a unique "
            f"constraint on {bound.spec.id!r} or configure a unique `id:` column"
        )

    def _check_expected(
        self, bound: _Bound, current: Row[Any], expected: dict[str, Any], what: str
    ) -> None:
        data = self._record(bound, current).data
        edited = [
            path
            for path, was in expected.items()
            if path in data and not same_stored_value(data[path], was)
        ]
        if edited:
            raise Stale(
                f"{what} in {self.system_id}: {', '.join(sorted(edited))} changed since it was read"
            )

    def delete(self, entity_type: str, record_id: str) -> None:
        bound, table = self._writable(entity_type)
        key = bound.id_value(record_id)
        missing = NotFound(f"{entity_type} {record_id} does not exist in {self.system_id}")
        if key is None:
            raise missing
        if bound.spec.deleted:
            # a soft-delete column: mark the row instead of removing it
            self.update(entity_type, record_id, {bound.spec.deleted: True})
            return

        def work(conn: Connection) -> int:
            count = int(conn.execute(table.delete().where(table.c[bound.spec.id] == key)).rowcount)
            if count > 1:  # rolled back
                raise self._several_rows(bound, record_id, count, "delete")
            return count

        try:
            count = self._run(bound, work)
        except RecordError as exc:
            if isinstance(exc, NotFound | _SeveralRows):
                raise
            raise InUse(f"{entity_type} {record_id} is in use: {exc.reason}") from None
        if count == 0:
            raise missing
        self.stats.writes += 1


# -- module helpers --------------------------------------------------------------------
def _whole(record: RecordData) -> RecordData:
    """``record``, unless a value of it could not be read (a one-record answer: its
    reason is the record's error, never a value changed in the store)."""
    if record.problem is not None:
        raise RecordError(f"{record.id}: {record.problem}")
    return record


class _NotUtf8(str):
    """A SQLite TEXT value whose bytes are not UTF-8, shown as ``'Caf\\xe9'``."""


def _lenient_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return _NotUtf8(f"'{raw.decode('utf-8', 'backslashreplace')}'")


def _not_utf8(exc: OperationalError) -> bool:
    return "Could not decode to UTF-8" in str(exc.orig)


def _same_text(found: Any, wanted: str) -> bool:
    """Whether a value the database matched is ``wanted`` exactly (a collation may match
    another case, accents or trailing spaces)."""
    return found is not None and str(found) == wanted


class _SeveralRows(RecordError):
    """A write by id reached more than one row (and was rolled back)."""


DEFAULT_OVERLAP_VERSIONS = 100
PRUNE_EVERY = 3600.0  # seconds between prunings of one table's change log


def keep_seconds(value: Any, system: str) -> float | None:
    """``keep_changes`` (``7d``, ``12h``, ``forever``; a bare number is days) in seconds;
    None keeps everything."""
    text = str(value).strip().lower()
    if text in ("forever", "always", "never-prune"):
        return None
    try:
        return parse_interval(text, default_unit="d")
    except ValueError:
        raise ConnectorError(
            system,
            f"keep_changes: {value!r} is not a duration",
            "write e.g. 7d, 48h or forever",
        ) from None


def _bind(engine: Engine, spec: schema.TableSpec, system: str, url: Any) -> _Bound:
    metadata = MetaData()
    try:
        read = schema.reflect_table(engine, spec.source, spec.schema, metadata)
        write = None
        if spec.table and not spec.read_only:
            write = (
                read
                if spec.table == spec.source
                else schema.reflect_table(engine, spec.table, spec.schema, metadata)
            )
    except NoSuchTableError:
        raise ConnectorError(
            system,
            f"entity type {spec.type_name}: the database has no table or view {spec.source!r}",
            "create the table, or fix `table:` in the config",
        ) from None
    except (SQLAlchemyError, OSError) as exc:
        if isinstance(exc, SQLAlchemyError) and not _is_connect_error(exc):
            raise schema.schema_error(system, exc, url) from None
        raise schema.connection_error(system, url, exc) from None
    columns = list(spec.columns) if spec.columns else [c.name for c in read.columns]
    for extra in spec.special_columns():
        if extra not in columns:
            columns.append(extra)
    for name in [*columns, *(c for c in spec.special_columns())]:
        if name not in read.c and name != spec.updated:
            raise ConnectorError(
                system,
                f"entity type {spec.type_name}: {spec.source!r} has no column {name!r}",
                f"known columns: {', '.join(c.name for c in read.columns)}",
            )
    schema.check_unique_id(
        engine, write if write is not None else read, spec.type_name, spec.id, system
    )
    if spec.updated and spec.updated not in read.c:
        # install-tracking adds it; until then reads are full scans
        columns.remove(spec.updated)
        spec = _without_updated(spec)
    for table in (read, write):
        if table is not None:
            _floats_as_floats(table)
    types = {c.name: schema.data_type(c.type) for c in read.columns}
    bound = _Bound(spec, read, write, types, columns)
    bound.padded = schema.padded_columns(read, engine.dialect.name, spec.id) & set(columns)
    if write is not None:
        try:
            bound.key = schema.key_shape(engine, write, spec.id)
        except SQLAlchemyError as exc:
            raise schema.schema_error(system, exc, url) from None
        bound.checks = _value_checks(engine, write)
    return bound


def _floats_as_floats(table: Table) -> None:
    """Read floating-point columns as floats: MariaDB's DOUBLE is reflected as a decimal
    type, whose values SQLAlchemy rounds to 10 decimal places when it reads them."""
    for column in table.columns:
        if isinstance(column.type, sqltypes.Float) and column.type.asdecimal:
            column.type.asdecimal = False


def _value_checks(engine: Engine, table: Table) -> dict[str, values_.Check]:
    """What each column of the table writes go to holds exactly."""
    checks: dict[str, values_.Check] = {}
    for column in table.columns:
        kind = schema.data_type(column.type)
        check = values_.column_check(column, kind, engine.dialect)
        if check is not None:
            checks[column.name] = check
    return checks


def _without_updated(spec: schema.TableSpec) -> schema.TableSpec:
    from dataclasses import replace

    return replace(spec, updated=None)


def _entity_type(
    engine: Engine, bound: _Bound, tables: dict[str, str], tracked: bool
) -> EntityType:
    spec = bound.spec
    references: dict[str, str] = {}
    if bound.write is not None:
        try:
            for fk in inspect(engine).get_foreign_keys(bound.write.name, schema=spec.schema):
                target = tables.get(fk["referred_table"])
                if target and len(fk["constrained_columns"]) == 1:
                    references[fk["constrained_columns"][0]] = target
        except SQLAlchemyError:
            pass
    props: dict[str, Property] = {}
    for name in bound.columns:
        column = bound.read.c[name]
        generated, required = _generated_and_required(bound, column)
        props[name] = Property(
            name,
            DataType.REFERENCE if name in references else bound.types.get(name),
            read_only=generated or bound.write is None,
            required=required,
            max_length=schema.max_length(column.type),
            references=references.get(name),
        )
    timestamp = bool(spec.updated) and not bound.version_column
    return EntityType(
        name=spec.type_name,
        id_field=spec.id,
        modified_field=spec.updated if timestamp else None,
        properties=props,
        incremental=tracked or bool(spec.updated),
        reports_deletes=tracked or (bool(spec.updated) and bool(spec.deleted)),
        read_only=bound.write is None,
        can_delete=bound.write is not None,
        external_ref_field=spec.external_ref,
        archive=(spec.deleted, True) if spec.deleted else None,
        open_schema=False,
    )


def _generated_and_required(bound: _Bound, column: Column[Any]) -> tuple[bool, bool]:
    """Whether the database makes a column's value up itself (it is read only), and
    whether a new row needs a value for it."""
    spec = bound.spec
    if column.name == spec.id and bound.write is not None:
        # a key the database counts up is its own; one it does not fill in is needed
        return bound.key.counted, not bound.key.generated
    generated = bool(column.primary_key and column.autoincrement in (True, "auto"))
    generated = generated and bound.types.get(column.name) is DataType.INTEGER
    required = (
        not column.nullable
        and column.server_default is None
        and not generated
        and column.name not in (spec.updated, spec.deleted)
    )
    return generated, required


def _offline_type(spec: schema.TableSpec) -> EntityType:
    return EntityType(
        name=spec.type_name,
        id_field=spec.id,
        modified_field=spec.updated,
        properties={},
        incremental=bool(spec.updated),
        reports_deletes=bool(spec.updated and spec.deleted),
        read_only=spec.read_only,
        can_delete=not spec.read_only,
        external_ref_field=spec.external_ref,
        archive=(spec.deleted, True) if spec.deleted else None,
        open_schema=True,
    )


def _database_now(conn: Connection) -> datetime | None:
    """The database's clock, in UTC (sessions speak UTC, see schema.make_engine); None
    when the database gives something else back."""
    value = conn.execute(select(func.now())).scalar()
    if isinstance(value, str):  # a driver that gives text back
        with contextlib.suppress(ValueError):
            value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _not_after(value: Any, ceiling: datetime | None) -> Any:
    """A change column's value, no later than ``ceiling`` (date-times only)."""
    if ceiling is None or not isinstance(value, datetime):
        return value
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return min(aware, ceiling)


def _cursor_text(value: Any) -> str:
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    return str(value)


def _db_message(exc: BaseException, url: Any) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else str(exc).split("\n[SQL:", 1)[0]
    return schema.scrub(" ".join(text.split()), url)


def _fetch_all(stmt: Any) -> Callable[[Connection], Sequence[Row[Any]]]:
    return lambda conn: conn.execute(stmt).all()


# MariaDB/MySQL error numbers: a value the column refuses (not null, out of range,
# truncated, bad date, bad string, too long, a foreign key) ...
_MYSQL_VALUE_ERRORS = {1048, 1264, 1265, 1292, 1366, 1406, 1451, 1452}
# ... and a table, column or right that is missing (database / table / column access
# denied, unknown column, no such table, privilege needed, server or table read only,
# broken view)
_MYSQL_SCHEMA_ERRORS = {1036, 1044, 1054, 1142, 1143, 1146, 1227, 1290, 1356}
_SQLITE_SCHEMA_ERRORS = ("no such table", "no such column", "has no column named", "readonly")
# PostgreSQL SQLSTATEs: class 42 (no such table or column, no right, ...), a read-only
# transaction
_PG_SCHEMA_STATES = ("42", "25006")


def database_error(system: str, url: URL, where: str, exc: SQLAlchemyError) -> SambandError:
    """Samband's error for what the database (or SQLAlchemy) raised while working on
    ``where`` (an entity type and its table): a value or a constraint refused costs that
    record (:class:`RecordError`); a lost connection, a lock or a deadlock may pass
    (:class:`TransientError`); a missing table, column or right stops the work on the
    system (:class:`ConnectorError`)."""
    message = _db_message(exc, url)
    if isinstance(exc, IntegrityError | DataError) or _mysql_code(exc) in _MYSQL_VALUE_ERRORS:
        return RecordError(f"{where}: {message}")
    if getattr(exc, "connection_invalidated", False):
        return TransientError(
            f"system {system!r}, {where}: the connection to the database was lost ({message}); "
            "what was not committed is done again on the next run"
        )
    if _is_schema_error(exc):
        return ConnectorError(
            system,
            f"{where}: {message}",
            "check that the table and its columns exist as the config says and that the "
            "database user may read and write them, then run again",
        )
    if isinstance(exc, DBAPIError) and _is_connect_error(exc):
        return schema.connection_error(system, url, exc)
    if isinstance(exc, OperationalError):
        return TransientError(
            f"system {system!r}, {where}: {message} (a lock, a deadlock or a timeout: "
            "it is tried again on the next run)"
        )
    if isinstance(exc, DBAPIError):
        return ConnectorError(
            system, f"{where}: {message}", "check the table's definition and the user's rights"
        )
    if isinstance(exc, StatementError):
        # a Python-side conversion refused the value (e.g. 'x' for a boolean)
        return RecordError(f"{where}: {message}")
    return ConnectorError(
        system,
        f"{where}: SQLAlchemy cannot run the statement ({type(exc).__name__}: {message})",
        "Samband's SQL connector does not handle this table's shape: please report it with "
        "the table's definition",
    )


def _mysql_code(exc: SQLAlchemyError) -> Any:
    args: tuple[Any, ...] = tuple(getattr(getattr(exc, "orig", None), "args", ()))
    return args[0] if args else None


def _is_schema_error(exc: SQLAlchemyError) -> bool:
    if not isinstance(exc, DBAPIError):
        return False
    if _mysql_code(exc) in _MYSQL_SCHEMA_ERRORS:
        return True
    state = getattr(exc.orig, "sqlstate", None)
    if isinstance(state, str) and state.startswith(_PG_SCHEMA_STATES):
        return True
    text = str(exc.orig).lower()
    return type(exc.orig).__module__.startswith("sqlite3") and any(
        words in text for words in _SQLITE_SCHEMA_ERRORS
    )


def _is_connect_error(exc: BaseException) -> bool:
    if getattr(exc, "connection_invalidated", False):
        return True
    text = str(getattr(exc, "orig", exc)).lower()
    words = ("connect", "connection", "access denied", "authentication", "unable to open")
    return any(w in text for w in words)


# -- install-tracking / remove-tracking (the CLI calls these) ------------------------------
def _tracking_target(
    config: Config, system_id: str, type_name: str
) -> tuple[Engine, schema.TableSpec, Any]:
    from samband.config.loader import base_dir

    system = config.systems.get(system_id)
    if system is None:
        raise ConnectorError(system_id, "no such system in the config")
    if system.kind != "sql":
        raise ConnectorError(system_id, f"is a {system.kind} system; tracking is for kind: sql")
    system = system.model_copy(deep=True)
    if system.model_extra is not None:
        system.model_extra.setdefault("base_dir", base_dir(config))
    specs = schema.table_specs(system)
    if type_name not in specs:
        known = ", ".join(specs) or "(none)"
        raise ConnectorError(system_id, f"has no entity type {type_name!r}", f"known: {known}")
    spec = specs[type_name]
    if not spec.table or spec.view:
        raise ConnectorError(
            system_id, f"{type_name} is read from a view; triggers need a table (`table:`)"
        )
    url = schema.database_url(system, system.credentials, system=system_id)
    return schema.make_engine(url, system_id), spec, url


def install_tracking(config: Config, system_id: str, type_name: str) -> str:
    """Install triggers (and the change column, when missing) and the change log for
    ``system_id.type_name``; return what was done.  Running it again changes nothing."""
    engine, spec, url = _tracking_target(config, system_id, type_name)
    try:
        return tracking.install(engine, spec, system_id)
    except (NoSuchTableError, SQLAlchemyError) as exc:
        if isinstance(exc, NoSuchTableError):
            raise ConnectorError(system_id, f"the database has no table {spec.table!r}") from None
        if isinstance(exc, DBAPIError) and _is_connect_error(exc):
            raise schema.connection_error(system_id, url, exc) from None
        raise schema.schema_error(system_id, exc, url) from None
    finally:
        engine.dispose()


def remove_tracking(config: Config, system_id: str, type_name: str) -> str:
    """Remove what :func:`install_tracking` installed (the change column and its values
    stay: they are data)."""
    engine, spec, url = _tracking_target(config, system_id, type_name)
    try:
        return tracking.remove(engine, spec, system_id)
    except SQLAlchemyError as exc:
        if isinstance(exc, DBAPIError) and _is_connect_error(exc):
            raise schema.connection_error(system_id, url, exc) from None
        raise schema.schema_error(system_id, exc, url) from None
    finally:
        engine.dispose()
