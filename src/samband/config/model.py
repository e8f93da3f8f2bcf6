"""The config file as pydantic models.

Shape (keys may be added, never renamed)::

    store: sqlite:///samband.db
    systems:
      <system id>:
        kind: <an installed kind: `samband validate` lists them; see samband.plugin>
        label: PowerOffice GO
        credentials: {name: ${ENV_VAR}, ...}
        entity_types: {<type>: {...kind-specific settings...}}
        ...kind-specific settings (base_url, url, ...)
    dataflows:
      - source: <system>.<type>
        target: <system>.<type>
        match: [[{from: OrganizationNumber, to: org_no}]]
        properties: [{from: Name, to: name, type: string}]
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from samband.types import DataType

DeletePolicy = Literal["unlink", "propagate", "archive"]
NORMALIZERS = ("trim", "casefold", "digits", "email", "phone", "orgno", "alnum", "none")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, use_attribute_docstrings=True)


def _a_share(value: float | None) -> float | None:
    if value is not None and not 0 <= value <= 1:
        raise ValueError(
            "min_full_scan_share must be from 0 to 1: a share of the records a type had (0 "
            "switches the full-scan guard off)"
        )
    return value


class EntityTypeConfig(BaseModel):
    """Kind-specific settings of one entity type (table, path, id field, ...)."""

    model_config = ConfigDict(extra="allow", use_attribute_docstrings=True)

    read_only: bool | None = None
    """True: Samband never writes this entity type; an edit made on the other side of a dataflow is
    reverted instead of sent (default: what the kind says)."""

    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {}) | (
            {"read_only": self.read_only} if self.read_only is not None else {}
        )


class SystemConfig(BaseModel):
    """One configured connection.  Settings beyond these keys belong to the kind."""

    model_config = ConfigDict(extra="allow", use_attribute_docstrings=True)

    kind: str
    """The kind of system: `poweroffice-go`, `exact-online`, `crmoffice`, `webcrm`, `sql` or `rest`
    (`samband validate` lists the installed kinds)."""
    label: str | None = None
    """How the generated documents name the system (default: the system id)."""
    credentials: dict[str, str] = Field(default_factory=dict)
    """Secrets by name (`token`, `client_id`, ...), written as `${ENV_VAR}` references that are
    resolved at run time from the environment or the keyring, never stored."""
    entity_types: dict[str, EntityTypeConfig] = Field(default_factory=dict)
    """The entity types used from this system, each with its kind's settings (table, path, id field,
    ...)."""
    priority: int = 0
    """Wins ties: when both sides of a dataflow changed a property at the same time, the system with
    the higher number keeps its value (equal: the source)."""
    check_before_update: bool | None = None
    """Read a record just before updating it where the update itself cannot check what it
    overwrites, so that an edit made during the run is not overwritten unseen (one more call per
    update; default: the connector's choice)."""
    min_full_scan_share: float | None = None
    """Full-scan guard of this system's entity types: a complete read that returns fewer records
    than this share (0 to 1) of those the type had (its last complete read and the changes since)
    is not taken as deletions until confirmed with `samband sync --confirm-deletions SYSTEM.TYPE`
    (default: `defaults.min_full_scan_share`; 0: off)."""

    _share_in_range = field_validator("min_full_scan_share")(_a_share)

    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class MatchTerm(_Model):
    source: str = Field(alias="from")
    """The property path in the source record (key `from`)."""
    target: str = Field(alias="to")
    """The property path in the target record (key `to`)."""
    normalize: str | None = None
    """How both values are normalised before comparing: `trim`, `casefold`, `digits`, `email`,
    `phone`, `orgno`, `alnum` or `none` (default: guessed from the property name)."""

    @field_validator("normalize")
    @classmethod
    def _known_normalizer(cls, value: str | None) -> str | None:
        if value is not None and value not in NORMALIZERS:
            raise ValueError(f"unknown normalizer {value!r}; use one of {', '.join(NORMALIZERS)}")
        return value


class PropertyMapping(_Model):
    source: str = Field(alias="from")
    """The property path in the source record (key `from`; nested with dots, `MailAddress.City`)."""
    target: str = Field(alias="to")
    """The property path in the target record (key `to`; nested with dots)."""
    type: DataType | None = None
    """The data type in the target: `string`, `integer`, `decimal`, `float`, `boolean`, `date`,
    `datetime` or `reference`; a value that would lose information is refused (empty or `N/A`:
    the target's schema decides)."""
    source_ref: str | None = None
    """For a reference: the entity type the source value points at (default: from the source
    system's schema)."""
    target_ref: str | None = None
    """For a reference: the entity type the target value points at (default: from the target
    system's schema)."""
    direction: Literal["both", "forward", "backward"] = "both"
    """Which way edits flow: `both`, `forward` (source to target only) or `backward` (target to
    source only)."""

    @model_validator(mode="before")
    @classmethod
    def _no_type_is_none(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("type") in ("N/A", "", None):
            data = {**data, "type": None}
        return data


class CreateRule(_Model):
    """Create a target only when the source is connected to records that are synced.

    Rendered as: "A new Y will be created from a X if it is connected to a Z that is
    synchronized into T."
    """

    connected_to: list[str]
    """The entity types the source record must be connected to (through its references) before its
    target is created."""
    synchronized_into: str
    """The entity type those connected records must already be synchronized into."""
    via: list[str] | None = None
    """The source property paths that hold the connections, one per entry of `connected_to`
    (default: the dataflow's reference mappings)."""


Scalar = str | int | float | bool | Decimal | None


class FilterRule(_Model):
    """Only records meeting ``where`` are synchronized; ``text`` is how documents say it."""

    text: str
    """How the generated documents word the filter, e.g. "When a customer is active"."""
    where: dict[str, Any] = Field(default_factory=dict)
    """The values a source record must have to be synchronized: `{path: value}` for equality, or
    `{path: {op: value}}` with `eq`, `ne`, `gt`, `ge`, `lt`, `le` or `in`."""


class Dataflow(_Model):
    id: str | None = None
    """The dataflow's name in the store, reports and commands (default: `SOURCE->TARGET`)."""
    source: str
    """The entity type whose every record is synchronized: `SYSTEM.TYPE`."""
    target: str
    """The entity type each source record is synchronized with: `SYSTEM.TYPE`."""
    source_label: str | None = None
    """How the generated documents name the source type (default: the system part and the type
    name)."""
    target_label: str | None = None
    """How the generated documents name the target type (default: the system part and the type
    name)."""
    source_system_label: str | None = None
    """How this dataflow's document names the source system (default: the system's `label`)."""
    target_system_label: str | None = None
    """How this dataflow's document names the target system (default: the system's `label`)."""
    create: bool = True
    """Create a target record when no existing one matches; false: only link records that match."""
    create_when: CreateRule | None = None
    """Create a target only when the source record is connected to records that are synchronized
    (default: every unmatched source record gets one)."""
    filter: FilterRule | None = None
    """Only source records that meet this rule are synchronized (default: all)."""
    match: list[list[MatchTerm]] = Field(default_factory=list)
    """Merge criteria: combinations of properties that identify the same thing in both systems; a
    combination that matches exactly one record links it instead of creating a duplicate."""
    properties: list[PropertyMapping] = Field(default_factory=list)
    """The mapped properties; once two records are linked, an edit of one of them on either side is
    synced to the other (unless its `direction` says otherwise)."""
    document_order: Literal["sorted", "config"] = "sorted"
    """How the dataflow's document lists its properties: `sorted` by source, then target
    property (as the field's documents do), or `config`: in the order of `properties`."""
    on_delete: DeletePolicy = "unlink"
    """What a deletion does to the linked record: `unlink` (keep it, forget the link), `propagate`
    (delete it too) or `archive` (set its inactive or archived flag)."""
    priority: str | None = None
    """The system id that wins a tie in a conflict of this dataflow (default: the system with the
    higher `priority`)."""
    max_delete_share: float | None = None
    """Circuit breaker: the largest share (0 to 1) of a type's records one run may delete; a run
    that would delete more is refused (default: `defaults.max_delete_share`)."""
    max_change_share: float | None = None
    """Circuit breaker: the largest share (0 to 1) of a type's records one run may change, in either
    system (default: `defaults.max_change_share`)."""
    every: str | None = None
    """How often `samband serve` runs this dataflow, e.g. `5m` (default: the `--every` of
    `serve`); other dataflows run on their own intervals, one run of the config at a time."""

    @field_validator("every")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        if value is not None:
            from samband.durations import parse_interval

            if parse_interval(value) <= 0:
                raise ValueError(f"every: {value!r} must be longer than 0s")
        return value

    @field_validator("source", "target")
    @classmethod
    def _system_dot_type(cls, value: str) -> str:
        system, dot, type_name = value.partition(".")
        if not (system and dot and type_name):  # a type name may end in "." ("Co.")
            raise ValueError(f"{value!r} must be SYSTEM.TYPE, e.g. poweroffice.Customers")
        return value

    @property
    def source_system(self) -> str:
        return self.source.split(".", 1)[0]

    @property
    def source_type(self) -> str:
        return self.source.split(".", 1)[1]

    @property
    def target_system(self) -> str:
        return self.target.split(".", 1)[0]

    @property
    def target_type(self) -> str:
        return self.target.split(".", 1)[1]

    @property
    def key(self) -> str:
        return self.id or f"{self.source}->{self.target}"


class Defaults(_Model):
    max_delete_share: float = 0.5
    """Circuit breaker of every dataflow: the largest share (0 to 1) of a type's records one run may
    delete."""
    max_change_share: float = 0.9
    """Circuit breaker of every dataflow: the largest share (0 to 1) of a type's records one run may
    change."""
    overlap_seconds: float = 5.0
    """Seconds a change read goes back before the stored cursor, so that edits stamped at nearly the
    same moment are not missed (content hashes drop what was already seen)."""
    max_parent_wait_runs: int = 3
    """Runs a record may wait for its parent to be linked before the wait is reported as a
    problem."""
    min_full_scan_share: float = 0.5
    """Full-scan guard of every system: a complete read (every record, the way types without a
    change feed are read) that returns fewer records than this share (0 to 1) of those the type
    had (its last complete read and the changes since) is taken as a read cut short (paging, an
    empty answer), not as deletions: they wait for `samband sync --confirm-deletions SYSTEM.TYPE`;
    the rest of the run goes through. 0: off."""

    _share_in_range = field_validator("min_full_scan_share")(_a_share)


class Config(_Model):
    store: str = "sqlite:///samband.db"
    """Where Samband keeps its state: a SQLite URL (a relative path is beside the config file) or a
    `postgresql://` URL for shared state."""
    systems: dict[str, SystemConfig]
    """The connected systems, by system id (the name dataflows use)."""
    dataflows: list[Dataflow] = Field(default_factory=list)
    """The dataflows, each synchronizing every record of a source entity type with a target entity
    type."""
    defaults: Defaults = Field(default_factory=Defaults)
    """Settings every dataflow and run uses unless it sets its own."""
    path: str | None = Field(default=None, exclude=True)
    """The file the config was read from; set by Samband, not written in configs."""

    @field_validator("store")
    @classmethod
    def _store_url(cls, value: str) -> str:
        scheme = value.split("://", 1)[0].split("+", 1)[0].lower() if "://" in value else ""
        if "${" not in value and scheme not in ("sqlite", "postgresql"):
            raise ValueError(
                f"store {value.split('@')[-1]!r} is not a sqlite:// or postgresql:// URL; "
                "write e.g. sqlite:///samband.db"
            )
        return value

    def label(self, system_id: str) -> str:
        system = self.systems.get(system_id)
        if system is None or system.label is None:
            return system_id
        return system.label
