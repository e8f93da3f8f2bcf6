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
    path: str | None = None
    id: str | None = None
    updated: str | None = None
    deleted: str | None = None
    items: str | None = None
    next: str | None = None
    has_more: str | None = None
    paging: str | None = None
    since_param: str | None = None
    limit_param: str | None = None
    page_param: str | None = None
    offset_param: str | None = None
    first_page: int | None = None
    page_size: Any = None  # checked by the connector, with its own message
    external_ref: str | None = None
    external_ref_param: str | None = None
    incremental: bool | None = None
    reports_deletes: bool | None = None
    can_delete: bool | None = None
    id_type: str | None = None
    archive: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
