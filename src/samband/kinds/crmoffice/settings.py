"""Settings of a ``kind: crmoffice`` system."""

from __future__ import annotations

from typing import ClassVar

from samband.plugin.settings import EntityTypeSettings, KindSettings, RateLimit


class CrmOfficeSettings(KindSettings):
    # a bare number: requests per minute (also {calls: 250, period: 60}, the old spelling)
    bare_rate_limit_per: ClassVar[float | None] = 60.0

    base_url: str | None = None
    auth_url: str | None = None
    token_url: str | None = None
    authorize_url: str | None = None
    redirect_uri: str | None = None
    scope: str | None = None
    max_retries: int = 6
    rate_limit: RateLimit = RateLimit(calls=250, per=60.0)


class CrmOfficeTypeSettings(EntityTypeSettings):
    path: str | None = None
    items: str | None = None
    next: str | None = None
    continuation_param: str | None = None
    limit_param: str | None = None
    page_size: int | None = None
    updated: str | None = None
    since_param: str | None = None
    deleted: str | None = None
    deleted_param: str | None = None
    external_ref: str | None = None
    external_ref_param: str | None = None
    incremental: bool | None = None
