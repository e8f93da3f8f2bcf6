"""The values the store keeps, each built in one place: refs, snapshots, links, audit
entries, conflicts and dead letters.

Rows are tuples in the order of the store's columns, so writing many of them costs no
per-row dictionary.  JSON columns hold text (see :func:`dumps`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypedDict

import orjson

from samband.exactjson import big_ints

# ``new_row(RowType, values)`` builds a row from the tuple of its values, in column order,
# without the generated ``__new__`` and its argument handling: rows are made by the ten
# thousand (a third of a snapshot row's cost)
new_row = tuple.__new__


class Ref(NamedTuple):
    """A record's address: system, entity type and id; ``str()`` is ``system:type:id``,
    the spelling the store keeps."""

    system: str
    etype: str
    id: str

    def __str__(self) -> str:
        return Ref.text(self.system, self.etype, self.id)

    @classmethod
    def parse(cls, text: str) -> Ref:
        """The ref spelled ``text`` (an id may hold colons; system and type do not)."""
        try:
            system, etype, rid = text.split(":", 2)
        except ValueError:
            raise ValueError(
                f"{text!r} is not a record ref: write SYSTEM:TYPE:ID, as crm:Customer:42"
            ) from None
        return cls(system, etype, rid)

    @classmethod
    def text(cls, system: str, etype: str, rid: object) -> str:
        """The spelling of a ref, without building the tuple (for refs made by the
        thousand)."""
        return f"{system}:{etype}:{rid}"


def rid_of(ref: str) -> str:
    """The record id of a ref spelled as text."""
    return ref.split(":", 2)[2]


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def dumps(value: Any) -> str:
    """JSON text, keys sorted, every canonical value (Decimal, date…) as the store keeps it."""
    try:
        return orjson.dumps(value, default=_default, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError as exc:
        if "64-bit" not in str(exc):
            raise
        # an integer orjson cannot write (past 64 bits) is kept as its digits, exactly
        return orjson.dumps(
            big_ints(value, str), default=_default, option=orjson.OPT_SORT_KEYS
        ).decode()


def _default(value: Any) -> Any:
    from samband.types import to_json

    converted = to_json(value)
    if converted is value:
        return str(value)
    return converted


def loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


@dataclass
class Snapshot:
    """The last collected state of a record, as read from the store."""

    system: str
    etype: str
    rid: str
    hash: str
    data: dict[str, Any]
    modified: str | None
    deleted: bool
    # `samband retry` (or a stale update) asked for the record to be read again from its
    # system before it is planned
    refresh: bool = False
    # set once: functools.cached_property takes a lock on every first read (Python 3.11),
    # which costs more than the text for a snapshot that is read once
    ref: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Ref.text's spelling, written out: a run reads snapshots by the ten thousand
        self.ref = f"{self.system}:{self.etype}:{self.rid}"


DELETED_HASH = "deleted"  # the content hash of a deleted record


class SnapshotRow(NamedTuple):
    """A snapshot as written.  ``dirty`` is the record's queue mark: > 0 queues it for
    planning, 0 clears its mark, None leaves the mark as it is."""

    system: str
    etype: str
    rid: str
    hash: str
    data: str  # JSON text
    modified: str | None
    deleted: bool
    refresh: bool
    dirty: int | None

    @classmethod
    def of(cls, row: SnapshotRow | Mapping[str, Any]) -> SnapshotRow:
        """A row given as a mapping of its columns (``refresh`` defaults to False)."""
        if isinstance(row, SnapshotRow):
            return row
        return cls(
            row["system"],
            row["etype"],
            row["rid"],
            row["hash"],
            row["data"],
            row["modified"],
            bool(row["deleted"]),
            bool(row.get("refresh", False)),
            row["dirty"],
        )

    @classmethod
    def deleted_record(
        cls, system: str, etype: str, rid: str, modified: str | None, dirty: int | None
    ) -> SnapshotRow:
        return new_row(cls, (system, etype, rid, DELETED_HASH, "{}", modified, True, False, dirty))

    @classmethod
    def of_snapshot(
        cls, snap: Snapshot, *, dirty: int | None = 0, refresh: bool = False
    ) -> SnapshotRow:
        return cls(
            snap.system,
            snap.etype,
            snap.rid,
            snap.hash,
            dumps(snap.data),
            snap.modified,
            snap.deleted,
            refresh,
            dirty,
        )


@dataclass
class Link:
    """A linked pair of a dataflow, as read from the store; ``base`` holds the values both
    sides last agreed on, per target path."""

    id: int
    dataflow: str
    source_ref: str
    target_ref: str
    base: dict[str, Any]
    how: str

    NEW = -1  # the id of a link made in this chunk, not stored yet


class LinkRow(NamedTuple):
    dataflow: str
    source_ref: str
    target_ref: str
    base: str  # JSON text
    how: str  # created | matched | recovered
    created_run: int | None
    created_at: str

    @classmethod
    def of(cls, row: LinkRow | Mapping[str, Any]) -> LinkRow:
        if isinstance(row, LinkRow):
            return row
        return cls(*(row[name] for name in cls._fields))

    @classmethod
    def new(
        cls,
        dataflow: str,
        source_ref: str,
        target_ref: str,
        base: dict[str, Any],
        how: str,
        run_id: int | None,
        at: str | None = None,
    ) -> LinkRow:
        row = (dataflow, source_ref, target_ref, dumps(base), how, run_id, at or now_iso())
        return new_row(cls, row)


class AuditRow(NamedTuple):
    run_id: int | None
    at: str
    ref: str
    dataflow: str
    op: str
    before: str | None  # JSON text
    after: str | None

    @classmethod
    def of(cls, row: AuditRow | Mapping[str, Any]) -> AuditRow:
        if isinstance(row, AuditRow):
            return row
        return cls(*(row[name] for name in cls._fields))

    @classmethod
    def new(
        cls,
        run_id: int | None,
        ref: str,
        dataflow: str,
        op: str,
        before: Any,
        after: Any,
        at: str | None = None,
    ) -> AuditRow:
        row = (
            run_id,
            at or now_iso(),
            ref,
            dataflow,
            op,
            dumps(before) if before is not None else None,
            dumps(after) if after is not None else None,
        )
        return new_row(cls, row)


class ConflictRow(NamedTuple):
    """A conflict as the store keeps it: both values, the base (None when there was
    none), who won and why."""

    run_id: int | None
    at: str
    dataflow: str
    source_ref: str
    target_ref: str
    property: str
    base: str | None  # JSON text
    source_value: str
    target_value: str
    winner: str
    reason: str

    @classmethod
    def new(
        cls,
        run_id: int | None,
        dataflow: str,
        source_ref: str,
        target_ref: str,
        prop: str,
        base: Any,
        source_value: Any,
        target_value: Any,
        winner: str,
        reason: str,
        *,
        has_base: bool = True,
    ) -> ConflictRow:
        return cls(
            run_id,
            now_iso(),
            dataflow,
            source_ref,
            target_ref,
            prop,
            dumps(base) if has_base else None,
            dumps(source_value),
            dumps(target_value),
            winner,
            reason,
        )


class DeadLetter(NamedTuple):
    """A record set aside with the reason (quarantined, ambiguous, waiting too long)."""

    ref: str
    dataflow: str
    kind: str
    reason: str
    details: Any = None


class CreateIntent(TypedDict):
    """One create about to be sent: its idempotency ``key``, the source record, what is
    stamped into the target's external-reference field, and the values (JSON)."""

    key: str
    source_ref: str
    external_ref: str
    values: dict[str, Any]
