"""Settings of a ``kind: webcrm`` system."""

from __future__ import annotations

from typing import Any, ClassVar

from samband.plugin.settings import EntityTypeSettings, KindSettings, RateLimit


class WebCrmSettings(KindSettings):
    # a bare number: requests per minute (WebCRM's published limit is 250 a minute)
    bare_rate_limit_per: ClassVar[float | None] = 60.0

    base_url: str | None = None
    page_size: int = 500
    changes: str = "find_by_update_dates"
    rate_limit: RateLimit = RateLimit(calls=250, per=60.0)


class WebCrmTypeSettings(EntityTypeSettings):
    external_ref: str | None = None
    archive_status: dict[str, Any] | None = None
    archive: dict[str, Any] | None = None
    incremental: bool = True
    full_scan: bool = False
