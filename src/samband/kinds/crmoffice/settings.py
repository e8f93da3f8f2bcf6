"""Settings of a ``kind: crmoffice`` system."""

from __future__ import annotations

from typing import ClassVar

from samband.plugin.settings import EntityTypeSettings, HttpUrl, KindSettings, RateLimit


class CrmOfficeSettings(KindSettings):
    # a bare number: requests per minute (also {calls: 250, period: 60}, the old spelling)
    bare_rate_limit_per: ClassVar[float | None] = 60.0

    base_url: HttpUrl | None = None
    """The API's address (default `https://api.crmoffice.no`)."""
    auth_url: HttpUrl | None = None
    """Your tenant's login server, e.g. `https://mytenant.crmoffice.no` (needed to log in)."""
    token_url: HttpUrl | None = None
    """The token endpoint (default: `auth_url` + `/connect/token`)."""
    authorize_url: HttpUrl | None = None
    """The login page `samband auth` opens (default: `auth_url` + `/connect/authorize`)."""
    redirect_uri: HttpUrl | None = None
    """The redirect URI of your client, if it has a fixed one (default: Samband's listener on
    127.0.0.1)."""
    scope: str | None = None
    """The OAuth scopes asked for (default `crmoffice offline_access`)."""
    max_retries: int = 6
    """How often a request answered with 429, 5xx, a reset or a timeout is tried again before it
    fails."""
    rate_limit: RateLimit = RateLimit(calls=250, per=60.0)
    """Client-side pacing: a bare number is requests per minute, or `{calls, per}` with `per` in
    seconds; 0: no pacing."""


class CrmOfficeTypeSettings(EntityTypeSettings):
    path: str | None = None
    """The collection path (default: `companies`, `contacts`, `activities`, `users`; the type's name
    for others)."""
    items: str | None = None
    """The key of the records in a page's answer (default `items`)."""
    next: str | None = None
    """The field of the answer holding the continuation token; a URL is followed as it is (default
    `continuationToken`)."""
    continuation_param: str | None = None
    """The query parameter that sends the continuation token back (default `continuationToken`)."""
    limit_param: str | None = None
    """The query parameter of the page size (default `limit`)."""
    page_size: int | None = None
    """Records asked for per page (default 100)."""
    updated: str | None = None
    """The modification time field (default `updatedAt`)."""
    since_param: str | None = None
    """The query parameter of the change filter, inclusive (default `updatedSince`; none
    for Users)."""
    deleted: str | None = None
    """The field that marks a tombstone of a deleted record (default `isDeleted`)."""
    deleted_param: str | None = None
    """The query parameter, sent as `true`, that asks for tombstones of deleted records (default
    `includeDeleted`)."""
    external_ref: str | None = None
    """The field where creates stamp the source record's ref, to find an interrupted create again
    (default `externalId`; null switches it off)."""
    external_ref_param: str | None = None
    """The query parameter that filters on the external reference (default `externalId`)."""
    incremental: bool | None = None
    """False: read every record on every run instead of the changes only (default: false for Users
    only)."""
