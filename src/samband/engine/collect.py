"""Collect: read what changed since the stored cursor; store snapshots; mark changes dirty.

A record whose projected content (the properties dataflows use) hashes the same as its
snapshot is not a change.  Types without a change feed are scanned in full and records
no longer returned are marked deleted.  Each page is stored — snapshots, merge-criteria
index, cursor — in one transaction, so a crash never moves a cursor past unstored data,
and the dirty marks keep what is not planned yet for the next run.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from samband.connectors.base import Connector, RecordData
from samband.engine.model import TypeUse, normalize
from samband.errors import CursorExpired
from samband.exactjson import big_ints
from samband.mapping import get_path, get_steps
from samband.store.store import Store, dumps
from samband.types import DataType, coerce


@dataclass
class CollectStats:
    read: int = 0
    changed: int = 0
    deleted: int = 0
    pages: int = 0
    unreadable: int = 0  # records the system answered but could not give as they are


def content_hash(values: list[Any]) -> str:
    try:
        raw = orjson.dumps(values, default=str, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer past 64 bits: hashed as its digits (as it is stored)
        raw = orjson.dumps(big_ints(values, str), default=str, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def project(use: TypeUse, data: dict[str, Any]) -> dict[str, Any]:
    if type(data) is not dict:
        return {path: get_path(data, path) for path in use.paths}
    return {
        path: data.get(path) if steps is None else get_steps(data, steps)
        for path, steps in use.path_steps
    }


def modified_of(use: TypeUse, record: RecordData) -> str | None:
    value: Any = record.modified
    if value is None and use.entity_type.modified_field:
        value = get_path(record.data, use.entity_type.modified_field)
    if value is None:
        return None
    if isinstance(value, str):
        return _iso_text(value)
    return _iso(value)


@lru_cache(maxsize=4096)
def _iso_text(value: str) -> str | None:
    """Timestamps repeat (a page edited in one import, a default value): parse each once."""
    return _iso(value)


def _iso(value: Any) -> str | None:
    try:
        return str(coerce(value, DataType.DATETIME).isoformat())
    except ValueError:
        return None


def snapshot_row(use: TypeUse, record: RecordData, dirty: int) -> dict[str, Any]:
    projected = project(use, record.data)
    if float in map(type, projected.values()):
        for path, value in projected.items():
            if type(value) is float and not math.isfinite(value):
                # JSON has no NaN or Infinity (orjson writes null): kept as text, which a
                # number type refuses with the reason instead of clearing the other side
                projected[path] = repr(value)
    return {
        "system": use.key[0],
        "etype": use.key[1],
        "rid": str(record.id),
        "hash": content_hash([projected[p] for p in use.paths]),
        "data": dumps(projected),
        "modified": modified_of(use, record),
        "deleted": False,
        "dirty": dirty,
        "seen_run": None,
    }


def match_entries(
    use: TypeUse, rows: list[dict[str, Any]], projected: list[dict[str, Any] | None]
) -> dict[str, list[tuple[str, str | None]]]:
    """Merge-criteria keys of target records, per index name (None removes an entry)."""
    result: dict[str, list[tuple[str, str | None]]] = {}
    for flow in use.as_target:
        for index, combination in enumerate(flow.match):
            name = flow.match_index(index)
            entries = result.setdefault(name, [])
            for row, data in zip(rows, projected, strict=True):
                key = None
                if data is not None:
                    key = combination_key(
                        [data.get(t.target) for t in combination],
                        [t.normalizer for t in combination],
                    )
                entries.append((row["rid"], key))
    return result


def combination_key(values: list[Any], normalizers: list[str]) -> str | None:
    parts = []
    for value, normalizer in zip(values, normalizers, strict=True):
        part = normalize(value, normalizer)
        if part is None:
            return None
        parts.append(part)
    return "\x1f".join(parts)


class Collector:
    def __init__(self, store: Store, run_id: int | None = None) -> None:
        self.store = store
        self.run_id = run_id

    def collect(
        self, use: TypeUse, connector: Connector, on_page: Callable[[], None] | None = None
    ) -> CollectStats:
        """Read one entity type; ``on_page`` is called after each stored page."""
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
        on_page: Callable[[], None] | None,
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
                on_page()
        if seen is not None:
            self._detect_deletions(use, seen, stats)
            with self.store.tx():
                self.store.set_cursor(system, etype, last_cursor, use.signature)
        elif cursor is None and stats.pages == 0:
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
        rows: list[dict[str, Any]] = []
        projected: list[dict[str, Any] | None] = []
        indexed = any(flow.match for flow in use.as_target)  # merge-criteria keys to store
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
            row = snapshot_row(use, record, 0)
            if old is not None and old[0] == row["hash"] and not old[1]:
                continue
            row["dirty"] = self.store.next_seq()
            rows.append(row)
            if indexed:
                projected.append(orjson.loads(row["data"]))  # as stored: JSON types only
            stats.changed += 1
        if not rows:
            return
        self.store.put_snapshots(rows)
        if indexed:
            for name, entries in match_entries(use, rows, projected).items():
                self.store.set_match_keys(name, entries)

    def _unreadable(self, use: TypeUse, rid: str, reason: str) -> None:
        ref = f"{use.key[0]}:{use.key[1]}:{rid}"
        for flow in [*use.as_source, *use.as_target]:
            self.store.add_dead_letter(ref, flow.key, "unreadable", reason, None, self.run_id)

    def _deleted_row(self, use: TypeUse, rid: str) -> dict[str, Any]:
        return {
            "system": use.key[0],
            "etype": use.key[1],
            "rid": rid,
            "hash": "deleted",
            "data": "{}",
            "modified": None,
            "deleted": True,
            "dirty": self.store.next_seq(),
            "seen_run": None,
        }

    def _detect_deletions(self, use: TypeUse, seen: set[str], stats: CollectStats) -> None:
        system, etype = use.key
        gone = [rid for rid in self.store.unseen_live(system, etype, -1) if rid not in seen]
        if not gone:
            return
        stats.deleted += len(gone)
        rows = [self._deleted_row(use, rid) for rid in gone]
        with self.store.tx():
            self.store.put_snapshots(rows)
            for name, entries in match_entries(use, rows, [None] * len(rows)).items():
                self.store.set_match_keys(name, entries)
