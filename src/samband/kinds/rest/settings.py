"""Settings of a ``kind: rest`` system (a company's own REST API)."""

from __future__ import annotations

from typing import Any, ClassVar

from samband.plugin.settings import EntityTypeSettings, KindSettings, RateLimit


class RestSettings(KindSettings):
    # a bare number: requests per second
    bare_rate_limit_per: ClassVar[float | None] = 1.0

    base_url: str | None = None
    """The API's address; collection paths are under it."""
    url: str | None = None
    """Another spelling of `base_url`."""
    auth: str | None = None
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
    id_type: str = "auto"
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
    paging: str = "cursor"
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
    archive: dict[str, Any] | None = None
    """`{property, value}` that archives an item, e.g. `{property: active, value: false}` (for
    `on_delete: archive`)."""
    properties: dict[str, Any] | None = None
    """The property schema: `{name: type}` or `{name: {type, references, read_only, max_length}}`
    (default: open); declare references so that ids written back are translated."""
