"""What a run leaves for people to read: the audit trail, conflicts, dead letters
(records set aside with the reason) and the records waiting for a parent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import and_, delete, select, update

from samband.store import schema as s
from samband.store._database import Database, chunks
from samband.store.rows import AuditRow, ConflictRow, dumps, now_iso


class Journal:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert_audit = db.sql.insert(s.audit, AuditRow._fields)

    # -- audit and conflicts -------------------------------------------------------------
    def add_audit(self, rows: Iterable[AuditRow | Mapping[str, Any]]) -> None:
        values = [row if type(row) is AuditRow else AuditRow.of(row) for row in rows]
        self.db.many(self._insert_audit, values, "samband_audit")  # type: ignore[arg-type]

    def add_conflicts(self, rows: Iterable[ConflictRow | Mapping[str, Any]]) -> None:
        values = [row._asdict() if isinstance(row, ConflictRow) else dict(row) for row in rows]
        if values:
            self.db.conn.execute(s.conflicts.insert(), values)

    def conflicts(self) -> list[dict[str, Any]]:
        return self.db.table_rows(s.conflicts, order=s.conflicts.c.id)

    def conflict(self, conflict_id: int) -> dict[str, Any] | None:
        rows = self.db.table_rows(s.conflicts, where=s.conflicts.c.id == conflict_id)
        return rows[0] if rows else None

    def resolve_conflict(self, conflict_id: int, take: str) -> None:
        self.db.conn.execute(
            update(s.conflicts)
            .where(s.conflicts.c.id == conflict_id)
            .values(resolution=take, resolved_at=now_iso(), applied_at=None)
        )

    def pending_resolutions(self) -> list[dict[str, Any]]:
        """Conflicts resolved by a user whose chosen value no run has applied yet."""
        c = s.conflicts.c
        return self.db.table_rows(
            s.conflicts,
            where=and_(c.resolution.is_not(None), c.applied_at.is_(None)),
            order=c.id,
        )

    def resolutions_applied(self, ids: Iterable[int]) -> None:
        for part in chunks(list(ids)):
            self.db.conn.execute(
                update(s.conflicts).where(s.conflicts.c.id.in_(part)).values(applied_at=now_iso())
            )

    # -- dead letters -----------------------------------------------------------------
    def add_dead_letter(
        self, ref: str, dataflow: str, kind: str, reason: str, details: Any, run_id: int | None
    ) -> None:
        now = now_iso()
        c = s.dead_letters.c
        conn = self.db.conn
        existing = conn.execute(
            select(c.id, c.attempts).where(and_(c.ref == ref, c.dataflow == dataflow))
        ).first()
        if existing is None:
            conn.execute(
                s.dead_letters.insert().values(
                    ref=ref,
                    dataflow=dataflow,
                    kind=kind,
                    reason=reason,
                    details=dumps(details),
                    attempts=1,
                    first_at=now,
                    last_at=now,
                    run_id=run_id,
                )
            )
        else:
            conn.execute(
                update(s.dead_letters)
                .where(c.id == existing.id)
                .values(
                    kind=kind,
                    reason=reason,
                    details=dumps(details),
                    attempts=existing.attempts + 1,
                    last_at=now,
                    run_id=run_id,
                    dismissed_at=None,  # it failed again: shown again
                )
            )

    def resolve_dead_letters(self, refs: Iterable[str], dataflow: str) -> None:
        if not self.db.any_row("samband_dead_letters", dataflow):
            return
        c = s.dead_letters.c
        for part in chunks(list(refs)):
            self.db.conn.execute(
                delete(s.dead_letters).where(and_(c.dataflow == dataflow, c.ref.in_(part)))
            )

    def dead_letters(
        self, refs: list[str] | None = None, limit: int | None = None, *, dismissed: bool = False
    ) -> list[dict[str, Any]]:
        """The records set aside; ``dismissed`` ones too (else not)."""
        query = select(s.dead_letters).order_by(s.dead_letters.c.id)
        if not dismissed:
            query = query.where(s.dead_letters.c.dismissed_at.is_(None))
        if refs:
            query = query.where(s.dead_letters.c.ref.in_(refs))
        if limit:
            query = query.limit(limit)
        return [dict(r._mapping) for r in self.db.conn.execute(query)]

    def dead_letter_rows(self, after: int, limit: int) -> list[tuple[Any, ...]]:
        """The next ``limit`` records set aside and not dismissed, by id after ``after``:
        (id, ref, dataflow, kind, reason, attempts, last_at).  An export reads them page by
        page, as tuples: the whole quarantine may be large."""
        return self.db.rows(
            "SELECT id, ref, dataflow, kind, reason, attempts, last_at FROM samband_dead_letters"
            " WHERE dismissed_at IS NULL AND id > ? ORDER BY id LIMIT ?",
            (after, limit),
        )

    def dismiss_dead_letters(self, ids: list[int]) -> None:
        for part in chunks(ids):
            self.db.conn.execute(
                update(s.dead_letters)
                .where(s.dead_letters.c.id.in_(part))
                .values(dismissed_at=now_iso())
            )

    def remove_dead_letters(self, ids: list[int]) -> None:
        for part in chunks(ids):
            self.db.conn.execute(delete(s.dead_letters).where(s.dead_letters.c.id.in_(part)))

    # -- waiting for a parent ------------------------------------------------------------
    def note_waiting(self, dataflow: str, ref: str, parent: str, run_id: int) -> int:
        """Record that ``ref`` waits for ``parent``; return for how many runs it has."""
        c = s.waiting.c
        conn = self.db.conn
        row = conn.execute(
            select(c.runs, c.last_run).where(and_(c.dataflow == dataflow, c.ref == ref))
        ).first()
        if row is None:
            conn.execute(
                s.waiting.insert().values(
                    dataflow=dataflow, ref=ref, parent=parent, runs=1, last_run=run_id
                )
            )
            return 1
        runs = row.runs + (1 if row.last_run != run_id else 0)
        conn.execute(
            update(s.waiting)
            .where(and_(c.dataflow == dataflow, c.ref == ref))
            .values(runs=runs, last_run=run_id, parent=parent)
        )
        return int(runs)

    def done_waiting(self, dataflow: str, refs: Iterable[str]) -> None:
        if not self.db.any_row("samband_waiting", dataflow):
            return
        c = s.waiting.c
        for part in chunks(list(refs)):
            self.db.conn.execute(
                delete(s.waiting).where(and_(c.dataflow == dataflow, c.ref.in_(part)))
            )
