"""The connection every table family of the store shares: opening (and migrating) the
database, transactions, and the few ways statements are run (see
:mod:`samband.store._statements` for why the hot ones go to the driver as text)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from samband import _killpoint as killpoint
from samband.errors import StoreError
from samband.store._statements import RowsSql, Statements
from samband.store._statistics import Statistics
from samband.store.migrations import migrate

CHUNK = 500  # members per IN (...) lookup


class Database:
    """One open connection to the store's database, migrated to the latest schema."""

    def __init__(self, url: str, *, base_dir: str | None = None, dry_run: bool = False) -> None:
        self.url = _resolve_sqlite(url, base_dir)
        self.dry_run = dry_run
        self.dialect = make_url(self.url).get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise StoreError(
                f"store {redact_url(self.url)}: use a sqlite:// or postgresql:// store"
            )
        if self.dialect == "postgresql" and make_url(self.url).drivername == "postgresql":
            self.url = str(make_url(self.url).set(drivername="postgresql+psycopg"))
        self.engine: Engine = _create_engine(self.url, self.dialect)
        try:
            self.conn: Connection = self.engine.connect()
            migrate(self.conn)
            if not dry_run:
                # a dry run changes nothing: on PostgreSQL, where DDL is transactional, a
                # store created or migrated for it is rolled back at close with the rest
                self.conn.commit()
        except BaseException as exc:
            # a failed migration must not keep its transaction (and the migration lock)
            self.engine.dispose()
            if isinstance(exc, OperationalError):
                raise StoreError(
                    f"cannot open the store {redact_url(self.url)}: {db_message(exc)}"
                    f"{_read_only_hint(self.url)}"
                ) from None
            if isinstance(exc, SQLAlchemyError):
                raise StoreError(
                    f"the store {redact_url(self.url)} cannot be read ({db_message(exc)}): "
                    "restore it from a backup or move it away (a new one is made); nothing "
                    "in your systems was changed"
                ) from None
            raise
        self._seq = time.time_ns() // 1000
        # called before every commit (see :meth:`before_commit`)
        self._before_commit: list[Callable[[], None]] = []
        self.sql = Statements(self.dialect)
        self._statistics = Statistics(self.conn) if self.dialect == "postgresql" else None

    # -- transactions -------------------------------------------------------------
    @contextmanager
    def tx(self) -> Iterator[Connection]:
        """A unit of work: committed at the end (kept open in a dry run)."""
        try:
            yield self.conn
        except BaseException:
            self.conn.rollback()
            raise
        else:
            if not self.dry_run:
                self._run_before_commit()
                killpoint.reached("commit")
                try:
                    self.conn.commit()
                    if self._statistics is not None and self._statistics.due():
                        self._statistics.analyze(self.conn)
                except SQLAlchemyError as exc:
                    self.conn.rollback()
                    raise StoreError(
                        f"cannot write the store: {db_message(exc)}; check the disk (free "
                        "space, permissions) or the database server, then run again — what "
                        "was committed before is kept"
                    ) from None

    @contextmanager
    def durable_tx(self) -> Iterator[Connection]:
        """A unit of work that must survive a power loss once committed: the create
        intents written before an API call.  SQLite's WAL mode at ``synchronous=NORMAL``
        (the store's setting, for speed) may lose the last commits when the machine
        stops; this one is synced to disk before it returns (PostgreSQL syncs every
        commit)."""
        full = self.dialect == "sqlite" and not self.dry_run
        if full:
            # set outside a transaction: a pragma changed inside one does not apply to it
            self.conn.commit()
            self.conn.exec_driver_sql("PRAGMA synchronous=FULL")
        try:
            with self.tx() as conn:
                yield conn
        finally:
            if full:
                # a failed restore must not hide the error that ended the transaction
                with contextlib.suppress(SQLAlchemyError):
                    self.conn.exec_driver_sql("PRAGMA synchronous=NORMAL")

    def commit(self) -> None:
        if not self.dry_run:
            self._run_before_commit()
            self.conn.commit()

    def before_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` before every commit of a unit of work: what the store is
        about to record must be durable where it happened first (a system that keeps its
        writes in memory until flushed)."""
        self._before_commit.append(callback)

    def _run_before_commit(self) -> None:
        for callback in self._before_commit:
            callback()

    def close(self) -> None:
        try:
            if self.dry_run:
                self.conn.rollback()
            self.conn.close()
        finally:
            self.engine.dispose()

    def next_seq(self) -> int:
        """A dirty-sequence value larger than every earlier one (also across processes)."""
        self._seq = max(self._seq + 1, time.time_ns() // 1000)
        return self._seq

    # -- running statements ----------------------------------------------------------
    def many(self, sql: RowsSql, rows: list[tuple[Any, ...]], grows: str | None = None) -> None:
        """Run ``sql`` for every row, at the driver (see :mod:`samband.store._statements`);
        ``grows`` names the table it adds rows to, for
        :class:`~samband.store._statistics.Statistics`."""
        if not rows:
            return
        if self.dialect == "sqlite":
            self.conn.exec_driver_sql(sql.one, rows)
        else:
            if sql.key:
                last = {tuple(row[i] for i in sql.key): row for row in rows}
                rows = list(last.values())
            columns = tuple(list(column) for column in zip(*rows, strict=True))
            self.conn.exec_driver_sql(sql.bulk, columns)
            if grows is not None and self._statistics is not None:
                self._statistics.wrote(grows, len(rows))

    def any_row(self, table: str, dataflow: str) -> bool:
        """Whether ``table`` holds a row of ``dataflow`` (a cheap test before a delete by
        hundreds of refs that usually finds nothing)."""
        found = self.query(f"SELECT 1 FROM {table} WHERE dataflow = ? LIMIT 1", (dataflow,))
        return found.first() is not None

    def rows(
        self, sql: str, params: tuple[Any, ...], members: list[Any] | None = None
    ) -> list[Any]:
        """The rows of a query (see :meth:`query`), fetched at once."""
        return list(self.query(sql, params, members).fetchall())

    def query(self, sql: str, params: tuple[Any, ...], members: list[Any] | None = None) -> Any:
        """Run ``sql`` written with ``?`` markers; ``members`` fill a trailing ``IN (…)``."""
        if members is not None:
            sql += self.sql.in_list(len(members))
            params += tuple(members)
        return self.conn.exec_driver_sql(self.sql.sql(sql), params)

    def upsert(self, table: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
        insert = (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)
        columns = [c for c in rows[0] if c not in keys]
        if columns:
            stmt = insert.on_conflict_do_update(
                index_elements=keys, set_={c: insert.excluded[c] for c in columns}
            )
        else:
            stmt = insert.on_conflict_do_nothing(index_elements=keys)
        self.conn.execute(stmt, rows)

    def table_rows(
        self, table: Any, where: Any = None, order: Any = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        query = select(table)
        if where is not None:
            query = query.where(where)
        if order is not None:
            query = query.order_by(order)
        if limit:
            query = query.limit(limit)
        return [dict(r._mapping) for r in self.conn.execute(query)]

    def count_rows(self, table: Any, where: Any = None) -> int:
        query = select(func.count()).select_from(table)
        if where is not None:
            query = query.where(where)
        return int(self.conn.execute(query).scalar_one())

    def last_id(self, table: Any) -> int:
        """The highest id of a table with an ``id`` key (0 when empty): one index lookup."""
        return int(self.conn.execute(select(func.max(table.c.id))).scalar_one() or 0)


def chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def redact_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<store url>"


def db_message(exc: BaseException) -> str:
    """The database's own first line about a failure (no SQL, no parameters)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def _read_only_hint(url: str) -> str:
    """Why SQLite may fail to open an existing file: its folder cannot be written (SQLite
    writes its -wal and -shm files next to the database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return ""
    folder = Path(parsed.database).parent
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return ""
    if read_only or not os.access(folder, os.W_OK):
        where = "is on a read-only file system" if read_only else "cannot be written"
        return (
            f" — its folder {folder} {where}; SQLite writes next to the store, so move the "
            "store to a writable place (`store:` in the config)"
        )
    return ""


def _resolve_sqlite(url: str, base_dir: str | None) -> str:
    parsed = make_url(url)
    if (
        parsed.get_backend_name() != "sqlite"
        or not parsed.database
        or parsed.database == ":memory:"
    ):
        return url
    path = Path(parsed.database)
    if not path.is_absolute() and base_dir:
        path = Path(base_dir) / path
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
        except OSError as exc:
            raise StoreError(
                f"cannot create the store {path}: {exc.strerror or exc}; make its folder "
                "writable or point `store:` in the config at a writable place"
            ) from None
    return str(parsed.set(database=str(path)))


def _create_engine(url: str, dialect: str) -> Engine:
    if dialect == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)
