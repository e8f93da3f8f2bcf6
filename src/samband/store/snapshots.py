"""Snapshots (the last collected state of each record) and the queue of records to plan
(their dirty marks)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import Any

from sqlalchemy import and_, false, func, or_, select, update

from samband.store import schema as s
from samband.store._database import Database, chunks
from samband.store.rows import Ref, Snapshot, SnapshotRow, loads
from samband.store.search import SearchTerms

SNAPSHOT_COLUMNS = ("system", "etype", "rid", "hash", "data", "modified", "deleted", "refresh")
SNAPSHOT_KEY = ("system", "etype", "rid")
_BY_KEY = itemgetter(0, 1, 2)


class Snapshots:
    def __init__(self, db: Database) -> None:
        self.db = db
        sql = db.sql
        self._put = sql.upsert(s.snapshots, SNAPSHOT_COLUMNS, SNAPSHOT_KEY)
        self._mark_dirty = sql.upsert(s.dirty, (*SNAPSHOT_KEY, "seq"), SNAPSHOT_KEY)
        self._unmark_dirty = sql.delete(s.dirty, SNAPSHOT_KEY)
        self._clear_dirty = sql.delete(s.dirty, (*SNAPSHOT_KEY, "seq"))
        self.search = SearchTerms(db)

    # -- snapshots ----------------------------------------------------------------
    def hashes(self, system: str, etype: str, rids: list[str]) -> dict[str, tuple[str, bool]]:
        """rid → (content hash, deleted) of the stored snapshots.  A snapshot to be read
        again (``refresh``) has no hash: whatever is read next is a change."""
        result: dict[str, tuple[str, bool]] = {}
        for part in chunks(rids):
            rows = self.db.rows(
                "SELECT rid, hash, deleted, refresh FROM samband_snapshots"
                " WHERE system = ? AND etype = ? AND rid IN ",
                (system, etype),
                part,
            )
            for rid, hash_, deleted, refresh in rows:
                result[rid] = ("" if refresh else hash_, bool(deleted))
        return result

    def many(self, system: str, etype: str, rids: Iterable[str]) -> dict[str, Snapshot]:
        result: dict[str, Snapshot] = {}
        for part in chunks(list(rids)):
            rows = self.db.rows(
                "SELECT rid, hash, data, modified, deleted, refresh FROM samband_snapshots"
                " WHERE system = ? AND etype = ? AND rid IN ",
                (system, etype),
                part,
            )
            for rid, hash_, data, modified, deleted, refresh in rows:
                result[rid] = Snapshot(
                    system, etype, rid, hash_, loads(data), modified, bool(deleted), bool(refresh)
                )
        return result

    def live(self, system: str, etype: str) -> dict[str, Snapshot]:
        """Every snapshot of a type that is not deleted (for recovering a create that has
        no other way to be looked up)."""
        c = s.snapshots.c
        rids = [
            row.rid
            for row in self.db.conn.execute(
                select(c.rid).where(
                    and_(c.system == system, c.etype == etype, c.deleted == false())
                )
            )
        ]
        return self.many(system, etype, rids)

    def one(self, ref: str) -> Snapshot | None:
        system, etype, rid = Ref.parse(ref)
        return self.many(system, etype, [rid]).get(rid)

    def put(self, rows: Iterable[SnapshotRow | Mapping[str, Any]]) -> None:
        """Insert or replace snapshots (``seen_run`` is kept as it is) and set their dirty
        marks (see :class:`~samband.store.rows.SnapshotRow`)."""
        typed = [row if type(row) is SnapshotRow else SnapshotRow.of(row) for row in rows]
        values: list[tuple[Any, ...]] = [row[:8] for row in typed]  # the stored columns
        # in key order (a stable sort: the last of equal keys still wins), so processes
        # writing the same rows at once lock them in one order and do not deadlock
        values.sort(key=_BY_KEY)
        self.db.many(self._put, values, "samband_snapshots")
        self.search.queue(typed)
        marks = [(row.system, row.etype, row.rid, row.dirty) for row in typed if row.dirty]
        marks.sort(key=_BY_KEY)
        self.db.many(self._mark_dirty, marks, "samband_dirty")
        cleared = sorted((row.system, row.etype, row.rid) for row in typed if row.dirty == 0)
        self.db.many(self._unmark_dirty, cleared)

    def referring(self, system: str, etype: str, path: str, ids: Iterable[str]) -> list[str]:
        """The live records of a type whose ``path`` holds one of ``ids`` (the children of
        those records; a scan of the type, for the rare times a parent goes away)."""
        found: list[str] = []
        for part in chunks(list(ids)):
            if self.db.dialect == "sqlite":
                # a JSON number and a JSON string of one id are both that id
                values = part + [int(v) for v in part if v.isdigit() and len(v) < 19]
                sql = (
                    "SELECT rid FROM samband_snapshots WHERE system = ? AND etype = ?"
                    " AND deleted = ? AND json_extract(data, ?) IN "
                )
                params: tuple[Any, ...] = (system, etype, False, f'$."{_json_key(path)}"')
            else:
                values = part
                sql = (
                    "SELECT rid FROM samband_snapshots WHERE system = ? AND etype = ?"
                    " AND deleted = ? AND (data::jsonb ->> ?) IN "
                )
                params = (system, etype, False, path)
            found.extend(row[0] for row in self.db.rows(sql, params, values))
        return found

    def unseen_live(self, system: str, etype: str, run_id: int) -> list[str]:
        c = s.snapshots.c
        rows = self.db.conn.execute(
            select(c.rid).where(
                and_(
                    c.system == system,
                    c.etype == etype,
                    c.deleted.is_(False),
                    or_(c.seen_run.is_(None), c.seen_run != run_id),
                )
            )
        )
        return [r.rid for r in rows]

    def exist(self, system: str, etype: str, *, live: bool = False) -> bool:
        """Whether any record of the type has been read (and, with ``live``, is not
        deleted)."""
        rows = self.db.rows(
            "SELECT 1 FROM samband_snapshots WHERE system = ? AND etype = ?"
            + (" AND deleted = ?" if live else "")
            + " LIMIT 1",
            (system, etype, False) if live else (system, etype),
        )
        return bool(rows)

    def live_rids(self, system: str, etype: str) -> list[str]:
        c = s.snapshots.c
        rows = self.db.conn.execute(
            select(c.rid).where(and_(c.system == system, c.etype == etype, c.deleted.is_(False)))
        )
        return [r.rid for r in rows]

    def count_live(self, system: str, etype: str) -> int:
        c = s.snapshots.c
        return int(
            self.db.conn.execute(
                select(func.count()).where(
                    and_(c.system == system, c.etype == etype, c.deleted.is_(False))
                )
            ).scalar_one()
        )

    # -- the queue of records to plan ---------------------------------------------
    def queue(self, refs: Iterable[str], *, refresh: bool = False) -> int:
        """Queue records for planning; ``refresh`` also makes the engine read them again
        from their system first (``samband retry`` after a fix).  The number of records
        queued (refs never collected are not)."""
        count = 0
        c = s.snapshots.c
        for ref in refs:
            system, etype, rid = Ref.parse(ref)
            if refresh:
                self.db.conn.execute(
                    update(s.snapshots)
                    .where(and_(c.system == system, c.etype == etype, c.rid == rid))
                    .values(refresh=True)
                )
            if self.db.rows(
                "SELECT 1 FROM samband_snapshots WHERE system = ? AND etype = ? AND rid = ?",
                (system, etype, rid),
            ):
                self.db.many(self._mark_dirty, [(system, etype, rid, self.db.next_seq())])
                count += 1
        return count

    def queue_all(self, refs: Iterable[str]) -> int:
        """Queue records known to be stored, with one mark (see ``queue_linked``)."""
        seq = self.db.next_seq()
        marks = sorted((*Ref.parse(ref), seq) for ref in refs)
        self.db.many(self._mark_dirty, marks, "samband_dirty")
        return len(marks)

    def queued(
        self, system: str, etype: str, after: str | None, limit: int
    ) -> list[tuple[str, int]]:
        """Up to ``limit`` queued records of a type, (rid, mark) in rid order after
        ``after``."""
        sql = "SELECT rid, seq FROM samband_dirty WHERE system = ? AND etype = ?"
        params: tuple[Any, ...] = (system, etype)
        if after is not None:
            sql += " AND rid > ?"
            params += (after,)
        rows = self.db.rows(f"{sql} ORDER BY rid LIMIT {int(limit)}", params)
        return [(rid, int(seq)) for rid, seq in rows]

    def count_queued(self, system: str, etype: str, *, deleted: bool = False) -> int:
        """Queued records of a type (only the deleted ones with ``deleted``)."""
        if not deleted:
            sql = "SELECT count(*) FROM samband_dirty WHERE system = ? AND etype = ?"
            return int(self.db.rows(sql, (system, etype))[0][0])
        rows = self.db.rows(
            "SELECT count(*) FROM samband_dirty d JOIN samband_snapshots n"
            " ON n.system = d.system AND n.etype = d.etype AND n.rid = d.rid"
            " WHERE d.system = ? AND d.etype = ? AND n.deleted = ?",
            (system, etype, True),
        )
        return int(rows[0][0])

    def deleted_queued(self, system: str, etype: str) -> list[str]:
        """The queued records of a type that were deleted."""
        rows = self.db.rows(
            "SELECT d.rid FROM samband_dirty d JOIN samband_snapshots n"
            " ON n.system = d.system AND n.etype = d.etype AND n.rid = d.rid"
            " WHERE d.system = ? AND d.etype = ? AND n.deleted = ?",
            (system, etype, True),
        )
        return [row[0] for row in rows]

    def unqueue(self, system: str, etype: str, seen: list[tuple[str, int]]) -> None:
        """Clear the dirty mark of refs whose mark did not change since they were read."""
        self.db.many(self._clear_dirty, [(system, etype, rid, dirty) for rid, dirty in seen])


def _json_key(path: str) -> str:
    """A key inside a double-quoted SQLite JSON path."""
    return path.replace("\\", "\\\\").replace('"', '\\"')
