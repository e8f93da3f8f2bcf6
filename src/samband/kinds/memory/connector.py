"""``kind: memory`` — records held in-process, optionally persisted to a JSON file.

For tests, examples and benchmarks.  Each system names a *dataset* (default: the system
id); connectors built on the same dataset see the same records, so a new engine (after
an injected crash) finds what the old one wrote.  With ``path: file.json`` the dataset
is loaded from and saved to that file, so the CLI can use it across runs.

Config::

    crm:
      kind: memory
      path: crm.json            # optional
      entity_types:
        Customer: {id: id, external_ref: ext_ref, incremental: true, read_only: false}

Every write bumps a per-dataset version; the change feed returns records whose version
is above the cursor, tombstones included.

The file is written when the engine flushes the system (:meth:`MemoryConnector.flush`,
before each store commit, and when the engine closes): once per chunk of records, not
once per write, and never after the store has recorded a write the file does not hold.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from samband.config.model import SystemConfig
from samband.connectors.base import Connector, EntityType, Page, Property, RecordData
from samband.errors import ConnectorError, InUse, NotFound, RecordError
from samband.kinds.memory.settings import MemorySettings, MemoryTypeSettings
from samband.mapping import get_path, set_path
from samband.types import DataType, id_value, to_wire

PAGE_SIZE = 1000


@dataclass
class _Row:
    data: dict[str, Any]
    version: int
    modified: datetime
    deleted: bool = False


@dataclass
class MemoryDataset:
    """The records of one memory system, shared by every connector built on it."""

    name: str
    types: dict[str, dict[str, _Row]] = field(default_factory=dict)
    version: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)
    # op name → callable raising an exception (injected failures, consumed when they fire)
    failures: list[tuple[str, str | None, Callable[[], None]]] = field(default_factory=list)
    next_id: itertools.count = field(default_factory=lambda: itertools.count(1))
    calls: dict[str, int] = field(default_factory=dict)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # written through a connector and not saved to the file yet
    unsaved: bool = False

    def table(self, entity_type: str) -> dict[str, _Row]:
        return self.types.setdefault(entity_type, {})

    # -- outside edits (what a user does in the system itself) ----------------------
    def put(self, entity_type: str, record_id: str, data: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.version += 1
            row = dict(data)
            self.table(entity_type)[record_id] = _Row(row, self.version, self.clock())
            return row

    def insert(self, entity_type: str, data: dict[str, Any], id_field: str = "id") -> str:
        with self.lock:
            record_id = str(data.get(id_field) or next(self.next_id))
            while record_id in self.table(entity_type) and id_field not in data:
                record_id = str(next(self.next_id))
            self.put(entity_type, record_id, {**data, id_field: _id_value(record_id)})
            return record_id

    def edit(self, entity_type: str, record_id: str, changes: dict[str, Any]) -> None:
        with self.lock:
            row = self.table(entity_type).get(record_id)
            if row is None or row.deleted:
                raise NotFound(f"{entity_type} {record_id} does not exist")
            data = json.loads(json.dumps(row.data, default=str))
            for path, value in changes.items():
                set_path(data, path, value)
            self.put(entity_type, record_id, data)

    def remove(self, entity_type: str, record_id: str) -> None:
        with self.lock:
            row = self.table(entity_type).get(record_id)
            if row is None or row.deleted:
                raise NotFound(f"{entity_type} {record_id} does not exist")
            self.version += 1
            row.deleted, row.version, row.modified = True, self.version, self.clock()

    def records(self, entity_type: str) -> dict[str, dict[str, Any]]:
        """Live records of a type, by id."""
        with self.lock:
            return {k: r.data for k, r in self.table(entity_type).items() if not r.deleted}

    def inject_failure(
        self, op: str, exc: BaseException | Callable[[], None], entity_type: str | None = None
    ) -> None:
        """The next ``op`` call (read/get/create/update/delete) on ``entity_type`` fails."""

        def raise_it() -> None:
            if isinstance(exc, BaseException):
                raise exc
            exc()

        self.failures.append((op, entity_type, raise_it))

    def _maybe_fail(self, op: str, entity_type: str) -> None:
        self.calls[op] = self.calls.get(op, 0) + 1
        for index, (f_op, f_type, fire) in enumerate(self.failures):
            if f_op == op and (f_type is None or f_type == entity_type):
                del self.failures[index]
                fire()
                return

    # -- persistence ---------------------------------------------------------------
    def save(self, path: str) -> None:
        with self.lock:
            payload = {
                "version": self.version,
                "types": {
                    name: {
                        rid: {
                            "data": row.data,
                            "version": row.version,
                            "modified": row.modified.isoformat(),
                            "deleted": row.deleted,
                        }
                        for rid, row in rows.items()
                    }
                    for name, rows in self.types.items()
                },
            }
            tmp = f"{path}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(payload, handle, default=str, indent=1)
            os.replace(tmp, path)
            self.unsaved = False

    @classmethod
    def load(cls, name: str, path: str) -> MemoryDataset:
        dataset = cls(name)
        if Path(path).exists():
            try:
                dataset._load(path)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                where = (
                    f" (line {exc.lineno}, column {exc.colno})"
                    if isinstance(exc, json.JSONDecodeError)
                    else ""
                )
                raise ConnectorError(
                    name,
                    f"{path} cannot be read{where}: {exc}",
                    "fix the file (it is JSON as Samband writes it: version, types) or move "
                    "it away",
                ) from None
        return dataset

    def _load(self, path: str) -> None:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        self.version = int(payload.get("version", 0))
        for type_name, rows in payload.get("types", {}).items():
            table = self.table(type_name)
            for rid, row in rows.items():
                table[rid] = _Row(
                    row["data"],
                    int(row["version"]),
                    datetime.fromisoformat(row["modified"]),
                    bool(row.get("deleted")),
                )
        numeric = [int(r) for t in self.types.values() for r in t if r.isdigit()]
        self.next_id = itertools.count(max(numeric, default=0) + 1)


def _stored(value: Any) -> Any:
    """A canonical value as the dataset keeps it: JSON-plain, a decimal that no float
    holds exactly as its digits."""
    wire = to_wire(value)
    return str(wire) if isinstance(wire, Decimal) else wire


def _id_value(record_id: str) -> Any:
    return id_value(record_id)


_DATASETS: dict[str, MemoryDataset] = {}
_DATASETS_LOCK = threading.Lock()


def dataset(name: str, path: str | None = None) -> MemoryDataset:
    """The shared dataset called ``name`` (created empty, or loaded from ``path``)."""
    with _DATASETS_LOCK:
        if name not in _DATASETS:
            _DATASETS[name] = MemoryDataset.load(name, path) if path else MemoryDataset(name)
        return _DATASETS[name]


def forget_dataset(name: str) -> None:
    with _DATASETS_LOCK:
        _DATASETS.pop(name, None)


class MemoryConnector(Connector):
    kind = "memory"

    def __init__(self, system_id: str, config: SystemConfig, credentials: Any, **options: Any):
        super().__init__(system_id, config, credentials, **options)
        settings = MemorySettings.of(config, system_id)
        path = settings.path
        if path and not os.path.isabs(path) and settings.base_dir:
            path = os.path.join(settings.base_dir, path)
        self.path: str | None = path
        self.dataset = dataset(str(settings.dataset or system_id), path)
        self.page_size = settings.page_size or PAGE_SIZE

    @classmethod
    def describe(cls, config: SystemConfig) -> dict[str, EntityType]:
        types: dict[str, EntityType] = {}
        for name, etc in config.entity_types.items():
            s = MemoryTypeSettings.of(etc, type_name=name)
            props = {
                path: Property(
                    path,
                    DataType(str(spec["type"]))
                    if isinstance(spec, dict) and spec.get("type")
                    else None,
                    read_only=bool(isinstance(spec, dict) and spec.get("read_only")),
                    max_length=spec.get("max_length") if isinstance(spec, dict) else None,
                    references=spec.get("references") if isinstance(spec, dict) else None,
                )
                for path, spec in (s.properties or {}).items()
            }
            archive = s.archive
            types[name] = EntityType(
                name=name,
                id_field=s.id,
                modified_field=s.updated,
                properties=props,
                incremental=s.incremental,
                reports_deletes=s.incremental,
                read_only=bool(s.read_only),
                can_delete=s.can_delete,
                external_ref_field=s.external_ref,
                archive=(archive["property"], archive["value"]) if archive else None,
                open_schema=not props,
            )
        return types

    def _save(self) -> None:
        """A write was made: saved to the file at the next :meth:`flush`."""
        if self.path:
            self.dataset.unsaved = True

    def flush(self) -> None:
        if self.path and self.dataset.unsaved:
            self.dataset.save(self.path)

    def close(self) -> None:
        self.flush()

    def _validate(self, etype: EntityType, values: dict[str, Any]) -> None:
        for path, value in values.items():
            prop = etype.properties.get(path)
            if prop is None:
                continue
            if prop.max_length and isinstance(value, str) and len(value) > prop.max_length:
                raise RecordError(
                    f"{path} is {len(value)} characters long; {etype.name}.{path} holds at most "
                    f"{prop.max_length}"
                )
            if prop.type is not None and value is not None:
                from samband.types import coerce

                try:
                    coerce(value, prop.type)
                except ValueError as exc:
                    raise RecordError(f"{path}: {exc}") from None

    def _record(self, etype: EntityType, record_id: str, row: _Row) -> RecordData:
        return RecordData(record_id, row.data, row.modified, row.deleted)

    def read(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        etype = self.entity_type(entity_type)
        self.dataset._maybe_fail("read", entity_type)
        since = int(cursor) if cursor and etype.incremental else 0
        with self.dataset.lock:
            rows = [
                (rid, row)
                for rid, row in self.dataset.table(entity_type).items()
                if row.version > since and (etype.incremental or not row.deleted)
            ]
            top = self.dataset.version
        rows.sort(key=lambda item: item[1].version)
        self.stats.api_calls += 1
        if not rows:
            yield Page([], str(top) if etype.incremental else None)
            return
        for start in range(0, len(rows), self.page_size):
            chunk = rows[start : start + self.page_size]
            if start:
                self.stats.api_calls += 1
            self.stats.reads += len(chunk)
            last = start + self.page_size >= len(rows)
            cursor_out = str(top) if last else str(chunk[-1][1].version)
            yield Page(
                [self._record(etype, rid, row) for rid, row in chunk],
                cursor_out if etype.incremental else None,
            )

    def get(self, entity_type: str, record_id: str) -> RecordData | None:
        etype = self.entity_type(entity_type)
        self.stats.api_calls += 1
        self.dataset._maybe_fail("get", entity_type)
        row = self.dataset.table(entity_type).get(record_id)
        if row is None or row.deleted:
            return None
        return self._record(etype, record_id, row)

    def find_by_external_ref(self, entity_type: str, external_ref: str) -> RecordData | None:
        etype = self.entity_type(entity_type)
        if etype.external_ref_field is None:
            return None
        self.stats.api_calls += 1
        with self.dataset.lock:
            for rid, row in self.dataset.table(entity_type).items():
                if not row.deleted and get_path(row.data, etype.external_ref_field) == external_ref:
                    return self._record(etype, rid, row)
        return None

    def create(
        self, entity_type: str, values: dict[str, Any], external_ref: str | None = None
    ) -> RecordData:
        etype = self.entity_type(entity_type)
        self.stats.api_calls += 1
        self.dataset._maybe_fail("create", entity_type)
        self._validate(etype, values)
        data: dict[str, Any] = {}
        for path, value in values.items():
            set_path(data, path, _stored(value))
        if external_ref and etype.external_ref_field:
            set_path(data, etype.external_ref_field, external_ref)
        data.pop(etype.id_field, None)
        with self.dataset.lock:
            record_id = self.dataset.insert(entity_type, data, etype.id_field)
            row = self.dataset.table(entity_type)[record_id]
            if etype.modified_field:
                row.data[etype.modified_field] = row.modified.isoformat()
        self.dataset._maybe_fail("after_create", entity_type)
        self.stats.writes += 1
        self._save()
        return self._record(etype, record_id, row)

    def update(self, entity_type: str, record_id: str, changes: dict[str, Any]) -> RecordData:
        etype = self.entity_type(entity_type)
        self.stats.api_calls += 1
        self.dataset._maybe_fail("update", entity_type)
        self._validate(etype, changes)
        with self.dataset.lock:
            self.dataset.edit(
                entity_type, record_id, {path: _stored(value) for path, value in changes.items()}
            )
            row = self.dataset.table(entity_type)[record_id]
            if etype.modified_field:
                row.data[etype.modified_field] = row.modified.isoformat()
        self.stats.writes += 1
        self._save()
        return self._record(etype, record_id, row)

    def delete(self, entity_type: str, record_id: str) -> None:
        etype = self.entity_type(entity_type)
        self.stats.api_calls += 1
        self.dataset._maybe_fail("delete", entity_type)
        if not etype.can_delete:
            raise InUse(f"{entity_type} records cannot be deleted in {self.system_id}")
        self.dataset.remove(entity_type, record_id)
        self.stats.writes += 1
        self._save()
