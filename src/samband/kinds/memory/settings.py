"""Settings of a ``kind: memory`` system (in-process records, for tests and examples)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

from samband.plugin.settings import EntityTypeSettings, KindSettings


class MemorySettings(KindSettings):
    # the test kind stands in for any other: it keeps keys it does not use
    model_config = ConfigDict(extra="allow")

    dataset: str | None = None
    path: str | None = None
    page_size: int | None = None


class MemoryTypeSettings(EntityTypeSettings):
    model_config = ConfigDict(extra="allow")

    id: str = "id"
    updated: str | None = "updated_at"
    incremental: bool = True
    can_delete: bool = True
    external_ref: str | None = None
    archive: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
