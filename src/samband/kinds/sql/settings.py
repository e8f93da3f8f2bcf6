"""Settings of a ``kind: sql`` system (a database reached through SQLAlchemy)."""

from __future__ import annotations

from pydantic import Field

from samband.plugin.settings import EntityTypeSettings, KindSettings


class SqlSettings(KindSettings):
    url: str | None = None
    page_size: int | None = None
    keep_changes: str | int | float = "7d"
    overlap_versions: int | None = None


class SqlTypeSettings(EntityTypeSettings):
    table: str | None = None
    view: str | None = None
    schema_: str | None = Field(default=None, alias="schema")
    id: str | None = None
    updated: str | None = None
    deleted: str | None = None
    external_ref: str | None = None
    columns: list[str] | None = None
