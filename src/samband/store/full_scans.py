"""What the complete reads of each entity type returned, and the reads held back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select, update

from samband.store import schema as s
from samband.store._database import Database
from samband.store.rows import now_iso


@dataclass(frozen=True)
class FullScan:
    """One entity type's complete reads: the last one taken as complete and, if the
    latest one was held back, what it returned."""

    system: str
    etype: str
    complete_count: int | None
    complete_at: str | None
    complete_run: int | None
    held_count: int | None
    held_expected: int | None
    held_unseen: int | None
    held_at: str | None
    held_run: int | None
    confirmed_at: str | None
    confirmed_run: int | None

    @property
    def held(self) -> bool:
        return self.held_at is not None


class FullScans:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, system: str, etype: str) -> FullScan | None:
        c = s.full_scans.c
        row = self.db.conn.execute(
            select(s.full_scans).where(and_(c.system == system, c.etype == etype))
        ).first()
        return FullScan(**row._mapping) if row else None

    def complete(self, system: str, etype: str, count: int, run_id: int | None) -> None:
        """A complete read of ``count`` records was taken as it is; a hold ends."""
        self._put(
            system,
            etype,
            complete_count=count,
            complete_at=now_iso(),
            complete_run=run_id,
            **_NOT_HELD,
        )

    def confirm(self, system: str, etype: str, count: int, run_id: int | None) -> None:
        """As :meth:`complete`, for a read that was short and whose deletions a person
        confirmed."""
        self.complete(system, etype, count, run_id)
        c = s.full_scans.c
        self.db.conn.execute(
            update(s.full_scans)
            .where(and_(c.system == system, c.etype == etype))
            .values(confirmed_at=now_iso(), confirmed_run=run_id)
        )

    def hold(
        self, system: str, etype: str, count: int, expected: int, unseen: int, run_id: int | None
    ) -> None:
        """A complete read of ``count`` records (of ``expected``) was held back: the
        ``unseen`` records it did not return are not taken as deleted."""
        self._put(
            system,
            etype,
            held_count=count,
            held_expected=expected,
            held_unseen=unseen,
            held_at=now_iso(),
            held_run=run_id,
        )

    def held(self) -> list[FullScan]:
        c = s.full_scans.c
        rows = self.db.conn.execute(
            select(s.full_scans).where(c.held_at.is_not(None)).order_by(c.system, c.etype)
        )
        return [FullScan(**row._mapping) for row in rows]

    def _put(self, system: str, etype: str, **values: Any) -> None:
        row = {"system": system, "etype": etype, **values}
        self.db.upsert(s.full_scans, [row], ["system", "etype"])


_NOT_HELD: dict[str, Any] = dict.fromkeys(
    ("held_count", "held_expected", "held_unseen", "held_at", "held_run")
)
