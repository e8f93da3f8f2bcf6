"""Settings of a ``kind: rest`` system (a company's own REST API)."""

from __future__ import annotations

from typing import Any, ClassVar

from samband.plugin.settings import EntityTypeSettings, KindSettings, RateLimit


class RestSettings(KindSettings):
    # a bare number: requests per second
    bare_rate_limit_per: ClassVar[float | None] = 1.0

    base_url: str | None = None
    url: str | None = None
    auth: str | None = None
    timeout: float = 30.0
    max_retries: int = 6
    rate_limit: RateLimit | None = None


class RestTypeSettings(EntityTypeSettings):
    path: str | None = None  # default: the entity type's name
    id: str = "id"
    id_type: str = "auto"
    updated: str | None = "updated_at"  # "" or null: the API has no change stamp
    deleted: str | None = "deleted"
    items: str | None = "items"
    next: str | None = "next"
    has_more: str | None = "has_more"
    total: str | None = "total"  # the number of items of the whole read, if the API says
    paging: str = "cursor"
    since_param: str | None = "since"
    limit_param: str | None = None  # default: page_size for page paging, else limit
    page_param: str = "page"
    offset_param: str = "offset"
    first_page: int = 1
    page_size: Any = 100  # checked by the connector, with its own message
    external_ref: str | None = None
    external_ref_param: str | None = None  # default: external_ref, else "external_ref"
    incremental: bool = True
    reports_deletes: bool | None = None  # default: incremental with a deleted flag
    can_delete: bool = True
    archive: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
