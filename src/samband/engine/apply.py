"""Apply: the store rows one chunk's writes produce, gathered in a :class:`Batch` (the
write calls themselves are in :mod:`samband.engine.writes`).

Creates write an intent first (committed before the API call); the link, the new
snapshot, the base and the removal of the intent are then stored in one transaction with
the rest of the chunk.  After a crash an open intent is resolved by looking the record up
(external reference, else merge criteria) — never by creating again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from samband.engine.collect import content_hash, match_entries
from samband.engine.model import Flow, TypeUse
from samband.engine.plan import MISSING
from samband.mapping import get_steps
from samband.store.store import Link, Snapshot, dumps, now_iso
from samband.types import to_wire


def external_ref(flow: Flow, source_ref: str) -> str:
    """What creates stamp into the target's external-reference field: the source ref, or a
    stable digest of it when the field would not hold it (PowerOffice GO: 50 chars)."""
    if len(source_ref) <= 50:
        return source_ref
    digest = hashlib.blake2b(f"{flow.key}|{source_ref}".encode(), digest_size=12).hexdigest()
    return f"samband:{digest}"


@dataclass
class FlowCounts:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    linked: int = 0
    conflicts: int = 0
    errors: int = 0
    waiting: int = 0
    ambiguous: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

    def add(self, other: FlowCounts) -> None:
        for key, value in other.__dict__.items():
            setattr(self, key, getattr(self, key) + value)

    @property
    def writes(self) -> int:
        return self.created + self.updated + self.deleted


@dataclass
class Batch:
    """Store rows gathered while one chunk is processed."""

    links: list[dict[str, Any]] = field(default_factory=list)
    bases: dict[int, dict[str, Any]] = field(default_factory=dict)
    drop_links: list[int] = field(default_factory=list)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    match: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)
    audit: list[dict[str, Any]] = field(default_factory=list)
    dead: list[tuple[str, str, str, str, Any]] = field(default_factory=list)
    resolved: dict[str, set[str]] = field(default_factory=dict)
    waiting_done: dict[str, set[str]] = field(default_factory=dict)
    intents_done: list[str] = field(default_factory=list)
    keep_dirty: set[str] = field(default_factory=set)
    claimed: set[str] = field(default_factory=set)  # target refs linked in this chunk
    requeue: set[str] = field(default_factory=set)  # records to plan again (other chunks)
    progress: bool = False

    def ok(self, flow: Flow, ref: str) -> None:
        self.resolved.setdefault(flow.key, set()).add(ref)


_MISSING = object()


def updated_snapshot(
    use: TypeUse,
    snap: Snapshot,
    changes: dict[str, Any],
    returned: dict[str, Any] | None,
    modified: str | None,
    dirty: int | None,
    whole: bool = False,
) -> dict[str, Any]:
    """The snapshot row after a write: the written values, overlaid by what the API gave
    back for them (so a value the API normalises is seen as the API stores it).  Only the
    written properties are settled: another property in the answer may hold an edit made
    since the read, which the next read must see as a change.  With ``whole`` (a create)
    the whole answer is the record.  ``dirty``: the record's new mark (see
    :meth:`~samband.store.store.Store.put_snapshots`)."""
    data = dict(snap.data)
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
    snap.data = data
    snap.hash = content_hash([data.get(p) for p in use.paths])
    snap.modified = modified or snap.modified or now_iso()
    return {
        "system": snap.system,
        "etype": snap.etype,
        "rid": snap.rid,
        "hash": snap.hash,
        "data": dumps(data),
        "modified": snap.modified,
        "deleted": snap.deleted,
        "dirty": dirty,
        "seen_run": None,
    }


def new_snapshot(
    use: TypeUse,
    rid: str,
    values: dict[str, Any],
    returned: dict[str, Any] | None,
    modified: str | None,
    dirty: int | None,
    now: str | None = None,
) -> tuple[Snapshot, dict[str, Any]]:
    snap = Snapshot(use.key[0], use.key[1], rid, "", {p: None for p in use.paths}, None, False)
    row = updated_snapshot(use, snap, values, returned, modified or now, dirty, whole=True)
    return snap, row


def index_rows(
    use: TypeUse, batch: Batch, rows: list[dict[str, Any]], datas: list[dict[str, Any] | None]
) -> None:
    for name, entries in match_entries(use, rows, datas).items():
        batch.match.setdefault(name, []).extend(entries)


def audit_row(
    run_id: int, ref: str, flow: Flow, op: str, before: Any, after: Any, at: str | None = None
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "at": at or now_iso(),
        "ref": ref,
        "dataflow": flow.key,
        "op": op,
        "before": dumps(before) if before is not None else None,
        "after": dumps(after) if after is not None else None,
    }


def unlink(batch: Batch, run_id: int, flow: Flow, link: Link, reason: str | None) -> None:
    """End ``link`` in this chunk's batch, audited with ``reason`` (None: the caller
    audits what it does instead).  The caller tells the translator (see
    :meth:`~samband.engine.link.Translator.forget`)."""
    batch.drop_links.append(link.id)
    batch.progress = True
    if reason is not None:
        batch.audit.append(
            audit_row(
                run_id,
                link.target_ref,
                flow,
                "unlink",
                {"linked_to": link.source_ref},
                {"reason": reason},
            )
        )


def conflict_row(
    run_id: int,
    flow: Flow,
    source_ref: str,
    target_ref: str,
    prop: str,
    base: Any,
    source_value: Any,
    target_value: Any,
    winner: str,
    reason: str,
) -> dict[str, Any]:
    """A conflict as the store keeps it; ``base`` is MISSING when there was none."""
    return {
        "run_id": run_id,
        "at": now_iso(),
        "dataflow": flow.key,
        "source_ref": source_ref,
        "target_ref": target_ref,
        "property": prop,
        "base": None if base is MISSING else dumps(base),
        "source_value": dumps(source_value),
        "target_value": dumps(target_value),
        "winner": winner,
        "reason": reason,
    }


def snapshot_row_of(snap: Snapshot) -> dict[str, Any]:
    return {
        "system": snap.system,
        "etype": snap.etype,
        "rid": snap.rid,
        "hash": snap.hash,
        "data": dumps(snap.data),
        "modified": snap.modified,
        "deleted": snap.deleted,
        "dirty": 0,
        "seen_run": None,
    }
