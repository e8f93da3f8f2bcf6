"""Per-dataflow controls (pause, writes to a side, full sync), the records a dataflow has
still to plan, and the baseline of "only new records" (see
:mod:`samband.engine.controls`)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, delete, func, select, update

from samband.store import schema as s
from samband.store._database import Database, chunks
from samband.store.rows import now_iso


@dataclass(frozen=True)
class ControlRow:
    dataflow: str
    paused: bool = False
    write_source: bool = True
    write_target: bool = True
    full_sync: bool = True
    start_mark: str | None = None
    baseline_taken: bool = False
    updated_at: str | None = None
    updated_by: str | None = None


class DataflowControls:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- the controls ------------------------------------------------------------------
    def all(self) -> dict[str, ControlRow]:
        c = s.dataflow_controls.c
        rows = self.db.conn.execute(
            select(
                c.dataflow,
                c.paused,
                c.write_source,
                c.write_target,
                c.full_sync,
                c.start_mark,
                c.baseline_taken,
                c.updated_at,
                c.updated_by,
            )
        )
        return {
            row[0]: ControlRow(
                row[0],
                bool(row[1]),
                bool(row[2]),
                bool(row[3]),
                bool(row[4]),
                row[5],
                bool(row[6]),
                row[7],
                row[8],
            )
            for row in rows
        }

    def get(self, dataflow: str) -> ControlRow:
        return self.all().get(dataflow) or ControlRow(dataflow)

    def set(self, dataflow: str, by: str | None, **values: object) -> ControlRow:
        """Change some controls of ``dataflow`` (the others keep their values)."""
        table = s.dataflow_controls
        values = {**values, "updated_at": now_iso(), "updated_by": by}
        found = self.db.conn.execute(
            select(table.c.dataflow).where(table.c.dataflow == dataflow)
        ).first()
        if found is None:
            current = ControlRow(dataflow).__dict__ | values
            self.db.conn.execute(table.insert().values(**current))
        else:
            self.db.conn.execute(update(table).where(table.c.dataflow == dataflow).values(**values))
        return self.get(dataflow)

    def mark_baseline(self, dataflow: str) -> None:
        table = s.dataflow_controls
        self.db.conn.execute(
            update(table).where(table.c.dataflow == dataflow).values(baseline_taken=True)
        )

    def rename(self, old: str, new: str) -> None:
        """Dataflow ``old`` is called ``new`` now: its controls go with it (what a former
        dataflow of that name left is dropped)."""
        for table in (s.dataflow_controls, s.dataflow_held, s.dataflow_baseline):
            where = table.c.dataflow == old
            if self.db.conn.execute(select(table.c.dataflow).where(where).limit(1)).first():
                self.db.conn.execute(delete(table).where(table.c.dataflow == new))
                self.db.conn.execute(update(table).where(where).values(dataflow=new))

    # -- records still to plan ------------------------------------------------------------
    def hold(self, dataflow: str, refs: Iterable[str], reason: str) -> int:
        table = s.dataflow_held
        refs = sorted(builtins.set(refs))
        if not refs:
            return 0
        known: builtins.set[str] = builtins.set()
        for part in chunks(refs):
            known.update(
                row[0]
                for row in self.db.conn.execute(
                    select(table.c.ref).where(
                        and_(
                            table.c.dataflow == dataflow,
                            table.c.reason == reason,
                            table.c.ref.in_(part),
                        )
                    )
                )
            )
        new = [ref for ref in refs if ref not in known]
        if new:
            now = now_iso()
            self.db.conn.execute(
                table.insert(),
                [{"dataflow": dataflow, "ref": ref, "reason": reason, "at": now} for ref in new],
            )
        return len(new)

    def release(self, dataflow: str, reason: str) -> list[str]:
        """The refs held for ``dataflow`` for ``reason``, no longer held."""
        table = s.dataflow_held
        where = and_(table.c.dataflow == dataflow, table.c.reason == reason)
        refs = [row[0] for row in self.db.conn.execute(select(table.c.ref).where(where))]
        if refs:
            self.db.conn.execute(delete(table).where(where))
        return refs

    def count_held(self) -> dict[str, dict[str, int]]:
        """dataflow → reason → records held."""
        table = s.dataflow_held
        result: dict[str, dict[str, int]] = {}
        rows = self.db.conn.execute(
            select(table.c.dataflow, table.c.reason, func.count()).group_by(
                table.c.dataflow, table.c.reason
            )
        )
        for dataflow, reason, count in rows:
            result.setdefault(dataflow, {})[reason] = int(count)
        return result

    def quarantined(self) -> dict[str, int]:
        """dataflow → records quarantined (not dismissed)."""
        table = s.dead_letters
        rows = self.db.conn.execute(
            select(table.c.dataflow, func.count())
            .where(table.c.dismissed_at.is_(None))
            .group_by(table.c.dataflow)
        )
        return {dataflow: int(count) for dataflow, count in rows}

    # -- the baseline of "only new records" -------------------------------------------------
    def add_baseline(self, dataflow: str, refs: Iterable[str]) -> int:
        table = s.dataflow_baseline
        rows = [{"dataflow": dataflow, "ref": ref} for ref in sorted(builtins.set(refs))]
        for part in chunks(rows):
            self.db.conn.execute(table.insert(), part)
        return len(rows)

    def in_baseline(self, dataflow: str, refs: Iterable[str]) -> builtins.set[str]:
        table = s.dataflow_baseline
        found: builtins.set[str] = builtins.set()
        for part in chunks(list(refs)):
            found.update(
                row[0]
                for row in self.db.conn.execute(
                    select(table.c.ref).where(
                        and_(table.c.dataflow == dataflow, table.c.ref.in_(part))
                    )
                )
            )
        return found

    def drop_baseline(self, dataflow: str) -> list[str]:
        """Forget the baseline of ``dataflow``; the refs it held."""
        table = s.dataflow_baseline
        where = table.c.dataflow == dataflow
        refs = [row[0] for row in self.db.conn.execute(select(table.c.ref).where(where))]
        self.db.conn.execute(delete(table).where(where))
        return refs
