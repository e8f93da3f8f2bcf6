"""Versioned migrations of the store schema.  Add a step; never edit an applied one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection, inspect, select

from samband.store import schema as s


def _v1(conn: Connection) -> None:
    s.metadata.create_all(conn)


MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [(1, _v1)]
LATEST = MIGRATIONS[-1][0]


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table(s.schema_version.name):
        return 0
    value = conn.execute(
        select(s.schema_version.c.version).order_by(s.schema_version.c.version.desc())
    ).first()
    return int(value[0]) if value else 0


def migrate(conn: Connection) -> int:
    """Bring the schema to the latest version; return the version applied."""
    version = current_version(conn)
    if version > LATEST:
        from samband.errors import StoreError

        raise StoreError(
            f"the store has schema version {version}, newer than this samband ({LATEST}); "
            "upgrade samband"
        )
    for number, step in MIGRATIONS:
        if number > version:
            step(conn)
            conn.execute(
                s.schema_version.insert().values(
                    version=number, applied_at=datetime.now(UTC).isoformat()
                )
            )
    return LATEST
