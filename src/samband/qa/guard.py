"""A connector that shows the engine only the records this QA run created.

``samband qa`` runs the real engine against a customer's systems, which already hold
data.  It must neither read nor change that data, so every connector is wrapped:

* ``read`` yields only the records the QA run owns, each fetched with ``get`` — the
  engine never lists a collection, so it cannot see (or link to, or update) anything
  else, and a large tenant costs no full scans;
* ``create`` adds the new record to what the run owns (the engine's creates in the
  targets become QA records too, and are cleaned up with the rest);
* ``update``, ``delete`` and ``archive`` refuse any record the run does not own.

The engine also gets a store of its own (a fresh SQLite file), so none of the links,
cursors or bases of the production store are read or moved.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from samband.connectors.base import Connector, EntityType, Page, RecordData
from samband.errors import SambandError


class NotOwned(SambandError):
    """The QA run was about to change a record it did not create."""


class QaConnector(Connector):
    """Wraps a real connector; see the module docstring."""

    kind = "qa"

    def __init__(self, inner: Connector, log: list[tuple[str, str, str]] | None = None) -> None:
        # no super().__init__: every attribute the engine reads is the inner connector's
        self.inner = inner
        self.system_id = inner.system_id
        self.config = inner.config
        self.credentials = {}
        self.state_dir = inner.state_dir
        self.overlap_seconds = inner.overlap_seconds
        self.stats = inner.stats
        self.wanted_fields = inner.wanted_fields
        self.owned: dict[str, list[str]] = {}  # entity type → ids, in creation order
        # (system, type, id) of every record created, in order; shared by the connectors
        # of one section so that clean-up can go backwards (children before parents)
        self.log: list[tuple[str, str, str]] = [] if log is None else log

    # -- what the run owns --------------------------------------------------------
    def own(self, entity_type: str, record_id: str) -> None:
        ids = self.owned.setdefault(entity_type, [])
        if record_id not in ids:
            ids.append(record_id)
            self.log.append((self.system_id, entity_type, record_id))

    def owns(self, entity_type: str, record_id: str) -> bool:
        return record_id in self.owned.get(entity_type, [])

    def forget(self, entity_type: str, record_id: str) -> None:
        if self.owns(entity_type, record_id):
            self.owned[entity_type].remove(record_id)
            self.log.remove((self.system_id, entity_type, record_id))

    def _guard(self, entity_type: str, record_id: str, action: str) -> None:
        if not self.owns(entity_type, record_id):
            raise NotOwned(
                f"samband qa refused to {action} {self.ref(entity_type, record_id)}: the QA run "
                "did not create it (QA only ever touches its own test records)"
            )

    # -- schema and lifecycle -------------------------------------------------------
    def entity_types(self) -> dict[str, EntityType]:
        return self.inner.entity_types()

    def check(self) -> None:
        self.inner.check()

    def close(self) -> None:
        """The engines of each section share the real connector; run_qa closes it."""

    # -- reading ------------------------------------------------------------------
    def read(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        records = []
        for record_id in list(self.owned.get(entity_type, [])):
            record = self.inner.get(entity_type, record_id)
            if record is not None:
                records.append(record)
        yield Page(records, None)

    def get(self, entity_type: str, record_id: str) -> RecordData | None:
        return self.inner.get(entity_type, record_id)

    def find_by_external_ref(self, entity_type: str, external_ref: str) -> RecordData | None:
        # Only the engine's recovery of an interrupted create asks; the reference names a
        # QA source record, so what it finds was created by this run.
        record = self.inner.find_by_external_ref(entity_type, external_ref)
        if record is not None:
            self.own(entity_type, str(record.id))
        return record

    # -- writing ------------------------------------------------------------------
    def create(
        self, entity_type: str, values: dict[str, Any], external_ref: str | None = None
    ) -> RecordData:
        record = self.inner.create(entity_type, values, external_ref)
        self.own(entity_type, str(record.id))
        return record

    def update(
        self, entity_type: str, record_id: str, changes: dict[str, Any]
    ) -> RecordData | None:
        self._guard(entity_type, record_id, "change")
        return self.inner.update(entity_type, record_id, changes)

    def delete(self, entity_type: str, record_id: str) -> None:
        self._guard(entity_type, record_id, "delete")
        self.inner.delete(entity_type, record_id)

    def archive(self, entity_type: str, record_id: str) -> RecordData | None:
        self._guard(entity_type, record_id, "archive")
        return self.inner.archive(entity_type, record_id)
