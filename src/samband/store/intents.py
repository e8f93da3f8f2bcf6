"""Create intents: written (and committed) before the create calls of a chunk, one row
per chunk, each create closed on its own once its outcome is recorded."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select

from samband.store import schema as s
from samband.store._database import Database
from samband.store.rows import CreateIntent, dumps, loads

INTENT_COLUMNS = (
    "key",
    "dataflow",
    "target_system",
    "target_etype",
    "items",
    "run_id",
    "created_at",
)


class Intents:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = db.sql.insert(s.intents, INTENT_COLUMNS)
        self._chunk_of: dict[str, str] = {}  # intent key → the key of its chunk's row

    def add(
        self,
        dataflow: str,
        target: tuple[str, str],
        items: Sequence[CreateIntent] | Sequence[Mapping[str, Any]],
        run_id: int | None,
        created_at: str,
    ) -> None:
        """Record the creates of one chunk about to be sent into ``target`` (system, entity
        type), in one row: one item per create (see :class:`CreateIntent`)."""
        key = uuid.uuid4().hex
        entries = list(items)
        row = (key, dataflow, *target, dumps(entries), run_id, created_at)
        self.db.many(self._insert, [row], "samband_intents")
        self._chunk_of.update((item["key"], key) for item in entries)

    def open(self) -> list[dict[str, Any]]:
        """Every create whose outcome is not known yet, one dict per record (keys as
        :meth:`add` takes them, ``values`` as JSON text)."""
        result = []
        for row, items in self._chunk_rows():
            for item in items:
                result.append(
                    {
                        "key": item["key"],
                        "dataflow": row.dataflow,
                        "source_ref": item["source_ref"],
                        "target_system": row.target_system,
                        "target_etype": row.target_etype,
                        "external_ref": item["external_ref"],
                        "values": dumps(item["values"]),
                        "run_id": row.run_id,
                        "created_at": row.created_at,
                    }
                )
        return result

    def _chunk_rows(self) -> list[tuple[Any, list[dict[str, Any]]]]:
        """Every chunk row of intents with its items, learning which chunk holds which."""
        rows = []
        for row in self.db.conn.execute(select(s.intents).order_by(s.intents.c.created_at)):
            items = loads(row.items)
            self._chunk_of.update((item["key"], row.key) for item in items)
            rows.append((row, items))
        return rows

    def remove(self, keys: list[str]) -> None:
        """Close these intents (their create's outcome is recorded); a chunk's row goes
        with its last one."""
        if not keys:
            return
        if any(key not in self._chunk_of for key in keys):
            self._chunk_rows()  # written by another process: learn their chunks
        gone: dict[str, set[str]] = {}
        for key in keys:
            chunk = self._chunk_of.pop(key, None)
            if chunk is not None:
                gone.setdefault(chunk, set()).add(key)
        for chunk, closed in gone.items():
            found = self.db.rows('SELECT items FROM samband_intents WHERE "key" = ?', (chunk,))
            if not found:
                continue
            left = [item for item in loads(found[0][0]) if item["key"] not in closed]
            if left:
                self.db.query(
                    'UPDATE samband_intents SET items = ? WHERE "key" = ?', (dumps(left), chunk)
                )
            else:
                self.db.query('DELETE FROM samband_intents WHERE "key" = ?', (chunk,))
