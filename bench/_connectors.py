"""Bench-only connectors that let the engine move a million records in little memory.

The engine is what is measured, so the systems around it must not hold every record
as a Python dict (a million of them alone would exceed the 300 MB budget the engine is
held to).  Both connectors speak the ordinary connector protocol, with a real change
feed, and are configured like ``kind: memory`` systems (their ``describe`` is the memory
connector's):

* :class:`GeneratedSource` computes record *i* from its index on the fly; only the
  records edited after the start (``edit``) are kept, with their new version.  Record *i*
  has version *i*, edits get versions above *n*, so a change read after the initial load
  costs in proportion to the changes, not to the size.
* :class:`SqliteSink` stores what the engine writes in a SQLite file on disk (one row per
  record: id, version, JSON), as a real target database would, and has the same
  version-based change feed.  It commits every 1000 writes and before every read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from samband.config import parse_config
from samband.config.model import Config
from samband.connectors.base import Page, RecordData
from samband.errors import RecordError
from samband.kinds.memory.connector import MemoryConnector
from samband.mapping import set_path
from samband.types import to_wire

PAGE_SIZE = 1000
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
EPOCH_TEXT = EPOCH.isoformat()
CITIES = ("Oslo", "Bergen", "Trondheim", "Stavanger", "Tromsø", "Drammen", "Bodø")

CONFIG = """
store: {store}
systems:
  src:
    kind: memory
    entity_types: {{Company: {{id: id, updated: updated}}}}
  dst:
    kind: memory
    entity_types: {{Account: {{id: id, external_ref: ext}}}}
dataflows:
  - id: companies
    source: src.Company
    target: dst.Account
    match: [[{{from: org, to: org_no}}]]
    properties:
      - {{from: name, to: title, type: string}}
      - {{from: org, to: org_no, type: string}}
      - {{from: phone, to: tel, type: string}}
      - {{from: address.city, to: city, type: string}}
"""


def bench_config(store_url: str) -> Config:
    """One dataflow, Company → Account, merged on the organisation number."""
    return parse_config(CONFIG.format(store=store_url)).config


def company(index: int) -> dict[str, Any]:
    return {
        "id": index,
        "name": f"Company {index} AS",
        "org": str(900_000_000 + index),
        "phone": f"+47 {20_000_000 + index}",
        "address": {"city": CITIES[index % len(CITIES)], "street": f"Gate {index % 97}"},
        "updated": EPOCH_TEXT,
    }


class GeneratedSource(MemoryConnector):
    """``size`` companies computed from their index; edits kept in a small dict."""

    def __init__(self, size: int, system_id: str, config: Any) -> None:
        super().__init__(system_id, config, {})
        self.size = size
        self.version = size
        self.edits: dict[int, tuple[int, dict[str, Any]]] = {}  # index → (version, record)

    def edit(self, index: int, changes: dict[str, Any]) -> None:
        """An outside edit (a user changing the record in the source system)."""
        record = self._current(index)
        for path, value in changes.items():
            set_path(record, path, value)
        self.version += 1
        record["updated"] = datetime.now(UTC).isoformat()
        self.edits[index] = (self.version, record)

    def _current(self, index: int) -> dict[str, Any]:
        edited = self.edits.get(index)
        return dict(edited[1]) if edited else company(index)

    def read(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        since = int(cursor) if cursor else 0
        top = self.version
        edited = sorted((v, i) for i, (v, _r) in self.edits.items() if v > since)
        edited_set = {i for _v, i in edited}
        # untouched records first (version = index), then the edits in version order
        indices: Iterator[tuple[int, int]] = (
            (i, i) for i in range(since + 1, self.size + 1) if i not in edited_set
        )
        page: list[RecordData] = []
        self.stats.api_calls += 1
        first = True
        for version, index in _chain(indices, edited):
            data = self._current(index)
            page.append(RecordData(str(index), data, None))
            if len(page) >= PAGE_SIZE:
                if not first:
                    self.stats.api_calls += 1
                first = False
                self.stats.reads += len(page)
                yield Page(page, str(version))
                page = []
        if page or first:
            if not first:
                self.stats.api_calls += 1
            self.stats.reads += len(page)
            yield Page(page, str(top))

    def get(self, entity_type: str, record_id: str) -> RecordData | None:
        self.stats.api_calls += 1
        index = int(record_id)
        return RecordData(record_id, self._current(index), None) if 0 < index <= self.size else None


def _chain(
    untouched: Iterator[tuple[int, int]], edited: list[tuple[int, int]]
) -> Iterator[tuple[int, int]]:
    """(version, index) pairs: the untouched records, then the edited ones."""
    for index, version in untouched:
        yield version, index
    yield from edited


class SqliteSink(MemoryConnector):
    """A target that keeps the records the engine writes in a SQLite file."""

    def __init__(self, path: str, system_id: str, config: Any) -> None:
        super().__init__(system_id, config, {})
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS rec (id INTEGER PRIMARY KEY, version INTEGER NOT NULL,"
            " ext TEXT, data BLOB NOT NULL)"
        )
        self.db.execute("CREATE INDEX IF NOT EXISTS rec_version ON rec (version)")
        row = self.db.execute("SELECT coalesce(max(version), 0), count(*) FROM rec").fetchone()
        self.version = int(row[0])
        self.next_id = int(self.db.execute("SELECT coalesce(max(id), 0) FROM rec").fetchone()[0])
        self.pending = 0
        self.db.execute("BEGIN")

    def _flush(self) -> None:
        self.db.execute("COMMIT")
        self.db.execute("BEGIN")
        self.pending = 0

    def _wrote(self) -> None:
        self.stats.api_calls += 1
        self.stats.writes += 1
        self.pending += 1
        if self.pending >= 1000:
            self._flush()

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM rec").fetchone()[0])

    def read(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        self._flush()
        since = int(cursor) if cursor else 0
        top = self.version
        self.stats.api_calls += 1
        first = True
        while True:
            rows = self.db.execute(
                "SELECT id, version, data FROM rec WHERE version > ? AND version <= ?"
                " ORDER BY version LIMIT ?",
                (since, top, PAGE_SIZE),
            ).fetchall()
            if not rows and not first:
                return
            if not first:
                self.stats.api_calls += 1
            first = False
            self.stats.reads += len(rows)
            since = rows[-1][1] if rows else top
            done = len(rows) < PAGE_SIZE
            yield Page(
                [RecordData(str(r[0]), orjson.loads(r[2]), None) for r in rows],
                str(top) if done else str(since),
            )
            if done:
                return

    def get(self, entity_type: str, record_id: str) -> RecordData | None:
        self.stats.api_calls += 1
        row = self.db.execute("SELECT data FROM rec WHERE id = ?", (int(record_id),)).fetchone()
        return RecordData(record_id, orjson.loads(row[0]), None) if row else None

    def find_by_external_ref(self, entity_type: str, external_ref: str) -> RecordData | None:
        self.stats.api_calls += 1
        row = self.db.execute("SELECT id, data FROM rec WHERE ext = ?", (external_ref,)).fetchone()
        return RecordData(str(row[0]), orjson.loads(row[1]), None) if row else None

    def _body(self, values: dict[str, Any], external_ref: str | None) -> dict[str, Any]:
        """A new record's data, with the next id and version."""
        data: dict[str, Any] = {}
        for path, value in values.items():
            set_path(data, path, to_wire(value))
        if external_ref:
            data["ext"] = external_ref
        self.next_id += 1
        self.version += 1
        data["id"] = self.next_id
        return data

    def create(
        self, entity_type: str, values: dict[str, Any], external_ref: str | None = None
    ) -> RecordData:
        data = self._body(values, external_ref)
        self.db.execute(
            "INSERT INTO rec (id, version, ext, data) VALUES (?, ?, ?, ?)",
            (self.next_id, self.version, external_ref, orjson.dumps(data)),
        )
        self._wrote()
        return RecordData(str(self.next_id), data, None)

    batch_creates = True  # like ``kind: sql``: one transaction per chunk

    def create_many(
        self, entity_type: str, items: list[tuple[dict[str, Any], str | None]]
    ) -> list[RecordData | RecordError]:
        self._flush()
        results: list[RecordData | RecordError] = []
        rows: list[tuple[int, int, str | None, bytes]] = []
        for values, external_ref in items:
            data = self._body(values, external_ref)
            rows.append((self.next_id, self.version, external_ref, orjson.dumps(data)))
            results.append(RecordData(str(self.next_id), data, None))
        self.db.executemany("INSERT INTO rec (id, version, ext, data) VALUES (?, ?, ?, ?)", rows)
        self.stats.api_calls += 1
        self.stats.writes += len(rows)
        self._flush()
        return results

    def update(self, entity_type: str, record_id: str, changes: dict[str, Any]) -> RecordData:
        row = self.db.execute("SELECT data FROM rec WHERE id = ?", (int(record_id),)).fetchone()
        data = orjson.loads(row[0])
        for path, value in changes.items():
            set_path(data, path, to_wire(value))
        self.version += 1
        self.db.execute(
            "UPDATE rec SET version = ?, data = ? WHERE id = ?",
            (self.version, orjson.dumps(data), int(record_id)),
        )
        self._wrote()
        return RecordData(record_id, data, None)

    def delete(self, entity_type: str, record_id: str) -> None:
        raise NotImplementedError("the benchmarks never delete")

    def close(self) -> None:
        try:
            self.db.execute("COMMIT")
        except sqlite3.Error:
            pass
        self.db.close()
