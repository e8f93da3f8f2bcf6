"""Collect: read what changed since the stored cursor; store snapshots; mark changes dirty.

A record whose projected content (the properties dataflows use) hashes the same as its
snapshot is not a change.  Types without a change feed are scanned in full and records
no longer returned are marked deleted, unless the read returned far fewer records than the
type had (:mod:`samband.engine.fullscan`: then they are held until confirmed).  Each page
is stored — snapshots, merge-criteria index, cursor — in one transaction, so a crash never
moves a cursor past unstored data, and the dirty marks keep what is not planned yet for the
next run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from samband import exactjson
from samband.connectors.base import Connector, RecordData
from samband.engine.batch import Batch
from samband.engine.context import RunContext
from samband.engine.fullscan import FullScanGuard
from samband.engine.model import TypeUse
from samband.engine.records import match_entries, snapshot_row
from samband.errors import CursorExpired
from samband.store.rows import Ref, Snapshot, SnapshotRow, new_row
from samband.store.store import Store


@dataclass
class CollectStats:
    read: int = 0
    changed: int = 0
    deleted: int = 0
    pages: int = 0
    unreadable: int = 0  # records the system answered but could not give as they are
    held: int = 0  # records a complete read cut short did not return, not taken as deleted


class Collector:
    def __init__(
        self, store: Store, run_id: int | None = None, guard: FullScanGuard | None = None
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.guard = guard  # None: every record a complete read misses is deleted

    def collect(
        self, use: TypeUse, connector: Connector, on_page: Callable[[int], None] | None = None
    ) -> CollectStats:
        """Read one entity type; ``on_page`` is called after each stored page with the
        number of records it held."""
        system, etype = use.key
        cursor, signature = self.store.get_cursor(system, etype)
        if signature != use.signature:
            cursor = None  # the dataflows need other properties now: read everything again
        try:
            return self._read(use, connector, cursor, on_page)
        except CursorExpired:
            # the change feed no longer reaches back to the cursor: read everything
            return self._read(use, connector, None, on_page)

    def _read(
        self,
        use: TypeUse,
        connector: Connector,
        cursor: str | None,
        on_page: Callable[[int], None] | None,
    ) -> CollectStats:
        system, etype = use.key
        stats = CollectStats()
        incremental = use.entity_type.incremental
        # A read from no cursor returns every record.  For a type read before (a new
        # signature, a change feed that lost our place), records it does not return were
        # deleted meanwhile; the cursor is kept back until the read is complete, so a run
        # that stops half-way reads everything again.
        detect = not incremental or (
            cursor is None and self.store.has_snapshots(system, etype, live=True)
        )
        seen: set[str] | None = set() if detect else None
        # a type never read before has no snapshots to compare with (an initial load)
        fresh = cursor is None and not self.store.has_snapshots(system, etype)
        last_cursor: str | None = None
        for page in connector.read(etype, cursor):
            stats.pages += 1
            stats.read += len(page.records)
            with self.store.tx():
                self._store_page(use, page.records, seen, stats, fresh)
                if incremental and page.cursor is not None:
                    if detect:
                        last_cursor = page.cursor
                    else:
                        self.store.set_cursor(system, etype, page.cursor, use.signature)
            if on_page is not None:
                on_page(len(page.records))
        if seen is not None:
            if not self._detect_deletions(use, seen, stats):
                last_cursor = None  # held: the next run reads the type in full again
            with self.store.tx():
                self.store.set_cursor(system, etype, last_cursor, use.signature)
        else:
            if cursor is None and self.guard is not None:
                with self.store.tx():
                    self.guard.complete(use.key, stats.read)
            if cursor is None and stats.pages == 0:
                with self.store.tx():
                    self.store.set_cursor(system, etype, None, use.signature)
        return stats

    def _store_page(
        self,
        use: TypeUse,
        records: list[RecordData],
        seen: set[str] | None,
        stats: CollectStats,
        fresh: bool = False,
    ) -> None:
        system, etype = use.key
        if not records:
            return
        by_id: dict[str, RecordData] = {}
        for record in records:
            by_id[str(record.id)] = record  # the last one of a page wins
        if seen is not None:
            seen.update(by_id)
        existing = {} if fresh else self.store.snapshot_hashes(system, etype, list(by_id))
        rows: list[SnapshotRow] = []
        projected: list[dict[str, Any] | None] = []
        indexed = use.indexed  # merge-criteria keys (and external refs) to store
        for rid, record in by_id.items():
            old = existing.get(rid)
            if record.problem is not None:
                # quarantined with the reason; it was seen (not deleted) and what was
                # stored of it stays until it can be read again
                self._unreadable(use, rid, record.problem)
                stats.unreadable += 1
                continue
            if record.deleted:
                if old is not None and not old[1]:
                    rows.append(self._deleted_row(use, rid))
                    projected.append(None)
                    stats.deleted += 1
                continue
            try:
                row = snapshot_row(use, record, None)
            except TypeError:
                problem = _not_text(use, record)
                if problem is None:
                    raise
                self._unreadable(use, rid.encode("utf-8", "backslashreplace").decode(), problem)
                stats.unreadable += 1
                continue
            if old is not None and old[0] == row.hash and not old[1]:
                continue
            row = new_row(SnapshotRow, (*row[:8], self.store.next_seq()))  # queued
            rows.append(row)
            if indexed:
                projected.append(orjson.loads(row.data))  # as stored: JSON types only
            stats.changed += 1
        if not rows:
            return
        self.store.put_snapshots(rows)
        if indexed:
            for name, entries in match_entries(use, rows, projected).items():
                self.store.set_match_keys(name, entries)

    def _unreadable(self, use: TypeUse, rid: str, reason: str) -> None:
        ref = Ref.text(*use.key, rid)
        for flow in [*use.as_source, *use.as_target]:
            self.store.add_dead_letter(ref, flow.key, "unreadable", reason, None, self.run_id)

    def _deleted_row(self, use: TypeUse, rid: str) -> SnapshotRow:
        return SnapshotRow.deleted_record(*use.key, rid, None, self.store.next_seq())

    def _detect_deletions(self, use: TypeUse, seen: set[str], stats: CollectStats) -> bool:
        """Mark deleted the live records a complete read did not return; False when the
        guard holds them (the read looks cut short)."""
        system, etype = use.key
        live = self.store.unseen_live(system, etype, -1)
        gone = [rid for rid in live if rid not in seen]
        with self.store.tx():
            if self.guard is not None and not self.guard.take_deletions(
                use.key, len(seen), len(live), len(gone)
            ):
                stats.held += len(gone)
                return False
            if not gone:
                return True
            stats.deleted += len(gone)
            rows = [self._deleted_row(use, rid) for rid in gone]
            self.store.put_snapshots(rows)
            for name, entries in match_entries(use, rows, [None] * len(rows)).items():
                self.store.set_match_keys(name, entries)
        return True


def _not_text(use: TypeUse, record: RecordData) -> str | None:
    """Why a record's values cannot be stored: a string with a lone surrogate (half of a
    character, e.g. an emoji cut in two, which a JSON file may hold as ``\\ud83d``);
    None when that is not it."""
    bad = exactjson.unpaired_surrogate(record.data)
    if bad is None:
        return None
    path, surrogate, position = bad
    return (
        f"{path} contains an unpaired surrogate ({surrogate!r} at position {position}; half "
        f"of a character, e.g. an emoji cut in two), which is not text: correct the value "
        f"in {use.key[0]}"
    )


def read_again(context: RunContext, use: TypeUse, snaps: dict[str, Snapshot], batch: Batch) -> None:
    """Read again the records of a chunk that ``samband retry`` (or an update that found
    them edited) queued to be read, so a fix made in their system is seen even when no
    change feed reports it.  Their entries in ``snaps`` are replaced by what was read."""
    stale = [snap for snap in snaps.values() if snap.refresh]
    if not stale:
        return
    connector = context.connector(use.key[0])
    for snap in stale:
        record = connector.get(use.key[1], snap.rid)
        if record is None:
            row = SnapshotRow.deleted_record(*use.key, snap.rid, snap.modified, 0)
            data: dict[str, Any] = {}
        else:
            problem = record.problem
            try:
                row = snapshot_row(use, record, 0)
            except TypeError:
                problem = problem or _not_text(use, record)
                if problem is None:
                    raise
            if problem is not None:
                # still unreadable: quarantined again with the reason, not planned
                del snaps[snap.rid]
                for flow in [*use.as_source, *use.as_target]:
                    context.ledger.quarantine(flow, snap.ref, "unreadable", problem, batch)
                continue
            data = orjson.loads(row.data)
        snaps[snap.rid] = Snapshot(*use.key, snap.rid, row.hash, data, row.modified, row.deleted)
        batch.snapshots[snap.ref] = row
