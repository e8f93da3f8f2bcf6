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
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EntityTypeConfig(BaseModel):
    """Kind-specific settings of one entity type (table, path, id field, ...)."""

    model_config = ConfigDict(extra="allow")

    read_only: bool | None = None

    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {}) | (
            {"read_only": self.read_only} if self.read_only is not None else {}
        )


class SystemConfig(BaseModel):
    """One configured connection.  Settings beyond these keys belong to the kind."""

    model_config = ConfigDict(extra="allow")

    kind: str
    label: str | None = None
    credentials: dict[str, str] = Field(default_factory=dict)
    entity_types: dict[str, EntityTypeConfig] = Field(default_factory=dict)
    priority: int = 0
    # Read a record before updating it, where the update itself cannot check what it
    # overwrites (None: the connector's default, see Connector.verify_updates).
    check_before_update: bool | None = None

    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class MatchTerm(_Model):
    source: str = Field(alias="from")
    target: str = Field(alias="to")
    normalize: str | None = None

    @field_validator("normalize")
    @classmethod
    def _known_normalizer(cls, value: str | None) -> str | None:
        if value is not None and value not in NORMALIZERS:
            raise ValueError(f"unknown normalizer {value!r}; use one of {', '.join(NORMALIZERS)}")
        return value


class PropertyMapping(_Model):
    source: str = Field(alias="from")
    target: str = Field(alias="to")
    type: DataType | None = None
    # For references: the entity type the value points at, on each side.  When absent,
    # it is taken from the connector's schema.
    source_ref: str | None = None
    target_ref: str | None = None
    # "both" (default), "forward" (source → target only) or "backward".
    direction: Literal["both", "forward", "backward"] = "both"

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
    synchronized_into: str
    # The property paths of the source record that hold the connection (one per entry of
    # connected_to); when absent, the reference mappings of the dataflow are used.
    via: list[str] | None = None


Scalar = str | int | float | bool | Decimal | None


class FilterRule(_Model):
    """Only records meeting ``where`` are synchronized; ``text`` is how documents say it."""

    text: str
    where: dict[str, Any] = Field(default_factory=dict)


class Dataflow(_Model):
    id: str | None = None
    source: str
    target: str
    source_label: str | None = None
    target_label: str | None = None
    source_system_label: str | None = None
    target_system_label: str | None = None
    create: bool = True
    create_when: CreateRule | None = None
    filter: FilterRule | None = None
    match: list[list[MatchTerm]] = Field(default_factory=list)
    properties: list[PropertyMapping] = Field(default_factory=list)
    on_delete: DeletePolicy = "unlink"
    priority: str | None = None  # the system that wins a tie in a conflict
    max_delete_share: float | None = None
    max_change_share: float | None = None

    @field_validator("source", "target")
    @classmethod
    def _system_dot_type(cls, value: str) -> str:
        if "." not in value or value.startswith(".") or value.endswith("."):
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
    max_change_share: float = 0.9
    overlap_seconds: float = 5.0
    max_parent_wait_runs: int = 3


class Config(_Model):
    store: str = "sqlite:///samband.db"
    systems: dict[str, SystemConfig]
    dataflows: list[Dataflow] = Field(default_factory=list)
    defaults: Defaults = Field(default_factory=Defaults)
    # Where the file was read from; relative paths (sqlite files, JSON files) are beside it.
    path: str | None = Field(default=None, exclude=True)

    def label(self, system_id: str) -> str:
        system = self.systems.get(system_id)
        if system is None or system.label is None:
            return system_id
        return system.label
