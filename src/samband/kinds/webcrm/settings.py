"""Settings of a ``kind: webcrm`` system."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from samband.plugin.settings import EntityTypeSettings, HttpUrl, KindSettings, RateLimit, choice


class WebCrmSettings(KindSettings):
    # a bare number: requests per minute (WebCRM's published limit is 250 a minute)
    bare_rate_limit_per: ClassVar[float | None] = 60.0

    base_url: HttpUrl | None = None
    """The API's address (default `https://api.webcrm.com`)."""
    page_size: int = 500
    """Records per page (`Size`), 1 to 1000."""
    changes: Annotated[str, choice("find_by_update_dates", "queries")] = "find_by_update_dates"
    """How changes are read: `find_by_update_dates` (`FindByUpdateDates`) or `queries` (`/Queries`,
    for accounts without it)."""
    rate_limit: RateLimit = RateLimit(calls=250, per=60.0)
    """Client-side pacing per application token: a bare number is requests per minute, or `{calls,
    per}` with `per` in seconds; 0: no pacing."""


class WebCrmTypeSettings(EntityTypeSettings):
    external_ref: str | None = None
    """A custom field you use for nothing else, where creates stamp the source record's ref, so that
    an interrupted create is found again."""
    archive_status: dict[str, Any] | None = None
    """The property and value that mean inactive in your WebCRM, e.g. `{property:
    OrganisationStatus, value: Inactive}` (for `on_delete: archive`)."""
    archive: dict[str, Any] | None = None
    """Another spelling of `archive_status`."""
    incremental: bool = True
    """False: read every record on every run (the only way to see deletions, e.g. of Products)."""
    full_scan: bool = False
    """True: the same as `incremental: false`."""
