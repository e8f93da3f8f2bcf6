"""Settings of a ``kind: exact-online`` system (pacing comes from Exact's headers)."""

from __future__ import annotations

from samband.plugin.settings import EntityTypeSettings, KindSettings


class ExactOnlineSettings(KindSettings):
    base_url: str | None = None
    division: int | str | None = None
    page_size: int = 1000
    max_errors_per_hour: int = 8
    redirect_uri: str | None = None


class ExactOnlineTypeSettings(EntityTypeSettings):
    full_scan: bool = False
    external_ref_field: str | None = None
