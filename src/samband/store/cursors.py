"""The change cursor of each entity type."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select

from samband.store import schema as s
from samband.store._database import Database
from samband.store.rows import now_iso


class Cursors:
    """Where each entity type's change feed was read up to, and for which properties."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, system: str, etype: str) -> tuple[str | None, str | None]:
        row = self.db.conn.execute(
            select(s.cursors.c.cursor, s.cursors.c.fields).where(
                and_(s.cursors.c.system == system, s.cursors.c.etype == etype)
            )
        ).first()
        return (row.cursor, row.fields) if row else (None, None)

    def set(self, system: str, etype: str, cursor: str | None, fields: str) -> None:
        row = {
            "system": system,
            "etype": etype,
            "cursor": cursor,
            "fields": fields,
            "updated_at": now_iso(),
        }
        self.db.upsert(s.cursors, [row], ["system", "etype"])

    def all(self) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in self.db.conn.execute(select(s.cursors))]
