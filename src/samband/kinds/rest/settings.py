"""Settings of a ``kind: rest`` system (a company's own REST API)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict

from samband.plugin.settings import (
    EntityTypeSettings,
    HttpUrl,
    KindSettings,
    RateLimit,
    choice,
)
from samband.types import DataType


class RestProperty(BaseModel):
    """One property of a REST entity type's schema (`{name: type}` is short for
    `{name: {type}}`)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    type: DataType | None = None
    """`string`, `integer`, `decimal`, `float`, `boolean`, `date`, `datetime` or `reference`."""
    references: str | None = None
    """The entity type a reference points at (then `type` defaults to `reference`)."""
    read_only: bool = False
    """True: the API sets it; Samband never writes it."""
    required: bool = False
    """True: a create must give it."""
    max_length: int | None = None
    """The longest text the API accepts."""


class ArchiveRule(BaseModel):
    """The property and value that archive an item (`on_delete: archive`)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    property: str
    """The property that is set."""
    value: Any = None
    """The value that means archived."""


def _short_property(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: {"type": v} if isinstance(v, str) or v is None else v for k, v in value.items()}
    return value


class RestSettings(KindSettings):
    # a bare number: requests per second
    bare_rate_limit_per: ClassVar[float | None] = 1.0

    base_url: HttpUrl | None = None
    """The API's address; collection paths are under it."""
    url: HttpUrl | None = None
    """Another spelling of `base_url`."""
    auth: Annotated[str | None, choice("bearer", "basic", "none", lower=True)] = None
    """`bearer` (credential `token`), `basic` (`username` and `password`) or `none` (default:
    `bearer` with credentials, else `none`)."""
    timeout: float = 30.0
    """Seconds to wait for an answer."""
    max_retries: int = 6
    """How often a 429, a 5xx or a broken answer is tried again before the request fails."""
    rate_limit: RateLimit | None = None
    """Client-side pacing: a bare number is requests per second, or `{calls, per}` with `per` in
    seconds (default: none)."""


class RestTypeSettings(EntityTypeSettings):
    path: str | None = None
    """The collection path under `base_url` (default: the entity type's name)."""
    id: str = "id"
    """The id field (dotted paths allowed)."""
    id_type: Annotated[str, choice("auto", "integer", "string")] = "auto"
    """The JSON type of this type's ids when another record refers to it: `auto` and `integer` send
    a whole-number id as a number, `string` keeps it a string."""
    updated: str | None = "updated_at"
    """The modification field, ISO 8601 or an integer version (`""` or null: the API has no change
    stamp)."""
    deleted: str | None = "deleted"
    """The field that marks a tombstone of a deleted record (null: the API has no tombstones)."""
    items: str | None = "items"
    """The field of the answer holding the page's items (null: the body is the list itself)."""
    next: str | None = "next"
    """The field of the answer holding the cursor of the next page."""
    has_more: str | None = "has_more"
    """The field of the answer that says whether more pages follow."""
    total: str | None = "total"
    """The field of the answer holding the number of items of the whole read (page and offset
    paging), if the API gives one."""
    paging: Annotated[str, choice("cursor", "page", "offset")] = "cursor"
    """`cursor` (follow `next`), `page` (page number and size) or `offset` (offset and limit)."""
    since_param: str | None = "since"
    """The query parameter of the change cursor."""
    limit_param: str | None = None
    """The query parameter of the page size (default: `page_size` for page paging, else `limit`)."""
    page_param: str = "page"
    """The query parameter of the page number (page paging)."""
    offset_param: str = "offset"
    """The query parameter of the offset (offset paging)."""
    first_page: int = 1
    """The number of the first page (page paging)."""
    page_size: Any = 100  # checked by the connector, with its own message
    """Items asked for per page; a shorter page is not taken as the last one."""
    external_ref: str | None = None
    """The field where creates stamp the source record's ref, to find an interrupted create again
    (default: none)."""
    external_ref_param: str | None = None
    """The query parameter that filters on the external reference (default: the `external_ref`
    field's name, else `external_ref`)."""
    incremental: bool = True
    """False: read every item on every run (Samband then detects deletions itself)."""
    reports_deletes: bool | None = None
    """Whether change reads report deletions (default: true when reads are incremental and `deleted`
    is set)."""
    can_delete: bool = True
    """False: the API cannot delete items of this type."""
    archive: ArchiveRule | None = None
    """`{property, value}` that archives an item, e.g. `{property: active, value: false}` (for
    `on_delete: archive`)."""
    properties: Annotated[dict[str, RestProperty] | None, BeforeValidator(_short_property)] = None
    """The property schema: `{name: type}` or `{name: {type, references, read_only, max_length}}`
    (default: open); declare references so that ids written back are translated."""
