"""Plain SQL for the store's hot paths, written once per dialect.

SQLAlchemy Core binds every row of an ``executemany`` through its own parameter
processing, which costs more than the database's work for the small rows the store
writes by the hundred thousand (snapshots, links, merge keys, intents, audit).  These
statements go to the driver's ``executemany`` as they are.  The table and column names
come from :mod:`samband.store.schema`, which stays the single source of truth; the SQL
itself (``INSERT … ON CONFLICT … DO UPDATE``, ``IN (…)``) is the same on SQLite and
PostgreSQL apart from the parameter marker.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import Table


def quote(name: str) -> str:
    return f'"{name}"'


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

    def insert(self, table: Table, columns: tuple[str, ...]) -> str:
        names = ", ".join(quote(c) for c in columns)
        return f"INSERT INTO {table.name} ({names}) VALUES {self.in_list(len(columns))}"

    def upsert(self, table: Table, columns: tuple[str, ...], keys: tuple[str, ...]) -> str:
        """Insert, or replace the non-key columns of the row with the same ``keys``."""
        conflict = ", ".join(quote(k) for k in keys)
        updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns if c not in keys)
        return f"{self.insert(table, columns)} ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
