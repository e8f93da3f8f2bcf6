"""Settings of a ``kind: poweroffice-go`` system."""

from __future__ import annotations

from typing import ClassVar

from samband.plugin.settings import EntityTypeSettings, HttpUrl, KindSettings, RateLimit


class PowerOfficeSettings(KindSettings):
    # a bare number: requests per second per subscription key (the API's own unit)
    bare_rate_limit_per: ClassVar[float | None] = 1.0

    base_url: HttpUrl | None = None
    """The API's address (default `https://goapi.poweroffice.net/v2`)."""
    token_url: HttpUrl | None = None
    """The token endpoint (default: derived from `base_url`, `/v2` becomes `/OAuth/Token`)."""
    page_size: int | None = None
    """`PageSize` of list reads (default 5000, at most 20 000)."""
    rate_limit: RateLimit | None = None
    """Client-side pacing per subscription key: a bare number is requests per second, or `{calls,
    per}` with `per` in seconds (default: 10 a second)."""


class PowerOfficeTypeSettings(EntityTypeSettings):
    full_scan: bool = False
    """True: every read of this type is a full scan, so that the engine sees deletions (the API
    reports none)."""
    path: str | None = None
    """Another endpoint path for this type (default: the v2 path, e.g.
    `/TimeTracking/ActivityTime` for `Projectactivity`)."""
