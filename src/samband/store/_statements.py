"""Plain SQL for the store's hot paths, written once per dialect.

SQLAlchemy Core binds every row of an ``executemany`` through its own parameter
processing, which costs more than the database's work for the small rows the store
writes by the hundred thousand (snapshots, links, merge keys, intents, audit).  These
statements go to the driver as they are.  The table and column names come from
:mod:`samband.store.schema`, which stays the single source of truth.

SQLite runs a one-row statement per row (its ``executemany`` loops in C, in process).
PostgreSQL is a round trip away and psycopg handles every statement of an
``executemany`` in Python, so there every row of a call goes in one statement: one array
parameter per column, turned back into rows by ``unnest``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql


def quote(name: str) -> str:
    return f'"{name}"'


@dataclass(frozen=True)
class RowsSql:
    """A statement run for many rows (see :meth:`samband.store.store.Store._many`)."""

    one: str  # one row's statement (SQLite)
    bulk: str  # every row at once, one array per column (PostgreSQL)
    # positions of the columns that identify a row of an upsert: a statement cannot
    # update the same row twice, so of rows with the same key only the last is sent
    key: tuple[int, ...] = ()


class Statements:
    """SQL text for one dialect (``?`` markers for SQLite, ``%s`` for psycopg)."""

    def __init__(self, dialect: str) -> None:
        self.mark = "?" if dialect == "sqlite" else "%s"
        self.in_list = cache(self._in_list)

    def _in_list(self, count: int) -> str:
        return "(" + ", ".join([self.mark] * count) + ")"

    def sql(self, text: str) -> str:
        """``text`` written with ``?`` markers, in this dialect's markers."""
        return text if self.mark == "?" else text.replace("?", self.mark)

    def insert(self, table: Table, columns: tuple[str, ...]) -> RowsSql:
        names = ", ".join(quote(c) for c in columns)
        head = f"INSERT INTO {table.name} ({names}) "
        return RowsSql(
            head + f"VALUES {self.in_list(len(columns))}", head + _unnest(table, columns)
        )

    def upsert(self, table: Table, columns: tuple[str, ...], keys: tuple[str, ...]) -> RowsSql:
        """Insert, or replace the non-key columns of the row with the same ``keys``."""
        conflict = ", ".join(quote(k) for k in keys)
        updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns if c not in keys)
        tail = f" ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
        insert = self.insert(table, columns)
        key = tuple(columns.index(k) for k in keys)
        return RowsSql(insert.one + tail, insert.bulk + tail, key)

    def update(self, table: Table, columns: tuple[str, ...], key: str) -> RowsSql:
        """Set ``columns`` of the row with a given ``key`` (each row: the values of
        ``columns``, then the key)."""
        sets = ", ".join(f"{quote(c)} = {self.mark}" for c in columns)
        names = (*columns, key)
        new = ", ".join(f"{quote(c)} = v.{quote(c)}" for c in columns)
        return RowsSql(
            f"UPDATE {table.name} SET {sets} WHERE {quote(key)} = {self.mark}",
            f"UPDATE {table.name} AS t SET {new} FROM {_arrays(table, names)}"
            f" AS v({', '.join(quote(c) for c in names)}) WHERE t.{quote(key)} = v.{quote(key)}",
            (len(columns),),
        )

    def delete(self, table: Table, columns: tuple[str, ...]) -> RowsSql:
        """Delete the rows whose ``columns`` hold a given row's values."""
        where = " AND ".join(f"{quote(c)} = {self.mark}" for c in columns)
        names = ", ".join(quote(c) for c in columns)
        return RowsSql(
            f"DELETE FROM {table.name} WHERE {where}",
            f"DELETE FROM {table.name} WHERE ({names}) IN ({_unnest(table, columns)})",
        )


def _unnest(table: Table, columns: tuple[str, ...]) -> str:
    return f"SELECT * FROM {_arrays(table, columns)}"


def _arrays(table: Table, columns: tuple[str, ...]) -> str:
    """``unnest(…)`` of one typed array parameter per column, sent in binary (``%b``):
    the elements of a text array go as they are, not escaped one by one."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    arrays = ", ".join(f"%b::{table.c[name].type.compile(dialect=dialect)}[]" for name in columns)
    return f"unnest({arrays})"
