"""Settings of a ``kind: memory`` system (in-process records, for tests and examples)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

from samband.plugin.settings import EntityTypeSettings, KindSettings


class MemorySettings(KindSettings):
    # the test kind stands in for any other: it keeps keys it does not use
    model_config = ConfigDict(extra="allow")

    dataset: str | None = None
    """The in-process dataset holding the records (default: the system id)."""
    path: str | None = None
    """A JSON file the records are loaded from and saved to (relative: beside the config file)."""
    page_size: int | None = None
    """Records per page of a read (default 1000)."""


class MemoryTypeSettings(EntityTypeSettings):
    model_config = ConfigDict(extra="allow")

    id: str = "id"
    """The id field."""
    updated: str | None = "updated_at"
    """The modification time field (null: none)."""
    incremental: bool = True
    """False: every read is a full scan."""
    can_delete: bool = True
    """False: records of this type cannot be deleted."""
    external_ref: str | None = None
    """The field where creates stamp the source record's ref."""
    archive: dict[str, Any] | None = None
    """`{property, value}` that archives a record (for `on_delete: archive`)."""
    properties: dict[str, Any] | None = None
    """The property schema: `{name: {type, max_length, ...}}` (default: open)."""
