"""The pairs a user unlinked (``samband unlink``): never linked again by a run, and while
held, their source neither linked nor created until the user decides."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, delete, select, update

from samband.store import schema as s
from samband.store._database import Database, chunks
from samband.store.rows import now_iso


class Unlinked:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, dataflow: str, source_ref: str, target_ref: str) -> None:
        c = s.unlinked.c
        self.db.conn.execute(
            delete(s.unlinked).where(
                and_(c.dataflow == dataflow, c.source_ref == source_ref, c.target_ref == target_ref)
            )
        )
        self.db.conn.execute(
            s.unlinked.insert().values(
                dataflow=dataflow,
                source_ref=source_ref,
                target_ref=target_ref,
                held=True,
                at=now_iso(),
            )
        )

    def remove(self, dataflow: str, source_ref: str, target_ref: str) -> None:
        c = s.unlinked.c
        self.db.conn.execute(
            delete(s.unlinked).where(
                and_(c.dataflow == dataflow, c.source_ref == source_ref, c.target_ref == target_ref)
            )
        )

    def of(self, dataflow: str, source_refs: Iterable[str]) -> dict[str, tuple[set[str], bool]]:
        """For each of ``source_refs`` unlinked by hand in ``dataflow``: the target refs it
        must not be linked to, and whether it is held."""
        if not self.db.any_row(s.unlinked.name, dataflow):
            return {}
        c = s.unlinked.c
        result: dict[str, tuple[set[str], bool]] = {}
        for part in chunks(list(source_refs)):
            rows = self.db.conn.execute(
                select(c.source_ref, c.target_ref, c.held).where(
                    and_(c.dataflow == dataflow, c.source_ref.in_(part))
                )
            )
            for source_ref, target_ref, held in rows:
                targets, was_held = result.get(source_ref, (set(), False))
                targets.add(target_ref)
                result[source_ref] = (targets, was_held or bool(held))
        return result

    def release(self, source_refs: Iterable[str]) -> int:
        """Let the run link or create ``source_refs`` again (never to the records they
        were unlinked from)."""
        count = 0
        for part in chunks(list(source_refs)):
            count += self.db.conn.execute(
                update(s.unlinked)
                .where(and_(s.unlinked.c.source_ref.in_(part), s.unlinked.c.held.is_(True)))
                .values(held=False)
            ).rowcount
        return count
