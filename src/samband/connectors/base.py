"""The connector protocol: what every system kind offers the engine.

Connectors are small and declarative.  They read pages of records, get one record,
create, update (only the given properties), delete, archive, and find a record by its
external reference.  They never decide what to write: matching, diffing, retries of
whole records, state and cursors belong to the engine.

A connector class declares its entity types as :class:`EntityType` objects (id field,
change cursor support, property schema, read-only flag, external-reference field), and
implements the methods of :class:`Connector`.  Values travel as plain JSON-like
dicts in the API's own shape (nested objects allowed); the engine addresses them with
dotted paths (``MailAddress.City``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from samband.config.model import SystemConfig
from samband.errors import NotFound, RecordError
from samband.store import Ref
from samband.types import DataType


@dataclass(frozen=True)
class Property:
    """One property of an entity type's schema."""

    name: str  # dotted path
    type: DataType | None = None
    read_only: bool = False
    required: bool = False
    max_length: int | None = None
    references: str | None = None  # entity type this property points at (same system)
    # why the connector's reads cannot serve this property (None: it can); validate
    # refuses a mapping of it
    unreadable: str | None = None


@dataclass
class EntityType:
    """How one collection of a system is read and written."""

    name: str
    id_field: str = "id"
    modified_field: str | None = None  # where a record says when it last changed
    properties: dict[str, Property] = field(default_factory=dict)
    # True when read_changes(cursor) returns only what changed since the cursor;
    # False means every read is a full scan and the engine detects deletions itself.
    incremental: bool = True
    # True when an incremental read also reports deletions (records with deleted=True).
    reports_deletes: bool = False
    read_only: bool = False
    can_delete: bool = True
    # The property where creates stamp the source ref, so that an interrupted create is
    # found again (find_by_external_ref) instead of repeated.
    external_ref_field: str | None = None
    # Property/value that archives a record (delete policy "archive", 409 fallback).
    archive: tuple[str, Any] | None = None
    # Open schema: properties not listed are still accepted (SQL columns are reflected,
    # REST APIs vary); validation only warns.
    open_schema: bool = False

    def canonical(self, path: str) -> str:
        """The schema's spelling of ``path``: property names match case-insensitively
        (documents written for an older, camelCase version of an API still work)."""
        if path in self.properties or not self.properties:
            return path
        lowered = {name.lower(): name for name in self.properties}
        if path.lower() in lowered:
            return lowered[path.lower()]
        head, _, rest = path.partition(".")
        if rest and head.lower() in lowered:
            return f"{lowered[head.lower()]}.{rest}"
        return path

    def property(self, path: str) -> Property | None:
        path = self.canonical(path)
        if path in self.properties:
            return self.properties[path]
        head = path.split(".", 1)[0]
        # a nested path under an object property the schema lists as a whole
        return self.properties.get(head) if head != path and head in self.properties else None


@dataclass(frozen=True)
class ConfigNote:
    """A finding about a system's config: where (keys below the system), what, what to do."""

    path: tuple[str | int, ...]
    message: str
    hint: str | None = None


@dataclass
class RecordData:
    """One record as a system returned it."""

    id: str
    data: dict[str, Any]
    modified: datetime | None = None
    deleted: bool = False
    #: why the record cannot be taken as the system holds it (a text that is not text, a
    #: value the driver cannot decode): the engine quarantines it with this reason and
    #: keeps what it had of it; the rest of the page syncs
    problem: str | None = None


@dataclass
class Page:
    """A page of a read.  ``cursor`` is where the next run may start once this page is stored.

    A cursor is opaque to the engine (a timestamp, a row version, a continuation token).
    ``None`` means "no cursor yet" (keep the previous one).
    """

    records: list[RecordData]
    cursor: str | None = None


@dataclass
class Stats:
    """What a connector did, for the run summary and the benchmarks."""

    api_calls: int = 0
    reads: int = 0
    writes: int = 0
    retries: int = 0
    throttled: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class Connector:
    """Base class of every connector kind.

    Subclasses set ``kind`` and implement the methods below.  ``system_id`` names the
    system in every error; ``config`` is the system's config block; ``credentials`` are
    already resolved from the environment (never log them).
    """

    kind: ClassVar[str] = ""
    #: entity types the kind always has (SQL/REST/memory types come from the config)
    #: Each connector may override :meth:`describe` instead.
    ENTITY_TYPES: ClassVar[dict[str, EntityType]] = {}

    #: Set by the engine for a dry run: reads must not change anything in the system (no
    #: pruning, no bookkeeping writes).
    dry_run: bool = False

    def __init__(
        self,
        system_id: str,
        config: SystemConfig,
        credentials: Mapping[str, str],
        *,
        state_dir: str | None = None,
        overlap_seconds: float = 5.0,
    ) -> None:
        self.system_id = system_id
        self.config = config
        self.credentials = dict(credentials)
        self.state_dir = state_dir
        self.overlap_seconds = overlap_seconds
        self.stats = Stats()
        # The properties the dataflows use, per entity type: connectors may ask only for
        # these (PowerOffice GO ``Fields``, Exact ``$select``).
        self.wanted_fields: dict[str, set[str]] = {}
        # What the run report should tell the user about this connector's reads (a safe
        # fallback taken, ...); the engine takes them after each type it reads.
        self.notices: list[str] = []

    def notice(self, message: str) -> None:
        """Tell the user something in the run report (never a credential)."""
        self.notices.append(message)

    def take_notices(self) -> list[str]:
        taken, self.notices = getattr(self, "notices", []), []
        return taken

    # -- schema -------------------------------------------------------------------
    @classmethod
    def describe(cls, config: SystemConfig) -> dict[str, EntityType]:
        """The entity types of a system, without any network call where possible."""
        return dict(cls.ENTITY_TYPES)

    @classmethod
    def config_warnings(cls, config: SystemConfig) -> list[ConfigNote]:
        """What looks wrong in a system's config without being an error (a database file
        that does not exist), found without any network call; ``samband validate`` shows
        them as warnings."""
        return []

    def entity_types(self) -> dict[str, EntityType]:
        if not hasattr(self, "_entity_types"):
            self._entity_types = self.describe(self.config)
        return self._entity_types

    def entity_type(self, name: str) -> EntityType:
        types = self.entity_types()
        if name not in types:
            raise KeyError(f"system {self.system_id!r} has no entity type {name!r}")
        return types[name]

    # -- lifecycle ----------------------------------------------------------------
    def check(self) -> None:
        """Verify URL and credentials before any work starts; raise ConnectorError."""

    def close(self) -> None:
        """Release connections."""

    def flush(self) -> None:
        """Make every write answered so far durable in the system.  The engine calls it
        before each store commit, so the store never records a write the system could
        lose.  A real API's write is durable once answered: nothing to do."""

    # -- reading ------------------------------------------------------------------
    def read(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        """Pages of records changed since ``cursor`` (all records when ``cursor`` is None,
        or always, for types that are not incremental).  Raise
        :class:`~samband.errors.CursorExpired` before the first page when the change feed
        no longer reaches back to ``cursor``."""
        raise NotImplementedError

    def get(self, entity_type: str, record_id: str) -> RecordData | None:
        """One record, or None when it does not exist."""
        raise NotImplementedError

    def sample(self, entity_type: str) -> RecordData | None:
        """Any one record of the type, or None when it holds none: ``samband check`` reads
        it to see that reading works and which fields a record has.  The default takes
        the first record of a full read and stops there (at most three pages); a kind
        that can ask for a single record overrides it."""
        pages = self.read(entity_type, None)
        try:
            for number, page in enumerate(pages):
                for record in page.records:
                    if not record.deleted:
                        return record
                if number >= 2:
                    break
            return None
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    def find_by_external_ref(self, entity_type: str, external_ref: str) -> RecordData | None:
        """The record whose external-reference field holds ``external_ref``, if any."""
        etype = self.entity_type(entity_type)
        if etype.external_ref_field is None:
            return None
        raise NotImplementedError

    # -- writing ------------------------------------------------------------------
    def create(
        self, entity_type: str, values: dict[str, Any], external_ref: str | None = None
    ) -> RecordData:
        """Create a record from ``values`` (dotted paths → canonical values); stamp
        ``external_ref`` into the type's external-reference field; return the record as
        the system stores it."""
        raise NotImplementedError

    #: True when :meth:`update` takes ``expected`` (the values of the changed properties as
    #: they were read) and raises :class:`~samband.errors.Stale` when the record holds
    #: something else now, instead of overwriting an edit made since the read.
    checks_expected: ClassVar[bool] = False

    #: For what the update cannot check (:meth:`unchecked`): whether the engine reads the
    #: record before it updates it and stops when a changed property no longer holds
    #: what was read (one more call per update; a system's ``check_before_update``
    #: overrides it).
    verify_updates: ClassVar[bool] = True

    def unchecked(self, entity_type: str, expected: dict[str, Any]) -> list[str]:
        """The paths of ``expected`` that :meth:`update` does not check itself: all of them
        unless :attr:`checks_expected`, then none (a connector that checks only some says
        which)."""
        return [] if self.checks_expected else list(expected)

    #: True when :meth:`create_many` writes a whole chunk atomically (one transaction):
    #: the engine then uses it for creates.
    batch_creates: ClassVar[bool] = False

    def create_many(
        self, entity_type: str, items: list[tuple[dict[str, Any], str | None]]
    ) -> list[RecordData | RecordError]:
        """Create several records (``(values, external_ref)`` each); a refused record gives
        its RecordError in its place.  Kinds that can write a chunk atomically override
        this and set ``batch_creates``; any other failure means none was created."""
        results: list[RecordData | RecordError] = []
        for values, external_ref in items:
            try:
                results.append(self.create(entity_type, values, external_ref))
            except RecordError as exc:
                results.append(exc)
        return results

    def update(
        self, entity_type: str, record_id: str, changes: dict[str, Any]
    ) -> RecordData | None:
        """Change only ``changes`` (dotted paths → canonical values).  Return the record
        after the change when the API gives it back cheaply, else None."""
        raise NotImplementedError

    def delete(self, entity_type: str, record_id: str) -> None:
        """Delete the record; raise :class:`InUse` when the system refuses because the
        record is in use, :class:`NotFound` when it does not exist."""
        raise NotImplementedError

    def archive(self, entity_type: str, record_id: str) -> RecordData | None:
        """Mark the record inactive/archived (delete policy ``archive``)."""
        etype = self.entity_type(entity_type)
        if etype.archive is None:
            raise NotFound(f"{entity_type} records cannot be archived in {self.system_id}")
        path, value = etype.archive
        return self.update(entity_type, record_id, {path: value})

    # -- helpers ------------------------------------------------------------------
    def ref(self, entity_type: str, record_id: str) -> str:
        return Ref.text(self.system_id, entity_type, record_id)
