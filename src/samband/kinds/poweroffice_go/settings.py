"""Settings of a ``kind: poweroffice-go`` system."""

from __future__ import annotations

from typing import ClassVar

from samband.plugin.settings import EntityTypeSettings, KindSettings, RateLimit


class PowerOfficeSettings(KindSettings):
    # a bare number: requests per second per subscription key (the API's own unit)
    bare_rate_limit_per: ClassVar[float | None] = 1.0

    base_url: str | None = None
    token_url: str | None = None
    page_size: int | None = None
    rate_limit: RateLimit | None = None


class PowerOfficeTypeSettings(EntityTypeSettings):
    full_scan: bool = False
    path: str | None = None  # another endpoint path (``/ProjectActivities``)
