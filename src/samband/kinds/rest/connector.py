"""``kind: rest`` — a company's own system behind the Samband REST contract.

The contract (``docs/custom-system-api.yaml``)::

    GET    /{type}?since=<cursor>&limit=<n>   → {"items": [...], "next": "<cursor>|null"}
    GET    /{type}?external_ref=<x>           → the same envelope (optional)
    GET    /{type}/{id}                       → the item
    POST   /{type}                            → 201 and the created item
    PATCH  /{type}/{id}                       → the item (JSON merge patch)
    DELETE /{type}/{id}                       → 204

Every name is configurable per entity type, and so is the paging style, so that an
existing API that differs a little fits without code::

    crm:
      kind: rest
      base_url: https://crm.example.com/api
      auth: bearer                       # bearer | basic | none
      credentials: {token: ${CRM_TOKEN}} # or {username: ..., password: ...}
      entity_types:
        Contact:
          path: contacts                 # default: the type name
          id: id                         # field names (dotted paths allowed)
          updated: updated_at
          deleted: deleted               # null: the API reports no tombstones
          items: items                   # null: the body is the list itself
          next: next
          has_more: has_more
          total: total                   # page/offset: the number of items of the read
          paging: cursor                 # cursor | page | offset
          since_param: since
          limit_param: limit             # page style: page_size
          page_size: 100
          external_ref: external_ref     # field that holds the source ref of creates
          id_type: auto                  # auto | integer | string: ids in references
          properties: {customer_id: {type: reference, references: Customer}}

Cursors: with ``cursor`` paging the cursor is the API's own ``next`` value (the last
non-null one).  With ``page``/``offset`` paging the connector keeps the newest ``updated``
marker it saw (a timestamp, sent back minus the overlap window, or an integer version)
and sends it as ``since_param``; ``incremental: false`` reads everything every run.
A page shorter than ``page_size`` is not taken as the last one (APIs cap their page
size): a page/offset read ends at an empty page, ``has_more: false``, a null ``next`` or
when ``total`` items were read.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import orjson

from samband import exactjson
from samband.config.env import references
from samband.config.model import SystemConfig
from samband.connectors._http import HttpClient, conflict_is_in_use, limiter_for
from samband.connectors.base import Connector, EntityType, Page, Property, RecordData
from samband.errors import (
    AuthError,
    ConnectorError,
    ContractError,
    InUse,
    NotFound,
    RecordError,
    Stale,
    TransientError,
)
from samband.kinds.rest.settings import RestProperty, RestSettings, RestTypeSettings
from samband.mapping import get_path, set_path
from samband.plugin.settings import RateLimit
from samband.types import ConversionError, DataType, coerce, same_stored_value, to_wire

PAGING_STYLES = ("cursor", "page", "offset")
ID_TYPES = ("auto", "integer", "string")
_ABSENT = object()
_WHOLE_NUMBER = re.compile(r"-?[1-9][0-9]{0,17}|0")
# A body that does not parse as JSON is asked for again this many times (GET only):
# a truncated answer passes, an API that never answers JSON is reported.
JSON_RETRIES = 2


@dataclass(frozen=True)
class TypeSettings:
    """Where and how one entity type is read and written."""

    name: str
    path: str
    id: str = "id"
    updated: str | None = "updated_at"
    deleted: str | None = "deleted"
    items: str | None = "items"
    next: str | None = "next"
    has_more: str | None = "has_more"
    total: str | None = "total"
    paging: str = "cursor"
    since_param: str | None = "since"
    limit_param: str | None = "limit"
    page_param: str = "page"
    offset_param: str = "offset"
    first_page: int = 1
    page_size: int = 100
    external_ref: str | None = None
    external_ref_param: str = "external_ref"
    incremental: bool = True
    id_type: str = "auto"

    @classmethod
    def from_settings(cls, system_id: str, name: str, s: RestTypeSettings) -> TypeSettings:
        if s.paging not in PAGING_STYLES:
            raise ConnectorError(
                system_id,
                f"entity type {name}: paging {s.paging!r} is not known",
                f"use one of {', '.join(PAGING_STYLES)}",
            )
        page_size = s.page_size
        if not isinstance(page_size, int) or isinstance(page_size, bool) or page_size < 1:
            raise ConnectorError(
                system_id, f"entity type {name}: page_size must be a positive whole number"
            )
        if s.id_type not in ID_TYPES:
            raise ConnectorError(
                system_id,
                f"entity type {name}: id_type {s.id_type!r} is not known",
                f"use one of {', '.join(ID_TYPES)}",
            )
        limit_param = (
            s.limit_param
            if "limit_param" in s.model_fields_set
            else ("page_size" if s.paging == "page" else "limit")
        )
        external_ref = s.external_ref or None
        return cls(
            name=name,
            path=str(name if s.path is None else s.path).strip("/"),
            id=s.id,
            updated=s.updated or None,
            deleted=s.deleted or None,
            items=s.items or None,
            next=s.next or None,
            has_more=s.has_more or None,
            total=s.total or None,
            paging=s.paging,
            since_param=s.since_param or None,
            limit_param=limit_param or None,
            page_param=s.page_param,
            offset_param=s.offset_param,
            first_page=s.first_page,
            page_size=page_size,
            external_ref=external_ref,
            external_ref_param=str(
                s.external_ref_param
                if "external_ref_param" in s.model_fields_set
                else (external_ref or "external_ref")
            ),
            incremental=s.incremental,
            id_type=s.id_type,
        )


@dataclass
class _Answer:
    """One parsed list page."""

    items: list[Any]
    next: str | None
    has_more: bool | None
    request: str  # "GET /contacts?since=12&limit=100", for error messages
    #: the body names a ``next`` field and it is null: the API says this is the last page
    no_next: bool = False
    #: how many items the whole read holds, when the API says so
    total: int | None = None
    #: the body was read by the lenient parse: items may hold lone surrogates
    lenient: bool = False


def _parse_properties(spec: Mapping[str, RestProperty] | None) -> dict[str, Property]:
    props: dict[str, Property] = {}
    for path, item in (spec or {}).items():
        data_type = item.type or (DataType.REFERENCE if item.references else None)
        props[path] = Property(
            path,
            data_type,
            read_only=item.read_only,
            required=item.required,
            max_length=item.max_length,
            references=item.references,
        )
    return props


def _wire(value: Any) -> Any:
    """Canonical value → JSON value, inside lists and objects too."""
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_wire(v) for v in value]
    return to_wire(value)


class RestConnector(Connector):
    """A system that implements (or nearly implements) the Samband REST contract."""

    kind = "rest"

    def __init__(
        self, system_id: str, config: SystemConfig, credentials: Any, **options: Any
    ) -> None:
        super().__init__(system_id, config, credentials, **options)
        settings = RestSettings.of(config, system_id)
        self.base_url = str(settings.base_url or settings.url or "")
        self.auth_kind = str(settings.auth or ("bearer" if credentials else "none")).lower()
        self.timeout = settings.timeout
        self.max_retries = settings.max_retries
        self.rate_limit: RateLimit | None = settings.rate_limit  # optional
        self.type_settings = {
            name: TypeSettings.from_settings(
                system_id, name, RestTypeSettings.of(etc, system_id, name)
            )
            for name, etc in config.entity_types.items()
        }
        #: how the HTTP client waits between retries (tests record the waits instead)
        self.sleep: Callable[[float], None] = time.sleep
        self.transport: httpx.BaseTransport | None = None
        self._client: HttpClient | None = None
        self._lenient = False  # the last body parsed needed the lenient parse

    # -- schema ---------------------------------------------------------------------
    @classmethod
    def describe(cls, config: SystemConfig) -> dict[str, EntityType]:
        types: dict[str, EntityType] = {}
        for name, etc in config.entity_types.items():
            s = RestTypeSettings.of(etc, type_name=name)
            props = _parse_properties(s.properties)
            id_field = s.id
            updated = s.updated or None
            if props:
                props.setdefault(id_field, Property(id_field, read_only=True))
                if updated:
                    props.setdefault(updated, Property(updated, read_only=True))
            incremental = s.incremental
            reports_deletes = s.reports_deletes
            if reports_deletes is None:
                reports_deletes = incremental and bool(s.deleted)
            archive = s.archive
            types[name] = EntityType(
                name=name,
                id_field=id_field,
                modified_field=updated,
                properties=props,
                incremental=incremental,
                reports_deletes=reports_deletes,
                read_only=bool(s.read_only),
                can_delete=s.can_delete,
                external_ref_field=s.external_ref or None,
                archive=(archive.property, archive.value) if archive else None,
                open_schema=not props,
            )
        return types

    # -- HTTP -------------------------------------------------------------------------
    def _auth_headers(self) -> dict[str, str]:
        if self.auth_kind == "none":
            return {}
        if self.auth_kind == "bearer":
            token = self.credentials.get("token")
            if not token:
                raise ConnectorError(
                    self.system_id,
                    "auth: bearer needs a token",
                    "add credentials: {token: ${YOUR_TOKEN_VARIABLE}} to the system",
                )
            return {"Authorization": f"Bearer {token}"}
        if self.auth_kind == "basic":
            user, password = self.credentials.get("username"), self.credentials.get("password")
            if not user or password is None:
                raise ConnectorError(
                    self.system_id,
                    "auth: basic needs a username and a password",
                    "add credentials: {username: ${USER_VARIABLE}, password: ${PASSWORD_VARIABLE}}",
                )
            pair = base64.b64encode(f"{user}:{password}".encode()).decode()
            return {"Authorization": f"Basic {pair}"}
        raise ConnectorError(
            self.system_id, f"auth {self.auth_kind!r} is not known", "use bearer, basic or none"
        )

    @property
    def client(self) -> HttpClient:
        if self._client is None:
            if not self.base_url:
                raise ConnectorError(
                    self.system_id, "no base_url", "set base_url: https://... on the system"
                )
            limiter = limiter_for("rest", self.base_url, self.rate_limit)
            self._client = HttpClient(
                self.system_id,
                self.base_url,
                headers={"Accept": "application/json", **self._auth_headers()},
                limiter=limiter,
                stats=self.stats,
                max_retries=self.max_retries,
                timeout=self.timeout,
                sleep=self.sleep,
                transport=self.transport,
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _settings(self, entity_type: str) -> TypeSettings:
        if entity_type not in self.type_settings:
            raise KeyError(f"system {self.system_id!r} has no entity type {entity_type!r}")
        return self.type_settings[entity_type]

    def _contract(self, request: str, problem: str) -> ContractError:
        return ContractError(
            self.system_id,
            f"{request}: {problem}",
            "the API breaks the Samband REST contract (docs/custom-system-api.yaml); fix the "
            "API or the entity type's field settings",
        )

    def _parse(self, response: httpx.Response, request: str) -> Any:
        self._lenient = False
        try:
            return exactjson.loads(response.content, decimal=str)
        except orjson.JSONDecodeError:
            pass
        try:
            # valid JSON that orjson refuses: a lone surrogate escape in a string; the
            # items that hold one are quarantined (see _record), not the whole page
            body = exactjson.loads_lenient(response.content, decimal=str)
            self._lenient = True
            return body
        except orjson.JSONDecodeError:
            snippet = response.text[:80].replace("\n", " ")
            raise self._contract(
                request,
                f"answered {response.status_code} with a body that is not JSON: {snippet!r}",
            ) from None

    def _get(self, url: str, params: dict[str, Any] | None = None) -> tuple[Any, str]:
        """GET and parse JSON; a body that is not JSON is asked for again a few times."""
        request = f"GET {url}" + (f"?{urlencode(params)}" if params else "")
        attempt = 0
        while True:
            response = self.client.request("GET", url, params=params)
            try:
                return self._parse(response, request), request
            except ContractError:
                attempt += 1
                if attempt > JSON_RETRIES:
                    raise
                self.stats.retries += 1

    def _list(self, ts: TypeSettings, params: dict[str, Any]) -> _Answer:
        body, request = self._get(f"/{ts.path}", params)
        lenient = self._lenient
        if ts.items is None:
            items = body
        elif isinstance(body, dict):
            items = get_path(body, ts.items)
        else:
            raise self._contract(request, f"the body is not an object with {ts.items!r}")
        if not isinstance(items, list):
            where = "the body" if ts.items is None else f"{ts.items!r}"
            raise self._contract(request, f"{where} is not a list of items")
        next_value: Any = None
        has_more: Any = None
        total: Any = None
        no_next = False
        if isinstance(body, dict):
            next_value = get_path(body, ts.next, _ABSENT) if ts.next else None
            no_next = next_value is None
            next_value = None if next_value is _ABSENT else next_value
            has_more = get_path(body, ts.has_more) if ts.has_more else None
            total = get_path(body, ts.total) if ts.total else None
            if isinstance(total, bool) or not isinstance(total, int):
                total = None
        if next_value is not None and (
            isinstance(next_value, bool) or not isinstance(next_value, str | int)
        ):
            raise self._contract(request, f"{ts.next!r} is not a string or null")
        if has_more is not None and not isinstance(has_more, bool):
            raise self._contract(request, f"{ts.has_more!r} is not true, false or null")
        next_text = None if next_value is None else str(next_value)
        return _Answer(items, next_text, has_more, request, no_next, total, lenient)

    def _record(
        self, ts: TypeSettings, item: Any, request: str, lenient: bool = False
    ) -> RecordData:
        if not isinstance(item, dict):
            raise self._contract(request, f"an item is not an object: {str(item)[:60]!r}")
        record_id = get_path(item, ts.id)
        if isinstance(record_id, bool) or not isinstance(record_id, str | int) or record_id == "":
            shown = "missing" if record_id is None else f"{record_id!r}"
            raise self._contract(
                request, f"an item has no usable id in {ts.id!r} ({shown}); keys: {sorted(item)}"
            )
        modified: datetime | None = None
        marker = get_path(item, ts.updated) if ts.updated else None
        if isinstance(marker, str):
            try:
                modified = coerce(marker, DataType.DATETIME)
            except ConversionError:
                raise self._contract(
                    request, f"{ts.name} {record_id}: {ts.updated} {marker!r} is not ISO 8601"
                ) from None
        elif marker is not None and (isinstance(marker, bool) or not isinstance(marker, int)):
            raise self._contract(
                request,
                f"{ts.name} {record_id}: {ts.updated} must be an ISO 8601 string or a version "
                f"number, not {marker!r}",
            )
        flag = get_path(item, ts.deleted) if ts.deleted else None
        if isinstance(flag, dict | list | float):
            raise self._contract(
                request, f"{ts.name} {record_id}: {ts.deleted} must be true or false"
            )
        record = RecordData(str(record_id), item, modified, bool(flag))
        if lenient:
            bad = exactjson.unpaired_surrogate(item)
            if bad is not None:
                path, surrogate, position = bad
                record.id = record.id.encode("utf-8", "backslashreplace").decode()
                record.problem = (
                    f"{path} contains an unpaired surrogate ({surrogate!r} at position "
                    f"{position}; half of a character, e.g. an emoji cut in two), which is "
                    f"not text; {request} answered it: correct the value in "
                    f"{self.system_id}"
                )
        return record

    # -- paging -------------------------------------------------------------------------
    def _pages(
        self, ts: TypeSettings, extra: dict[str, Any], since: str | None
    ) -> Iterator[_Answer]:
        """The list pages of a read, in the type's paging style."""
        limit = {ts.limit_param: ts.page_size} if ts.limit_param else {}
        if ts.paging == "cursor":
            position = since
            while True:
                params = {**extra, **limit}
                if position is not None and ts.since_param:
                    params[ts.since_param] = position
                answer = self._list(ts, params)
                yield answer
                if (
                    answer.next is None
                    or not answer.items
                    or answer.next == position
                    or answer.has_more is False
                ):
                    return
                position = answer.next
        number = ts.first_page if ts.paging == "page" else 0
        previous: list[Any] | None = None
        read = 0
        while True:
            params = {**extra, **limit}
            if since is not None and ts.since_param:
                params[ts.since_param] = since
            params[ts.page_param if ts.paging == "page" else ts.offset_param] = number
            answer = self._list(ts, params)
            if answer.items and answer.items == previous:
                if ts.limit_param is None or len(previous) < ts.page_size:
                    return  # an API that does not page: its first answer held everything
                raise self._contract(
                    answer.request,
                    f"the same page came back twice; check page_param/offset_param "
                    f"({ts.page_param if ts.paging == 'page' else ts.offset_param!r})",
                )
            yield answer
            # A short page is not the end: many APIs cap the page size below what was
            # asked (25 asked, 20 given).  The end is an empty page or what the API says:
            # has_more false, a null next link, or the total reached.
            read += len(answer.items)
            if (
                not answer.items
                or answer.has_more is False
                or answer.no_next
                or (answer.total is not None and read >= answer.total)
            ):
                return
            previous = answer.items
            number += 1 if ts.paging == "page" else len(answer.items)

    def _since_value(self, cursor: str) -> str:
        """A page/offset cursor (newest updated marker) as the value to send back."""
        if cursor.lstrip("-").isdigit():
            return cursor
        moment = coerce(cursor, DataType.DATETIME) - timedelta(seconds=self.overlap_seconds)
        return str(moment.isoformat().replace("+00:00", "Z"))

    def read(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        ts = self._settings(entity_type)
        etype = self.entity_type(entity_type)
        incremental = etype.incremental and ts.incremental
        if ts.paging == "cursor":
            last = cursor if incremental else None
            for answer in self._pages(ts, {}, last):
                records = [
                    self._record(ts, item, answer.request, answer.lenient) for item in answer.items
                ]
                self.stats.reads += len(records)
                if answer.next is not None:
                    last = answer.next
                yield Page(records, last if incremental else None)
            return
        since = self._since_value(cursor) if incremental and cursor else None
        newest: datetime | int | None = None
        for answer in self._pages(ts, {}, since):
            records = [
                self._record(ts, item, answer.request, answer.lenient) for item in answer.items
            ]
            self.stats.reads += len(records)
            for record in records:
                marker = record.modified or (
                    get_path(record.data, ts.updated) if ts.updated else None
                )
                if marker is not None and (newest is None or _later(marker, newest)):
                    newest = marker
            yield Page(records, None)
        if incremental and newest is not None:
            value = newest.isoformat() if isinstance(newest, datetime) else str(newest)
            yield Page([], value)

    def get(self, entity_type: str, record_id: str) -> RecordData | None:
        ts = self._settings(entity_type)
        url = f"/{ts.path}/{quote(str(record_id), safe='')}"
        try:
            body, request = self._get(url)
        except NotFound:
            return None
        record = self._record(ts, body, request, self._lenient)
        if record.problem is not None:
            raise RecordError(f"{entity_type} {record_id}: {record.problem}")
        return None if record.deleted else record

    def find_by_external_ref(self, entity_type: str, external_ref: str) -> RecordData | None:
        ts = self._settings(entity_type)
        if ts.external_ref is None:
            return None
        for answer in self._pages(ts, {ts.external_ref_param: external_ref}, None):
            for item in answer.items:
                record = self._record(ts, item, answer.request, answer.lenient)
                value = get_path(record.data, ts.external_ref)
                if not record.deleted and value is not None and str(value) == external_ref:
                    if record.problem is not None:
                        raise RecordError(f"{entity_type} {record.id}: {record.problem}")
                    return record
        return None

    # -- writing -------------------------------------------------------------------------
    def _body(self, entity_type: str, values: dict[str, Any]) -> dict[str, Any]:
        etype = self.entity_type(entity_type)
        body: dict[str, Any] = {}
        for path, value in values.items():
            prop = etype.property(path)
            if prop is not None and (prop.references or prop.type == DataType.REFERENCE):
                value = self._reference_value(value, prop.references)
            set_path(body, path, _wire(value))
        return body

    def _reference_value(self, value: Any, target: str | None) -> Any:
        """A reference (canonically a string id) in the JSON type of the target's ids:
        ``id_type: integer`` or ``auto`` sends a whole-number id as a JSON number."""
        ts = self.type_settings.get(target or "")
        id_type = ts.id_type if ts is not None else "auto"
        if isinstance(value, str) and id_type != "string" and _WHOLE_NUMBER.fullmatch(value):
            return int(value)
        return value

    def _writable(self, entity_type: str) -> TypeSettings:
        ts = self._settings(entity_type)
        if self.entity_type(entity_type).read_only:
            raise RecordError(f"{entity_type} is read-only in {self.system_id} (read_only: true)")
        return ts

    def create(
        self, entity_type: str, values: dict[str, Any], external_ref: str | None = None
    ) -> RecordData:
        ts = self._writable(entity_type)
        body = self._body(entity_type, values)
        if external_ref and ts.external_ref:
            set_path(body, ts.external_ref, external_ref)
        body.pop(ts.id, None)
        url = f"/{ts.path}"
        request = f"POST {url}"
        response = self.client.request("POST", url, json=body)
        self.stats.writes += 1
        if not response.content and response.headers.get("Location"):
            # 201 without a body: read the new item where the API says it is
            found, request = self._get(str(response.url.join(response.headers["Location"])))
            return self._record(ts, found, request)
        try:
            created = self._parse(response, request)
        except ContractError:
            # A cut answer: the record may exist; find it by the ref we stamped.
            if external_ref and ts.external_ref:
                record = self.find_by_external_ref(entity_type, external_ref)
                if record is not None:
                    return record
            raise
        return self._record(ts, created, request)

    checks_expected = True

    def update(
        self,
        entity_type: str,
        record_id: str,
        changes: dict[str, Any],
        expected: dict[str, Any] | None = None,
    ) -> RecordData | None:
        """A JSON merge patch of the changed properties.  With ``expected`` (unless the
        system says ``check_before_update: false``) the record is read first and compared;
        when the API gave an ``ETag``, the patch carries it as ``If-Match``, so an edit
        made between that read and the patch is refused too (412)."""
        ts = self._writable(entity_type)
        url = f"/{ts.path}/{quote(str(record_id), safe='')}"
        request = f"PATCH {url}"
        headers: dict[str, str] = {}
        if expected and self.config.check_before_update is not False:
            etag = self._check_expected(ts, url, expected, f"{entity_type} {record_id}")
            if etag:
                headers["If-Match"] = etag
        try:
            response = self.client.request(
                "PATCH",
                url,
                json=self._body(entity_type, changes),
                headers=headers,
                idempotent=True,
            )
        except RecordError as exc:
            if headers and exc.details.get("status") == 412:
                raise Stale(
                    f"{self.system_id}: {entity_type} {record_id} was changed after it was read"
                ) from None
            raise
        self.stats.writes += 1
        if not response.content:
            return None
        try:
            body = self._parse(response, request)
        except ContractError:
            # A merge patch can be read back safely; a cut answer is not a lost write.
            return self.get(entity_type, record_id)
        return self._record(ts, body, request)

    def _check_expected(
        self, ts: TypeSettings, url: str, expected: dict[str, Any], what: str
    ) -> str | None:
        """Read the record; raise :class:`Stale` when a property about to be written no
        longer holds the value read before; the record's ``ETag``, if the API sends one."""
        response = self.client.request("GET", url)
        record = self._record(ts, self._parse(response, f"GET {url}"), f"GET {url}")
        if record.deleted:
            raise NotFound(f"{self.system_id}: {what} no longer exists")
        edited = [
            path
            for path, was in expected.items()
            if not same_stored_value(get_path(record.data, path), was)
        ]
        if edited:
            raise Stale(
                f"{self.system_id}: {what}: {', '.join(sorted(edited))} changed since it was read"
            )
        return response.headers.get("ETag")

    def delete(self, entity_type: str, record_id: str) -> None:
        ts = self._writable(entity_type)
        if not self.entity_type(entity_type).can_delete:
            raise InUse(f"{entity_type} records cannot be deleted in {self.system_id}")
        url = f"/{ts.path}/{quote(str(record_id), safe='')}"
        with conflict_is_in_use():
            self.client.request("DELETE", url)
        self.stats.writes += 1

    # -- before any work -------------------------------------------------------------------
    def check(self) -> None:
        """One small read per entity type: URL, credentials, paths and the envelope."""
        for name, ts in self.type_settings.items():
            params: dict[str, Any] = {ts.limit_param: 1} if ts.limit_param else {}
            if ts.paging == "page":
                params[ts.page_param] = ts.first_page
            try:
                self._list(ts, params)
            except AuthError as exc:
                raise AuthError(
                    self.system_id,
                    f"the API refused the credentials ({_reason(exc)})",
                    f"check {self._credential_hint()} and base_url {self.base_url}",
                ) from None
            except NotFound as exc:
                raise ConnectorError(
                    self.system_id,
                    f"entity type {name}: {exc.reason}",
                    f"check base_url ({self.base_url}) and the type's path ({ts.path!r})",
                ) from None
            except RecordError as exc:
                raise ConnectorError(
                    self.system_id,
                    f"entity type {name}: the API refused a one-item read: {exc.reason}",
                    "check the paging settings (paging, limit_param, page_param, since_param)",
                ) from None
            except TransientError as exc:
                raise ConnectorError(
                    self.system_id, str(exc), "the API keeps failing; try again later"
                ) from None

    def _credential_hint(self) -> str:
        keys = ["token"] if self.auth_kind == "bearer" else ["username", "password"]
        parts = []
        for key in keys:
            raw = self.config.credentials.get(key, "")
            variables = references(raw) if raw else []
            where = f" (${{{variables[0]}}})" if variables else ""
            parts.append(f"credentials.{key}{where}")
        return f"auth: {self.auth_kind} with " + " and ".join(parts)


def _reason(exc: ConnectorError) -> str:
    text = str(exc)
    prefix = f"system {exc.system!r}: "
    text = text[len(prefix) :] if text.startswith(prefix) else text
    return text.split(" — ", 1)[0]


def _later(marker: datetime | int, newest: datetime | int) -> bool:
    if isinstance(marker, datetime) and isinstance(newest, datetime):
        return marker > newest
    if isinstance(marker, int) and isinstance(newest, int):
        return marker > newest
    return isinstance(marker, datetime)  # a timestamp beats a version marker


__all__ = ["RestConnector", "TypeSettings"]
