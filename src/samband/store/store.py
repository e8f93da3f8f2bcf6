"""The state store: one facade over its table families.  SQLite (embedded, WAL) by
default; PostgreSQL for shared deployments.

=================  =========================================================
family             module
=================  =========================================================
connection         :mod:`samband.store._database` (transactions, statements)
runs, leases       :mod:`samband.store.runs`
cursors            :mod:`samband.store.cursors`
complete reads     :mod:`samband.store.full_scans`
snapshots, queue   :mod:`samband.store.snapshots`
links, dataflows,  :mod:`samband.store.links`
merge index
create intents     :mod:`samband.store.intents`
audit, conflicts,  :mod:`samband.store.journal`
dead letters,
waiting
=================  =========================================================

Every method that writes joins the current transaction; :meth:`Store.tx` commits it
(or, in a dry run, keeps it open so that :meth:`Store.close` rolls everything back).
The values read and written are in :mod:`samband.store.rows`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url

from samband.store import schema as s
from samband.store._database import Database, db_message, redact_url
from samband.store._statements import Statements
from samband.store.controls import DataflowControls
from samband.store.cursors import Cursors
from samband.store.full_scans import FullScan, FullScans
from samband.store.intents import Intents
from samband.store.journal import Journal
from samband.store.links import Dataflows, Links, MatchIndex
from samband.store.rows import (
    AuditRow,
    ConflictRow,
    CreateIntent,
    Link,
    LinkRow,
    Ref,
    Snapshot,
    SnapshotRow,
    dumps,
    loads,
    now_iso,
)
from samband.store.runs import Leases, Runs
from samband.store.snapshots import Snapshots
from samband.store.unlinked import Unlinked

__all__ = [
    "Link",
    "Ref",
    "Snapshot",
    "Store",
    "dumps",
    "loads",
    "now_iso",
    "redact_url",
    "store_message",
]


def store_message(exc: BaseException) -> str:
    """The database's own first line about a failure (no SQL, no parameters)."""
    return db_message(exc)


class Store:
    """One connection to the state store."""

    CHUNK = 500  # rows per IN (...) lookup

    def __init__(self, url: str, *, base_dir: str | None = None, dry_run: bool = False) -> None:
        self.db = Database(url, base_dir=base_dir, dry_run=dry_run)
        self._discard: str | None = None  # a preview's private copy, removed at close
        self.runs = Runs(self.db)
        self.leases = Leases(self.db)
        self.cursors = Cursors(self.db)
        self.full_scans = FullScans(self.db)
        self.snapshot_table = Snapshots(self.db)
        self.links = Links(self.db)
        self.dataflows = Dataflows(self.db, self.links)
        self.match_index = MatchIndex(self.db)
        self.intents = Intents(self.db)
        self.journal = Journal(self.db)
        self.unlinked = Unlinked(self.db)
        self.controls = DataflowControls(self.db)

    @classmethod
    def preview(cls, url: str, *, base_dir: str | None = None) -> Store:
        """A store for a dry run: everything it writes is thrown away at :meth:`close`.
        An embedded SQLite store is copied first, so the dry run neither holds the real
        file's write lock (a scheduled run would wait for it) nor creates a store that
        does not exist yet; on PostgreSQL its writes stay in a transaction rolled back."""
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return cls(url, base_dir=base_dir, dry_run=True)
        path = Path(parsed.database)
        if not path.is_absolute() and base_dir:
            path = Path(base_dir) / path
        fd, copy = tempfile.mkstemp(prefix="samband-preview-", suffix=".db")
        os.close(fd)
        if path.exists():
            source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            target = sqlite3.connect(copy)
            try:
                source.backup(target)
            finally:
                target.close()
                source.close()
        store = cls(str(parsed.set(database=copy)), dry_run=True)
        store._discard = copy
        return store

    # -- the connection -------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.db.url

    @property
    def dry_run(self) -> bool:
        return self.db.dry_run

    @property
    def dialect(self) -> str:
        return self.db.dialect

    @property
    def conn(self) -> Connection:
        return self.db.conn

    @property
    def engine(self) -> Engine:
        return self.db.engine

    @property
    def sql(self) -> Statements:
        return self.db.sql

    def tx(self) -> AbstractContextManager[Connection]:
        """A unit of work: committed at the end (kept open in a dry run)."""
        return self.db.tx()

    def durable_tx(self) -> AbstractContextManager[Connection]:
        """A unit of work synced to disk once committed (see :meth:`Database.durable_tx`)."""
        return self.db.durable_tx()

    def commit(self) -> None:
        self.db.commit()

    def before_commit(self, callback: Callable[[], None]) -> None:
        """See :meth:`Database.before_commit`."""
        self.db.before_commit(callback)

    def close(self) -> None:
        try:
            self.db.close()
        finally:
            if self._discard is not None:
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(OSError):
                        os.remove(self._discard + suffix)

    def next_seq(self) -> int:
        """A dirty-sequence value larger than every earlier one (also across processes)."""
        return self.db.next_seq()

    def table_rows(
        self, table: Any, where: Any = None, order: Any = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        return self.db.table_rows(table, where, order, limit)

    def count_rows(self, table: Any, where: Any = None) -> int:
        return self.db.count_rows(table, where)

    def change_mark(self) -> tuple[Any, ...]:
        """A value that changes whenever links, conflicts or quarantined records may have
        changed: the highest id of each journal and the latest run with its status (a few
        index lookups, whatever the store's size).  Every action is in history, so an
        action of another process changes it too."""
        latest = self.db.table_rows(s.runs, order=s.runs.c.id.desc(), limit=1)
        return (
            self.db.last_id(s.links),
            self.db.last_id(s.audit),
            self.db.last_id(s.conflicts),
            self.db.last_id(s.dead_letters),
            (latest[0]["id"], latest[0]["status"]) if latest else None,
        )

    # -- runs and leases ------------------------------------------------------------
    def begin_run(self, dry_run: bool) -> int:
        return self.runs.begin(dry_run)

    def close_dead_runs(self) -> int:
        return self.runs.close_dead()

    def finish_run(self, run_id: int, status: str, stats: dict[str, Any]) -> None:
        self.runs.finish(run_id, status, stats)

    def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        return self.leases.acquire(name, owner, ttl)

    def release_lease(self, name: str, owner: str) -> None:
        self.leases.release(name, owner)

    def lease_holder(self, name: str) -> tuple[str, str] | None:
        return self.leases.holder(name)

    # -- cursors ------------------------------------------------------------------
    def get_cursor(self, system: str, etype: str) -> tuple[str | None, str | None]:
        return self.cursors.get(system, etype)

    def set_cursor(self, system: str, etype: str, cursor: str | None, fields: str) -> None:
        self.cursors.set(system, etype, cursor, fields)

    def all_cursors(self) -> list[dict[str, Any]]:
        return self.cursors.all()

    # -- snapshots and the queue ----------------------------------------------------
    def snapshot_hashes(
        self, system: str, etype: str, rids: list[str]
    ) -> dict[str, tuple[str, bool]]:
        return self.snapshot_table.hashes(system, etype, rids)

    def snapshots(self, system: str, etype: str, rids: Iterable[str]) -> dict[str, Snapshot]:
        return self.snapshot_table.many(system, etype, rids)

    def live_snapshots(self, system: str, etype: str) -> dict[str, Snapshot]:
        return self.snapshot_table.live(system, etype)

    def snapshot(self, ref: str) -> Snapshot | None:
        return self.snapshot_table.one(ref)

    def put_snapshots(self, rows: Iterable[SnapshotRow | Mapping[str, Any]]) -> None:
        self.snapshot_table.put(rows)

    def referring(self, system: str, etype: str, path: str, ids: Iterable[str]) -> list[str]:
        return self.snapshot_table.referring(system, etype, path, ids)

    def unseen_live(self, system: str, etype: str, run_id: int) -> list[str]:
        return self.snapshot_table.unseen_live(system, etype, run_id)

    def has_snapshots(self, system: str, etype: str, *, live: bool = False) -> bool:
        return self.snapshot_table.exist(system, etype, live=live)

    def count_live(self, system: str, etype: str) -> int:
        return self.snapshot_table.count_live(system, etype)

    def set_dirty(self, refs: Iterable[str], *, refresh: bool = False) -> int:
        return self.snapshot_table.queue(refs, refresh=refresh)

    def dirty_batch(
        self, system: str, etype: str, after: str | None, limit: int
    ) -> list[tuple[str, int]]:
        return self.snapshot_table.queued(system, etype, after, limit)

    def count_dirty(self, system: str, etype: str, *, deleted: bool = False) -> int:
        return self.snapshot_table.count_queued(system, etype, deleted=deleted)

    def deleted_queued(self, system: str, etype: str) -> list[str]:
        return self.snapshot_table.deleted_queued(system, etype)

    def clear_dirty(self, system: str, etype: str, seen: list[tuple[str, int]]) -> None:
        self.snapshot_table.unqueue(system, etype, seen)

    # -- complete reads -----------------------------------------------------------------
    def full_scan(self, system: str, etype: str) -> FullScan | None:
        return self.full_scans.get(system, etype)

    def complete_full_scan(self, system: str, etype: str, count: int, run_id: int | None) -> None:
        self.full_scans.complete(system, etype, count, run_id)

    def confirm_full_scan(self, system: str, etype: str, count: int, run_id: int | None) -> None:
        self.full_scans.confirm(system, etype, count, run_id)

    def hold_full_scan(
        self, system: str, etype: str, count: int, expected: int, unseen: int, run_id: int | None
    ) -> None:
        self.full_scans.hold(system, etype, count, expected, unseen, run_id)

    def held_full_scans(self) -> list[FullScan]:
        return self.full_scans.held()

    # -- links ----------------------------------------------------------------------
    def links_by(self, dataflow: str, side: str, refs: Iterable[str]) -> dict[str, Link]:
        return self.links.by(dataflow, side, refs)

    def links_touching(self, refs: Iterable[str]) -> list[Link]:
        return self.links.touching(refs)

    def add_links(self, rows: Iterable[LinkRow | Mapping[str, Any]]) -> None:
        self.links.add(rows)

    def set_bases(self, rows: list[tuple[int, dict[str, Any]]]) -> None:
        self.links.set_bases(rows)

    def delete_links(self, ids: list[int]) -> None:
        self.links.delete(ids)

    def count_links(self, dataflow: str) -> int:
        return self.links.count(dataflow)

    def count_links_by_dataflow(self) -> dict[str, int]:
        return self.links.count_by_dataflow()

    def all_links(self, dataflow: str | None = None) -> list[Link]:
        return self.links.all(dataflow)

    def linked_sources(self, dataflow: str) -> list[str]:
        """The source ref of every link of ``dataflow``."""
        return self.links.source_refs(dataflow)

    def queue_live(self, system: str, etype: str) -> int:
        """Queue every live record of a type for planning (a config change reaches them)."""
        return self.snapshot_table.queue_all(
            Ref.text(system, etype, rid) for rid in self.snapshot_table.live_rids(system, etype)
        )

    def queue_linked(self, dataflow: str) -> int:
        """Queue the source record of every link of ``dataflow`` for planning."""
        return self.snapshot_table.queue_all(self.links.source_refs(dataflow))

    # -- merge criteria index ----------------------------------------------------------
    def set_match_keys(self, name: str, entries: list[tuple[str, str | None]]) -> None:
        self.match_index.set_keys(name, entries)

    def lookup_match(self, name: str, keys: Iterable[str]) -> dict[str, list[str]]:
        return self.match_index.lookup(name, keys)

    def built_match_indexes(self) -> dict[str, str]:
        return self.match_index.built()

    def mark_match_index_built(self, name: str, dataflow: str) -> None:
        self.match_index.mark_built(name, dataflow)

    def rebuild_match_index(
        self, name: str, dataflow: str, entries: list[tuple[str, str | None]]
    ) -> None:
        self.match_index.rebuild(name, dataflow, entries)

    def drop_match_index(self, name: str) -> None:
        self.match_index.drop(name)

    # -- dataflows ------------------------------------------------------------------
    def dataflow_types(self) -> dict[str, tuple[str, str, str | None]]:
        return self.dataflows.types()

    def dataflow_linking(self) -> dict[str, str | None]:
        return self.dataflows.linking()

    def record_dataflows(
        self, flows: dict[str, tuple[str, str, str]], linking: dict[str, str] | None = None
    ) -> None:
        self.dataflows.record(flows, linking)

    def rename_dataflow(self, old: str, new: str) -> int:
        self.controls.rename(old, new)
        return self.dataflows.rename(old, new)

    # -- intents --------------------------------------------------------------------
    def add_intents(
        self,
        dataflow: str,
        target: tuple[str, str],
        items: Sequence[CreateIntent] | Sequence[Mapping[str, Any]],
        run_id: int | None,
        created_at: str,
    ) -> None:
        self.intents.add(dataflow, target, items, run_id, created_at)

    def open_intents(self) -> list[dict[str, Any]]:
        return self.intents.open()

    def remove_intents(self, keys: list[str]) -> None:
        self.intents.remove(keys)

    # -- audit, conflicts, dead letters, waiting ------------------------------------------
    def add_audit(self, rows: Iterable[AuditRow | Mapping[str, Any]]) -> None:
        self.journal.add_audit(rows)

    def add_conflicts(self, rows: Iterable[ConflictRow | Mapping[str, Any]]) -> None:
        self.journal.add_conflicts(rows)

    def conflicts_rows(self) -> list[dict[str, Any]]:
        return self.journal.conflicts()

    def add_dead_letter(
        self, ref: str, dataflow: str, kind: str, reason: str, details: Any, run_id: int | None
    ) -> None:
        self.journal.add_dead_letter(ref, dataflow, kind, reason, details, run_id)

    def resolve_dead_letters(self, refs: Iterable[str], dataflow: str) -> None:
        self.journal.resolve_dead_letters(refs, dataflow)

    def dead_letters(
        self, refs: list[str] | None = None, limit: int | None = None, *, dismissed: bool = False
    ) -> list[dict[str, Any]]:
        return self.journal.dead_letters(refs, limit, dismissed=dismissed)

    def dead_letter_rows(self, after: int, limit: int) -> list[tuple[Any, ...]]:
        return self.journal.dead_letter_rows(after, limit)

    def remove_dead_letters(self, ids: list[int]) -> None:
        self.journal.remove_dead_letters(ids)

    def note_waiting(self, dataflow: str, ref: str, parent: str, run_id: int) -> int:
        return self.journal.note_waiting(dataflow, ref, parent, run_id)

    def done_waiting(self, dataflow: str, refs: Iterable[str]) -> None:
        self.journal.done_waiting(dataflow, refs)
