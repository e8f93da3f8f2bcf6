"""The state store: :class:`Store` (one facade over the table families, on SQLite or
PostgreSQL) and the values it reads and writes (:mod:`samband.store.rows`)."""

from samband.store.rows import (
    AuditRow,
    ConflictRow,
    CreateIntent,
    DeadLetter,
    Link,
    LinkRow,
    Ref,
    Snapshot,
    SnapshotRow,
)
from samband.store.store import Store

__all__ = [
    "AuditRow",
    "ConflictRow",
    "CreateIntent",
    "DeadLetter",
    "Link",
    "LinkRow",
    "Ref",
    "Snapshot",
    "SnapshotRow",
    "Store",
]
