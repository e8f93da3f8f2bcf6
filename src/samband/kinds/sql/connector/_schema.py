"""Config, engines and reflection for ``kind: sql``.

Everything here is about *which* table and columns an entity type uses and *how* a
database's types map onto Samband's data types; reading and writing rows lives in
:mod:`samband.kinds.sql.connector`, change tracking in :mod:`samband.kinds.sql.connector._tracking`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Column,
    MetaData,
    Table,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from samband.config.env import resolve
from samband.config.model import SystemConfig
from samband.errors import AuthError, ConnectorError, ContractError, UnreachableError
from samband.kinds.sql.settings import SqlSettings, SqlTypeSettings
from samband.types import DataType

PAGE_SIZE = 500
CONNECT_TIMEOUT = 10


@dataclass(frozen=True)
class TableSpec:
    """What the config says about one entity type of a SQL system."""

    type_name: str
    table: str | None  # where writes go (None: read-only view)
    view: str | None  # where reads come from, when not the table
    schema: str | None
    id: str
    updated: str | None
    deleted: str | None
    external_ref: str | None
    columns: tuple[str, ...] | None
    read_only: bool

    @property
    def source(self) -> str:
        """The table or view rows are read from."""
        return self.view or self.table or self.type_name

    def special_columns(self) -> list[str]:
        return [c for c in (self.id, self.updated, self.deleted, self.external_ref) if c]


def table_specs(config: SystemConfig) -> dict[str, TableSpec]:
    specs: dict[str, TableSpec] = {}
    for name, etc in config.entity_types.items():
        s = SqlTypeSettings.of(etc, type_name=name)
        view = s.view
        table = s.table if "table" in s.model_fields_set else (None if view else name)
        columns = s.columns
        specs[name] = TableSpec(
            type_name=name,
            table=str(table) if table else None,
            view=str(view) if view else None,
            schema=s.schema_,
            id=str(s.id or "id") if s.id is not None else "id",
            updated=s.updated,
            deleted=s.deleted,
            external_ref=s.external_ref,
            columns=tuple(str(c) for c in columns) if columns else None,
            read_only=bool(s.read_only) or not table,
        )
    return specs


def database_url(
    config: SystemConfig, credentials: Mapping[str, str] | None = None, *, system: str = "?"
) -> URL:
    """The system's SQLAlchemy URL: ``${VAR}`` resolved, relative SQLite paths placed
    beside the config file, ``credentials.username/password`` filled in when the URL has
    none."""
    settings = SqlSettings.of(config, system)
    raw = settings.url
    if not raw:
        raise ConnectorError(system, "no url is configured", "add url: sqlite:///pms.db or similar")
    try:
        url = make_url(resolve(str(raw), system=system))
    except ArgumentError:
        raise ConnectorError(
            system,
            "the url is not a SQLAlchemy database URL",
            "use e.g. postgresql+psycopg://user:${PGPASSWORD}@host/db",
        ) from None
    creds = dict(credentials or {})
    if creds.get("username") and not url.username:
        url = url.set(username=creds["username"])
    if creds.get("password") and not url.password:
        url = url.set(password=creds["password"])
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        base = settings.base_dir
        if base and not os.path.isabs(url.database) and not url.database.startswith("file:"):
            url = url.set(database=os.path.join(str(base), url.database))
    return url


def redacted(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def scrub(message: str, url: URL) -> str:
    """``message`` without the URL's password, whatever the driver put in it."""
    if url.password:
        message = message.replace(str(url.password), "***")
    return message


def missing_sqlite_file(url: URL) -> str | None:
    """The path of a SQLite database file that does not exist (connecting would create
    an empty one, and a typo in the url would pass unnoticed)."""
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    if url.database == ":memory:" or url.database.startswith("file:"):
        return None
    return None if os.path.exists(url.database) else url.database


def make_engine(url: URL, system: str = "?") -> Engine:
    """An engine whose sessions speak UTC, enforce foreign keys on SQLite and give up
    connecting after a few seconds.  A SQLite file that does not exist is an error."""
    missing = missing_sqlite_file(url)
    if missing is not None:
        raise UnreachableError(
            system,
            f"the SQLite database {missing} does not exist",
            "check the url (relative paths are beside the config file), or create the "
            "tables first (samband.kinds.sql.demo.create_pms_schema for the custom PMS)",
        )
    backend = url.get_backend_name()
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    connect_args: dict[str, Any] = {}
    if backend in ("postgresql", "mysql", "mariadb"):
        if "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = CONNECT_TIMEOUT
    elif backend == "sqlite":
        connect_args["timeout"] = 30
        if not url.database or url.database == ":memory:":
            kwargs["poolclass"] = StaticPool
            connect_args["check_same_thread"] = False
    if connect_args:
        kwargs["connect_args"] = connect_args
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise ConnectorError(
            system,
            f"cannot use the database url {redacted(url)}: {scrub(str(exc), url)}",
            "check the url's dialect and driver (sqlite:///…, postgresql+psycopg://…, "
            "mysql+pymysql://…) and that the driver is installed",
        ) from None

    @event.listens_for(engine, "connect")
    def _session_setup(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if backend == "sqlite":
                cursor.execute("PRAGMA foreign_keys=ON")
            elif backend == "postgresql":
                cursor.execute("SET TIME ZONE 'UTC'")
            elif backend in ("mysql", "mariadb"):
                cursor.execute("SET time_zone = '+00:00'")
                # strict: a value the column cannot hold is an error, never silently cut
                # or replaced (a server without it truncates a long text); the server's
                # other modes are kept
                cursor.execute(
                    "SET SESSION sql_mode = TRIM(BOTH ',' FROM "
                    "CONCAT(@@SESSION.sql_mode, ',STRICT_ALL_TABLES'))"
                )
        finally:
            cursor.close()
        if backend == "postgresql":
            dbapi_connection.commit()

    return engine


def connection_error(system: str, url: URL, exc: BaseException) -> ConnectorError:
    """One clear error for a database that cannot be used, without the password."""
    orig = getattr(exc, "orig", None) or exc
    detail = scrub(" ".join(str(orig).split()), url)
    where = redacted(url)
    lowered = detail.lower()
    if any(w in lowered for w in ("password", "access denied", "authentication", "role ")):
        return AuthError(
            system,
            f"the database refused the login at {where}: {detail}",
            "check the user name and password in the url or credentials",
        )
    return UnreachableError(
        system,
        f"cannot connect to {where}: {detail}",
        "check the url (host, port, database name) and that the server is running",
    )


# -- reflection ----------------------------------------------------------------------
def reflect_table(
    engine: Engine, name: str, schema: str | None, metadata: MetaData | None = None
) -> Table:
    return Table(
        name, metadata or MetaData(), schema=schema, autoload_with=engine, resolve_fks=False
    )


class IdNotUnique(ContractError):
    """The configured ``id:`` column does not identify one row of its table."""


def check_unique_id(
    engine: Engine, table: Table, type_name: str, id_column: str, system: str
) -> None:
    """Refuse an ``id:`` column that is not the table's primary key and has no unique
    constraint or index of its own: records with the same id would be read as one and an
    update or delete would reach several rows.  A view (no keys to reflect) is not
    checked here; its writes are refused when they reach more than one row."""
    if id_column not in table.c:
        return
    keys = [[c.name for c in table.primary_key.columns]]
    keys += [
        [c.name for c in constraint.columns]
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    ]
    keys += [[c.name for c in index.columns] for index in table.indexes if index.unique]
    if [id_column] in keys:
        return
    primary = keys[0]
    if not any(keys) and _is_view(engine, table):
        return
    where = f"table {table.name!r}"
    shown = f"; its primary key is ({', '.join(primary)})" if primary else ""
    raise IdNotUnique(
        system,
        f"entity type {type_name}: id column {id_column!r} of {where} is not unique{shown}",
        f"make {id_column!r} the primary key or add a unique constraint on it, or set `id:` "
        "to a unique column (a composite key is not supported)",
    )


def _is_view(engine: Engine, table: Table) -> bool:
    try:
        return table.name in inspect(engine).get_view_names(schema=table.schema)
    except (SQLAlchemyError, NotImplementedError):
        return True  # cannot tell: do not refuse what may be a view


@dataclass(frozen=True)
class KeyShape:
    """How a new row gets its id."""

    generated: bool  # the database fills it in when an insert leaves it out
    # ... from a counter that goes up row by row, so the ids one multi-row insert hands
    # out, sorted, are in the order of its rows (SQLite's rowid, a PostgreSQL serial or
    # identity, MariaDB's AUTO_INCREMENT)
    counted: bool

    @classmethod
    def none(cls) -> KeyShape:
        """A key the database does not fill in (a view's, or one the caller gives)."""
        return cls(generated=False, counted=False)


def key_shape(engine: Engine, table: Table, name: str) -> KeyShape:
    """How the database fills in column ``name`` of a new row of ``table``."""
    if name not in table.c:
        return KeyShape.none()
    column = table.c[name]
    integer = isinstance(column.type, sqltypes.Integer)
    dialect = engine.dialect.name
    if dialect == "sqlite":
        try:
            rowid = _is_rowid_alias(engine, table, name)
        except SQLAlchemyError:  # a SQLite older than 3.16 (no pragma functions)
            rowid = integer and column.primary_key
        return KeyShape(rowid, rowid)
    if column.identity is not None:  # GENERATED … AS IDENTITY
        increment, cycles = column.identity.increment, column.identity.cycle
        return KeyShape(True, integer and (increment or 1) > 0 and not cycles)
    default = column.server_default
    if dialect == "postgresql" and default is not None:
        counted = integer and _sequence_counts_up(engine, default)
        return KeyShape(True, counted)
    if dialect in ("mysql", "mariadb"):
        auto = column.autoincrement is True  # AUTO_INCREMENT (never a negative step)
        return KeyShape(auto or default is not None, auto and integer)
    if default is not None:
        return KeyShape(True, False)
    auto = bool(column.primary_key and column.autoincrement in (True, "auto") and integer)
    return KeyShape(auto, False)


def _is_rowid_alias(engine: Engine, table: Table, name: str) -> bool:
    """Whether SQLite fills the column in: only a column declared exactly ``INTEGER
    PRIMARY KEY`` of a table with a rowid is the rowid (``INT PRIMARY KEY`` is not, and a
    ``WITHOUT ROWID`` table keeps its primary key in an index of its own)."""
    query = text(
        "SELECT (SELECT upper(type) FROM pragma_table_info(:t, :s) WHERE name = :c AND pk = 1),"
        " (SELECT count(*) FROM pragma_table_info(:t, :s) WHERE pk > 0),"
        " (SELECT count(*) FROM pragma_index_list(:t, :s) WHERE origin = 'pk')"
    )
    with engine.connect() as conn:
        row = conn.execute(query, {"t": table.name, "s": table.schema or "main", "c": name})
        declared, keys, key_indexes = row.one()
    return declared == "INTEGER" and keys == 1 and key_indexes == 0


_NEXTVAL = re.compile(r"^nextval\('((?:[^']|'')+)'(?:::regclass)?\)$", re.IGNORECASE)


def _sequence_counts_up(engine: Engine, default: Any) -> bool:
    """Whether a PostgreSQL column default is ``nextval`` of a sequence that goes up and
    does not cycle (a ``serial``)."""
    match = _NEXTVAL.match(str(getattr(default, "arg", "")).strip())
    if match is None:
        return False
    query = text(
        "SELECT seqincrement > 0 AND NOT seqcycle FROM pg_sequence "
        "WHERE seqrelid = CAST(:name AS regclass)"
    )
    try:
        with engine.connect() as conn:
            up = conn.execute(query, {"name": match.group(1).replace("''", "'")}).scalar()
    except SQLAlchemyError:
        return False  # a sequence we may not look at: one statement per row, then
    return bool(up)


def data_type(column_type: sqltypes.TypeEngine[Any]) -> DataType | None:
    """Samband's data type for a (reflected) column type."""
    if isinstance(column_type, sqltypes.Boolean):
        return DataType.BOOLEAN
    if getattr(column_type, "display_width", None) == 1 and type(column_type).__name__ == "TINYINT":
        return DataType.BOOLEAN  # MySQL/MariaDB store BOOLEAN as TINYINT(1)
    if isinstance(column_type, sqltypes.Integer):
        return DataType.INTEGER
    if isinstance(column_type, sqltypes.Float):
        return DataType.FLOAT
    if isinstance(column_type, sqltypes.Numeric):
        return DataType.DECIMAL
    if isinstance(column_type, sqltypes.DateTime):
        return DataType.DATETIME
    if isinstance(column_type, sqltypes.Date):
        return DataType.DATE
    if isinstance(column_type, sqltypes.String):
        return DataType.STRING
    return None


def max_length(column_type: sqltypes.TypeEngine[Any]) -> int | None:
    if isinstance(column_type, sqltypes.String) and not isinstance(column_type, sqltypes.Text):
        return column_type.length
    return None


# bytes a MariaDB/MySQL TEXT-family column holds (its limit is in bytes, not characters)
_TEXT_BYTES = {"TINYTEXT": 255, "TEXT": 65_535, "MEDIUMTEXT": 16_777_215, "LONGTEXT": 2**32 - 1}


def max_bytes(column_type: sqltypes.TypeEngine[Any], dialect: str) -> int | None:
    """The byte limit of a MariaDB/MySQL ``TINYTEXT``/``TEXT``/``MEDIUMTEXT`` column."""
    if dialect not in ("mysql", "mariadb") or not isinstance(column_type, sqltypes.String):
        return None  # (TINYTEXT and MEDIUMTEXT are not sqltypes.Text)
    name = type(column_type).__name__.upper()
    if name == "TEXT" and getattr(column_type, "length", None):
        return None  # TEXT(n): the server picks the smallest type that holds n characters
    return _TEXT_BYTES.get(name)


def is_padded(column_type: sqltypes.TypeEngine[Any]) -> bool:
    """Whether a column is fixed-width text (``CHAR(n)``, ``NCHAR(n)``): its trailing spaces
    are padding, not part of its value."""
    return isinstance(column_type, sqltypes.CHAR | sqltypes.NCHAR)


def padded_columns(table: Table, dialect: str, skip: str) -> frozenset[str]:
    """The columns whose values the database hands back padded with spaces: ``CHAR(n)``
    on PostgreSQL (and MariaDB with ``PAD_CHAR_TO_FULL_LENGTH``; SQLite keeps what it was
    given).  ``skip`` (the id column) is left as it is: a record's id must not change."""
    if dialect == "sqlite":
        return frozenset()
    return frozenset(c.name for c in table.columns if c.name != skip and is_padded(c.type))


def is_aware(column: Column[Any]) -> bool:
    return bool(getattr(column.type, "timezone", False)) and isinstance(
        column.type, sqltypes.DateTime
    )


def to_db_datetime(column: Column[Any], value: datetime) -> datetime:
    """A UTC datetime in the form the column holds (aware only for timestamptz)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value if is_aware(column) else value.replace(tzinfo=None)


def from_db(value: Any, kind: DataType | None) -> Any:
    """A database value as a plain JSON value (what a record carries)."""
    if value is None:
        return None
    if kind is DataType.BOOLEAN and isinstance(value, int):
        return bool(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return value


def schema_error(system: str, exc: SQLAlchemyError, url: URL) -> ConnectorError:
    return ConnectorError(
        system,
        scrub(" ".join(str(getattr(exc, "orig", None) or exc).split()), url),
        "check the table and column names of the entity types",
    )


def table_names(engine: Engine, schema: str | None) -> set[str]:
    inspector = inspect(engine)
    return set(inspector.get_table_names(schema=schema)) | set(
        inspector.get_view_names(schema=schema)
    )
