"""What the store keeps of a record: its projection on the properties the dataflows use,
its content hash, its snapshot row and its merge-criteria keys.  Used by the stages that
read records (collect) and those that write them (apply)."""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache
from typing import Any

import orjson

from samband.connectors.base import RecordData
from samband.engine.model import TypeUse, normalize
from samband.exactjson import big_ints
from samband.mapping import get_path, get_steps
from samband.store.rows import Snapshot, SnapshotRow, dumps, new_row, now_iso
from samband.types import DataType, coerce, to_wire


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


def snapshot_row(use: TypeUse, record: RecordData, dirty: int | None) -> SnapshotRow:
    """The snapshot of a record as read from its system."""
    projected = project(use, record.data)
    if float in map(type, projected.values()):
        for path, value in projected.items():
            if type(value) is float and not math.isfinite(value):
                # JSON has no NaN or Infinity (orjson writes null): kept as text, which a
                # number type refuses with the reason instead of clearing the other side
                projected[path] = repr(value)
    system, etype = use.key
    hash_ = content_hash([projected[p] for p in use.paths])
    values = (system, etype, str(record.id), hash_, dumps(projected), modified_of(use, record))
    return new_row(SnapshotRow, (*values, False, False, dirty))


_MISSING = object()


def _written_data(
    use: TypeUse,
    data: dict[str, Any],
    changes: dict[str, Any],
    returned: dict[str, Any] | None,
    whole: bool,
) -> dict[str, Any]:
    """A record's data after a write: the written values, overlaid by what the API gave
    back for them (so a value the API normalises is seen as the API stores it).  Only the
    written properties are settled: another property in the answer may hold an edit made
    since the read, which the next read must see as a change.  With ``whole`` (a create)
    the whole answer is the record."""
    data = dict(data)
    paths = use.path_set
    for path, value in changes.items():
        if path in paths:
            data[path] = to_wire(value)
    if returned is not None:
        for path, steps in use.path_steps:
            if not whole and path not in changes:
                continue
            value = (
                returned.get(path, _MISSING)
                if steps is None
                else get_steps(returned, steps, _MISSING)
            )
            if value is not _MISSING:
                data[path] = value
    return data


def updated_snapshot(
    use: TypeUse,
    snap: Snapshot,
    changes: dict[str, Any],
    returned: dict[str, Any] | None,
    modified: str | None,
    dirty: int | None,
) -> tuple[Snapshot, SnapshotRow]:
    """The snapshot after a write of ``changes`` (see :func:`_written_data`), and its
    row; ``snap`` is left as it was."""
    data = _written_data(use, snap.data, changes, returned, whole=False)
    hash_ = content_hash([data.get(p) for p in use.paths])
    at = modified or snap.modified or now_iso()
    new = Snapshot(snap.system, snap.etype, snap.rid, hash_, data, at, snap.deleted)
    values = (snap.system, snap.etype, snap.rid, hash_, dumps(data), at, snap.deleted)
    return new, new_row(SnapshotRow, (*values, False, dirty))


def created_snapshot(
    use: TypeUse,
    rid: str,
    values: dict[str, Any],
    returned: dict[str, Any] | None,
    modified: str | None,
    dirty: int | None,
) -> tuple[dict[str, Any], SnapshotRow]:
    """The data and snapshot row of a record just created with ``values``."""
    empty = {p: None for p in use.paths}
    data = _written_data(use, empty, values, returned, whole=True)
    hash_ = content_hash([data.get(p) for p in use.paths])
    at = modified or now_iso()
    return data, new_row(SnapshotRow, (*use.key, rid, hash_, dumps(data), at, False, False, dirty))


def match_entries(
    use: TypeUse,
    rows: list[SnapshotRow],
    projected: list[dict[str, Any] | None],
    *,
    external: bool = True,
) -> dict[str, list[tuple[str, str | None]]]:
    """Merge-criteria keys of target records, per index name (None removes an entry);
    with ``external``, their external-reference values too."""
    result: dict[str, list[tuple[str, str | None]]] = {}
    ext_name = use.ext_index
    if ext_name is not None and external:
        path = use.entity_type.external_ref_field
        result[ext_name] = [
            (row.rid, ext_key(data.get(path)) if data is not None and path else None)
            for row, data in zip(rows, projected, strict=True)
        ]
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
                entries.append((row.rid, key))
    return result


def external_entry(use: TypeUse, rid: str, data: dict[str, Any]) -> tuple[str, str | None]:
    """The external-reference index entry of one record of ``use``'s type."""
    path = use.entity_type.external_ref_field
    return rid, ext_key(data.get(path)) if path else None


def ext_key(value: Any) -> str | None:
    """The index key of an external-reference value (None: no entry)."""
    if value is None:
        return None
    text = str(value).strip()
    return text[:500] or None


def combination_key(values: list[Any], normalizers: list[str]) -> str | None:
    parts = []
    for value, normalizer in zip(values, normalizers, strict=True):
        part = normalize(value, normalizer)
        if part is None:
            return None
        parts.append(part)
    return "\x1f".join(parts)
