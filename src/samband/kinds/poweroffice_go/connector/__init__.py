"""``kind: poweroffice-go`` — PowerOffice GO through its v2 REST API.

Config::

    poweroffice:
      kind: poweroffice-go
      label: PowerOffice GO
      base_url: https://goapi.poweroffice.net/v2      # default; demo: .../Demo/v2
      # token_url: https://goapi.poweroffice.net/OAuth/Token   (derived from base_url)
      page_size: 5000                                  # PageSize of list reads (max 20 000)
      rate_limit: 10                                   # requests/second per subscription key
      credentials:
        application_key: ${POWEROFFICE_APPLICATION_KEY}
        client_key: ${POWEROFFICE_CLIENT_KEY}
        subscription_key: ${POWEROFFICE_SUBSCRIPTION_KEY}
      entity_types:
        Customers: {full_scan: true}        # see "Reading changes" below

Reading changes.  Every list read pages with ``PageNumber``/``PageSize`` until the
``X-Pagination`` header has no ``nextPageLink`` (``204`` is an empty page), asks only for
the ``Fields`` the dataflows use, and, from the second run on, only for records whose
``LastChangedDateTimeOffset`` is greater than the cursor (minus the overlap).  Pages are
ordered by that timestamp and each next page starts at the last timestamp read (keyset
paging), so that a record edited or deleted during the read cannot shift another out of
sight.  The order is checked on every page, not trusted: a page out of timestamp order, or
an ``X-Pagination`` ``TotalCount`` that falls by more than the records read below the next
page's start (rows would fall between two pages), makes the connector read the type again
by ``PageNumber`` alone for the rest of the run, and the run report says so; a page's
cursor is given out only once the next page has passed the check.  Read by ``PageNumber``, a record
deleted meanwhile would shift another between two pages: a pass whose ``TotalCount``
changes is read again, and a read that never holds still fails (nothing taken as deleted).

``Projectactivity`` and ``Timetrackingactivity`` are the v2 time-tracking activity
catalogue ``/TimeTracking/ActivityTime``; the evidence is
:data:`~samband.kinds.poweroffice_go.connector._types.ACTIVITY_EVIDENCE`.

* Contact persons have their own change filter on ``/ContactPersons``
  (``lastChangedDateTimeOffsetGreaterThan``), and their own timestamp moves when they are
  edited, so ``Contactperson`` is read incrementally from that endpoint; the parent's
  timestamp, which does not move, plays no part.
* A contact's address (``MailAddress``) has its own timestamp; editing it does not move
  the customer's, supplier's or employee's ``LastChangedDateTimeOffset``.  When a dataflow
  maps ``MailAddress.*`` properties, reads of those types are therefore full scans (with
  ``Fields``; the engine's content hashes keep them exact).
* ``full_scan: true`` on a type makes every read a full scan, so that the engine can see
  deletions (the API reports none).

Writes.  Creates ``POST`` the record with the source ref stamped into
``ExternalImportReference`` / ``ExternalCode`` / ``ExternalNumber`` (a digest when the ref
does not fit), so that after an interrupted create :meth:`find_by_external_ref` finds the
record instead of creating it twice.  Updates are JSON Patch documents with only the
changed properties.  A delete the API refuses with 409 raises :class:`InUse`; the engine
then archives (``IsArchived = true`` / ``IsActive = false``) when the policy allows.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from samband import exactjson
from samband.config.model import SystemConfig
from samband.connectors._http import HttpClient, dumps, limiter_for
from samband.connectors.base import Connector, EntityType, Page, Property, RecordData
from samband.errors import (
    AuthError,
    ContractError,
    ConversionError,
    InUse,
    NotFound,
    RecordError,
    Stale,
    TransientError,
)
from samband.kinds.poweroffice_go.connector._auth import PowerOfficeAuth
from samband.kinds.poweroffice_go.connector._types import API_TYPES, MODIFIED, ApiType, entity_type
from samband.kinds.poweroffice_go.settings import PowerOfficeSettings, PowerOfficeTypeSettings
from samband.mapping import get_path, set_path
from samband.plugin.settings import RateLimit
from samband.types import DataType, coerce, to_wire

DEFAULT_BASE_URL = "https://goapi.poweroffice.net/v2"
DEFAULT_PAGE_SIZE = 5000
MAX_PAGE_SIZE = 20000
DEFAULT_RATE_LIMIT = RateLimit(calls=10, per=1.0)
PATCH_TYPE = "application/json-patch+json"
EXTERNAL_TEXT_MAX = 50
JSON_ATTEMPTS = 4
CHANGE_FILTER = "lastChangedDateTimeOffsetGreaterThan"


class PowerOfficeConnector(Connector):
    kind = "poweroffice-go"

    def __init__(
        self,
        system_id: str,
        config: SystemConfig,
        credentials: Mapping[str, str],
        *,
        transport: httpx.BaseTransport | None = None,
        **options: Any,
    ) -> None:
        super().__init__(system_id, config, credentials, **options)
        settings = PowerOfficeSettings.of(config, system_id)
        self.base_url = str(settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.token_url = str(settings.token_url or derive_token_url(self.base_url))
        self.page_size = min(settings.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE - 100)
        # 0 or nothing: the API's own limit (PowerOffice GO refuses unpaced clients)
        rate = settings.rate_limit
        if rate is None or not rate.paced:
            rate = DEFAULT_RATE_LIMIT
        missing = [
            key
            for key in ("application_key", "client_key", "subscription_key")
            if not self.credentials.get(key)
        ]
        if missing:
            raise AuthError(
                system_id,
                f"credentials {', '.join(missing)} are not set",
                "set them under credentials: in the config (from environment variables)",
            )
        subscription_key = self.credentials["subscription_key"]
        key_digest = hashlib.sha256(subscription_key.encode()).hexdigest()[:16]
        # a tenth of a second of margin: the server counts arrivals, which jitter
        limiter = limiter_for(f"poweroffice-go/{rate}", key_digest, rate, margin=0.1)
        self.auth = PowerOfficeAuth(
            system_id,
            self.token_url,
            self.credentials["application_key"],
            self.credentials["client_key"],
            subscription_key,
            stats=self.stats,
            limiter=limiter,
            transport=transport,
        )
        self.http = HttpClient(
            system_id,
            self.base_url,
            auth=self.auth,
            headers={"Ocp-Apim-Subscription-Key": subscription_key, "Accept": "application/json"},
            limiter=limiter,
            stats=self.stats,
            transport=transport,
        )
        # Contact persons are addressed through their contact: /ContactPersons/{cid}/{id}.
        self._contact_of: dict[str, str] = {}
        self._contact_lock = threading.Lock()
        # types whose pages came out of order this run: read without the keyset
        self._unordered: set[str] = set()

    # -- schema -------------------------------------------------------------------
    @classmethod
    def describe(cls, config: SystemConfig) -> dict[str, EntityType]:
        types: dict[str, EntityType] = {}
        for name, api in API_TYPES.items():
            settings = PowerOfficeTypeSettings.of(config.entity_types.get(name), type_name=name)
            types[name] = entity_type(api, incremental=not settings.full_scan)
        return types

    def api_type(self, name: str) -> ApiType:
        if name not in API_TYPES:
            raise KeyError(f"system {self.system_id!r} has no entity type {name!r}")
        api = API_TYPES[name]
        path = PowerOfficeTypeSettings.of(self.config.entity_types.get(name), type_name=name).path
        if path:
            from dataclasses import replace

            api = replace(api, path="/" + str(path).strip("/"))
        return api

    # -- lifecycle ----------------------------------------------------------------
    def check(self) -> None:
        """The keys give a token, and the base URL answers (403: the integration lacks
        the Departments privilege, which this check does not need)."""
        self.auth.token()
        self.http.request(
            "GET",
            "/Departments",
            params={"PageSize": 1, "Fields": "Id"},
            ok=lambda r: r.status_code in (200, 204, 403),
        )

    def close(self) -> None:
        self.http.close()
        self.auth.close()

    # -- reading ------------------------------------------------------------------
    def read(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        api, etype = self.api_type(entity_type), self.entity_type(entity_type)
        fields = self._fields(api, etype)
        changes_only = (
            etype.incremental
            and api.change_filter
            and cursor is not None
            and not self._scans_addresses(api)
        )
        params: dict[str, Any] = {
            **api.list_params,
            "PageSize": self.page_size,
            "OrderBy": MODIFIED,
        }
        if fields:
            params["Fields"] = ",".join(fields)
        bound: datetime | None = None
        if changes_only and cursor:
            bound = _parse_time(cursor) - timedelta(seconds=self.overlap_seconds)
        newest = _parse_time(cursor) if cursor else None
        read = _Read(api, etype.incremental, params, bound, newest)
        if entity_type not in self._unordered:
            try:
                yield from self._read_by_keyset(read)
                return
            except _OrderNotHonoured as exc:
                self._unordered.add(entity_type)
                self.notice(
                    f"{self.system_id}: {entity_type}: {exc}; this run reads the type again "
                    "page by page without the keyset (no record is skipped, but the read "
                    "takes more calls)"
                )
        yield from self._read_by_offset(read)

    def _read_by_keyset(self, read: _Read) -> Iterator[Page]:
        """Pages ordered by ``LastChangedDateTimeOffset``, each next one starting at the last
        timestamp read.  The order is checked, not trusted: a page out of order, or a
        ``TotalCount`` that drops by more than the records read up to the new start, means
        rows would be skipped, and :class:`_OrderNotHonoured` is raised before any cursor
        that depends on the order is given out."""
        api, bound = read.api, read.bound
        page_number = 1
        repeated: set[str] = set()  # read at the end of the previous page
        stamps: list[datetime] = []  # of the records read since ``bound`` was set
        bound_total: int | None = None
        expected_drop: int | None = None  # how far TotalCount may fall at the new bound
        given: str | None = None  # the cursor of the previous page, once verified
        while True:
            # a page has room for the records it repeats from the previous one
            size = min(self.page_size + len(repeated), MAX_PAGE_SIZE)
            query = {**read.params, "PageSize": size, "PageNumber": page_number}
            if bound is not None:
                query[CHANGE_FILTER] = bound.isoformat()
            items, more, total = self._list_page(api, query)
            if more:  # the next page starts at this one's last record: it must be the newest
                _check_order(items, bound)
            if page_number == 1:
                if expected_drop is not None:
                    if total is None or bound_total is None:
                        raise _OrderNotHonoured("the answer has no X-Pagination TotalCount")
                    if bound_total - total > expected_drop:
                        raise _OrderNotHonoured(
                            f"{bound_total - total - expected_drop} record(s) fell between "
                            "two pages: OrderBy=LastChangedDateTimeOffset is not honoured"
                        )
                bound_total, stamps = total, []
            stamps.extend(stamp for item in items if (stamp := _own_time(item)) is not None)
            records = self._records(read, items, repeated)
            if not more:
                yield Page(records, read.cursor())
                return
            # The previous page's cursor holds now that this page met the checks.
            yield Page(records, given)
            given = read.cursor()
            # Keyset paging: the next page starts at the last timestamp read instead of at
            # an offset, so a record edited (it moves to the end) or deleted while we read
            # shifts no other record past a page boundary, unseen.
            last = _own_time(items[-1]) if items else None
            step = last - timedelta(microseconds=1) if last is not None else None
            if step is None or (bound is not None and step <= bound):
                page_number += 1  # a whole page shares one timestamp: go on by offset
                expected_drop = None
                continue
            repeated = {
                str(item.get("Id"))
                for item in items
                if (stamp := _own_time(item)) is not None and stamp > step
            }
            expected_drop = sum(1 for stamp in stamps if stamp <= step)
            bound, page_number = step, 1

    def _read_by_offset(self, read: _Read) -> Iterator[Page]:
        """The safe read when the order cannot be trusted: every page of the change filter
        by ``PageNumber``; the cursor moves only after the last page.  A record deleted
        while the pages are read shifts the later ones up by one, so a record would fall
        between two pages unseen (and a full scan take it as deleted): when ``TotalCount``
        changes during a pass, the type is read again, and after :data:`OFFSET_PASSES`
        such passes the read fails rather than hand over a read with a gap."""
        query = dict(read.params)
        if read.bound is not None:
            query[CHANGE_FILTER] = read.bound.isoformat()
        for _ in range(OFFSET_PASSES):
            page_number, totals = 1, set()
            while True:
                items, more, total = self._list_page(read.api, {**query, "PageNumber": page_number})
                totals.add(total)
                records = self._records(read, items, set())
                steady = len(totals) == 1
                if not more and steady:
                    yield Page(records, read.cursor())
                    return
                yield Page(records, None)
                if not more:
                    break  # records came or went during the pass: read it again
                page_number += 1
        raise TransientError(
            f"{self.system_id}: {read.api.name}: records kept being created or deleted while "
            f"the type was read page by page ({OFFSET_PASSES} passes), so a record could have "
            "fallen between two pages; nothing is taken as deleted and the cursor stays: run "
            "again later"
        )

    def _records(
        self, read: _Read, items: list[dict[str, Any]], skip: set[str]
    ) -> list[RecordData]:
        records: list[RecordData] = []
        with_lines = self._wants_lines(read.api)
        for item in items:
            if str(item.get("Id")) in skip:
                continue
            read.saw(_own_time(item))
            if not _belongs(read.api, item):
                continue
            if with_lines:
                item = self._complete_order(str(item["Id"])) or item
            records.append(self._record(read.api, item))
        self.stats.reads += len(records)
        return records

    def _list_page(
        self, api: ApiType, params: Mapping[str, Any]
    ) -> tuple[list[dict[str, Any]], bool, int | None]:
        """One page: its items, whether more follow, and the ``TotalCount`` when given."""
        response, body = self._call("GET", api.path, params=params)
        if body is None:
            return [], False, 0 if response.status_code == 204 else None
        if not isinstance(body, list):
            raise ContractError(self.system_id, f"GET {api.path} did not answer a JSON array")
        paging = _pagination(response)
        total: int | None = None
        if paging is None:
            more = len(body) >= int(params.get("PageSize", self.page_size))
        else:
            more = bool(paging.get("nextpagelink"))
            raw_total = paging.get("totalcount")
            if isinstance(raw_total, int) and not isinstance(raw_total, bool):
                total = raw_total
        return body, more, total

    def get(self, entity_type: str, record_id: str) -> RecordData | None:
        api = self.api_type(entity_type)
        try:
            if self._wants_lines(api):
                item = self._complete_order(record_id)
            else:
                item = self._call("GET", self._item_path(api, record_id))[1]
        except NotFound:
            return None
        if not isinstance(item, dict) or not _belongs(api, item):
            return None
        return self._record(api, item)

    def find_by_external_ref(self, entity_type: str, external_ref: str) -> RecordData | None:
        api = self.api_type(entity_type)
        field = api.external_ref_field
        if field is None:
            return None
        stamp = external_value(api, external_ref)
        params: dict[str, Any] = {**api.list_params, "PageSize": self.page_size}
        if api.external_filter:
            params[api.external_filter] = stamp
            pages = [self._list_page(api, {**params, "PageNumber": 1})[0]]
        else:
            # No filter on this path (Projects.ExternalNumber, sales orders): scan the ids
            # and references only.
            params["Fields"] = ",".join(dict.fromkeys((*api.always, field)))
            if api.name == "Salesorders":
                params["onlyCreatedByCurrentIntegration"] = "true"
            pages = list(self._scan(api, params))
        for items in pages:
            for item in items:
                if item.get(field) == stamp and _belongs(api, item):
                    if api.external_filter:
                        return self._record(api, item)
                    return self.get(entity_type, str(item["Id"]))
        return None

    def _scan(self, api: ApiType, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        page_number = 1
        while True:
            items, more, _ = self._list_page(api, {**params, "PageNumber": page_number})
            yield items
            if not more:
                return
            page_number += 1

    # -- writing ------------------------------------------------------------------
    def create(
        self, entity_type: str, values: dict[str, Any], external_ref: str | None = None
    ) -> RecordData:
        api, etype = self.api_type(entity_type), self.entity_type(entity_type)
        body: dict[str, Any] = {}
        for path, value in values.items():
            path = etype.canonical(path)
            prop = etype.properties.get(path)
            if path == "Id" or (prop is not None and prop.read_only and path != "ContactId"):
                continue
            set_path(body, path, _wire(value, prop))
        body.update(api.fixed)
        if external_ref and api.external_ref_field:
            body[api.external_ref_field] = external_value(api, external_ref)
        path = api.create_path or api.path
        if api.name == "Contactperson":
            contact_id = body.pop("ContactId", None)
            if contact_id in (None, ""):
                raise RecordError(
                    "a Contactperson needs ContactId (the customer or supplier it belongs to)"
                )
            path = f"{api.path}/{contact_id}"
        item = self._call(
            "POST", path, content=dumps(body), headers={"Content-Type": "application/json"}
        )[1]
        if not isinstance(item, dict) or "Id" not in item:
            raise ContractError(self.system_id, f"POST {path} did not answer the new record")
        self.stats.writes += 1
        return self._record(api, item)

    checks_expected = True

    def update(
        self,
        entity_type: str,
        record_id: str,
        changes: dict[str, Any],
        expected: dict[str, Any] | None = None,
    ) -> RecordData | None:
        """A JSON Patch of the changed properties.  With ``expected``, ``test`` operations
        come first, so PowerOffice GO applies nothing when a value was edited since it was
        read; that refusal is told from others by reading the record.  What a ``test``
        cannot compare is left to the engine (:meth:`unchecked`)."""
        api, etype = self.api_type(entity_type), self.entity_type(entity_type)
        operations: list[dict[str, Any]] = []
        tests: dict[str, Any] = {}
        lines: list[Any] | None = None
        for original, value in changes.items():
            path = etype.canonical(original)
            prop = etype.properties.get(path)
            if path == "ContactId" and api.name == "Contactperson":
                self._check_same_contact(api, record_id, value)
                continue
            if path == "Id" or (prop is not None and prop.read_only):
                continue
            if api.name == "Salesorders" and path == "SalesOrderLines":
                lines = list(value or [])
                continue
            # A nested path adds into the parent object; a top-level one replaces.
            op = "add" if "." in path else "replace"
            operations.append({"op": op, "path": json_pointer(path), "value": _wire(value, prop)})
            was = (expected or {}).get(original)
            if _testable(path, was, prop):
                tests[path] = _wire(was, prop)
        result: RecordData | None = None
        if operations:
            target = self._item_path(api, record_id)
            checks = [
                {"op": "test", "path": json_pointer(path), "value": value}
                for path, value in tests.items()
            ]
            try:
                item = self._call(
                    "PATCH",
                    target,
                    content=dumps(checks + operations),
                    headers={"Content-Type": PATCH_TYPE},
                    idempotent=True,
                )[1]
            except RecordError:
                if tests and self._edited_since(api, target, tests):
                    raise Stale(
                        f"{self.system_id}: {entity_type} {record_id} was edited after it was read"
                    ) from None
                raise
            self.stats.writes += 1
            if isinstance(item, dict) and "Id" in item:
                result = self._record(api, item)
        if lines is not None:
            self._replace_lines(record_id, lines)
            result = None
        return result

    def unchecked(self, entity_type: str, expected: dict[str, Any]) -> list[str]:
        """What a JSON Patch ``test`` cannot compare: nested paths, dates, decimals, a value
        that was empty (the engine reads the record before the patch for those)."""
        etype = self.entity_type(entity_type)
        left = []
        for original, was in expected.items():
            path = etype.canonical(original)
            if not _testable(path, was, etype.properties.get(path)):
                left.append(original)
        return left

    def _edited_since(self, api: ApiType, target: str, tests: dict[str, Any]) -> bool:
        """Whether the record now holds other values than ``tests`` expects."""
        item = self._call("GET", target)[1]
        if not isinstance(item, dict):
            return False
        return any(item.get(path) != value for path, value in tests.items())

    def delete(self, entity_type: str, record_id: str) -> None:
        api = self.api_type(entity_type)
        path = self._item_path(api, record_id)
        try:
            self.http.request("DELETE", path)
        except NotFound:
            raise
        except RecordError as exc:
            if exc.details.get("status") == 409:
                raise InUse(
                    f"{self.system_id}: {entity_type} {record_id} is in use and cannot be "
                    f"deleted ({exc.reason})",
                    details=exc.details,
                ) from None
            raise
        self.stats.writes += 1

    # -- sales order lines -----------------------------------------------------------
    def _wants_lines(self, api: ApiType) -> bool:
        if api.name != "Salesorders":
            return False
        wanted = self.wanted_fields.get(api.name)
        return bool(wanted) and any(p.split(".")[0] == "SalesOrderLines" for p in wanted or ())

    def _complete_order(self, order_id: str) -> dict[str, Any] | None:
        item = self._call("GET", f"/SalesOrders/{order_id}/Complete")[1]
        return item if isinstance(item, dict) else None

    def _replace_lines(self, order_id: str, lines: list[Any]) -> None:
        """Make the order's lines ``lines``: delete the old ones, post the new ones."""
        base = f"/SalesOrders/{order_id}/Lines"
        old = self._call("GET", base)[1]
        for line in old or []:
            self.http.request("DELETE", f"{base}/{line['Id']}")
        for line in lines:
            body = {k: _line_value(k, v) for k, v in dict(line).items() if k not in _LINE_READ_ONLY}
            self.http.request(
                "POST", base, content=dumps(body), headers={"Content-Type": "application/json"}
            )
        self.stats.writes += 1

    # -- helpers ------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> tuple[httpx.Response, Any]:
        """One call and its JSON body (None when empty).  A body cut off or not JSON is
        asked for again when that is safe (GET, PATCH); after a POST it raises
        :class:`TransientError`: the record may exist, and the engine looks it up by its
        external reference instead of creating it twice."""
        attempts = JSON_ATTEMPTS if method in ("GET", "PATCH") else 1
        for attempt in range(1, attempts + 1):
            response = self.http.request(
                method,
                path,
                params=params,
                content=content,
                headers=headers,
                idempotent=idempotent,
            )
            if response.status_code == 204 or not response.content:
                return response, None
            try:
                return response, exactjson.loads(response.content, decimal=str)
            except orjson.JSONDecodeError:
                self.stats.retries += 1
                if attempt == attempts:
                    break
        raise TransientError(
            f"{self.system_id}: {method} {path}: the answer was cut off or is not JSON "
            f"({attempts} tries)"
        )

    def _fields(self, api: ApiType, etype: EntityType) -> list[str]:
        """The top-level ``Fields`` to ask for: what the dataflows map, plus what the
        connector itself needs; every declared property when the engine said nothing."""
        wanted = self.wanted_fields.get(api.name)
        declared = {p.split(".")[0] for p in etype.properties}
        declared.discard("SalesOrderLines")
        if not wanted:
            names = sorted(declared)
        else:
            names = sorted(
                {etype.canonical(p).split(".")[0] for p in wanted} & declared
                | ({api.external_ref_field} if api.external_ref_field else set())
            )
        return list(dict.fromkeys((*api.always, *names)))

    def _scans_addresses(self, api: ApiType) -> bool:
        if not api.has_address:
            return False
        wanted = self.wanted_fields.get(api.name)
        if not wanted:
            return True
        return any(p.lower().startswith("mailaddress") for p in wanted)

    def _record(self, api: ApiType, item: dict[str, Any]) -> RecordData:
        record_id = str(item.get("Id"))
        if api.name == "Contactperson" and item.get("ContactId") is not None:
            with self._contact_lock:
                self._contact_of[record_id] = str(item["ContactId"])
        return RecordData(record_id, item, _record_time(item))

    def _item_path(self, api: ApiType, record_id: str) -> str:
        if api.name == "Contactperson":
            return f"{api.path}/{self._contact_id(api, record_id)}/{record_id}"
        return f"{api.path}/{record_id}"

    def _check_same_contact(self, api: ApiType, record_id: str, value: Any) -> None:
        """A contact person cannot move to another customer or supplier: the API has no
        way to change ``ContactId`` after the create."""
        current = self._contact_id(api, record_id)
        if value is not None and str(value) != current:
            raise RecordError(
                f"Contactperson {record_id} belongs to contact {current}; PowerOffice GO "
                f"cannot move it to {value} (create a new contact person there instead)"
            )

    def _contact_id(self, api: ApiType, record_id: str) -> str:
        with self._contact_lock:
            known = self._contact_of.get(record_id)
        if known is not None:
            return known
        # Not read by this process yet: scan the ids of every contact person once.
        params = {**api.list_params, "PageSize": self.page_size, "Fields": "Id,ContactId"}
        for items in self._scan(api, params):
            with self._contact_lock:
                for item in items:
                    if item.get("ContactId") is not None:
                        self._contact_of[str(item["Id"])] = str(item["ContactId"])
        with self._contact_lock:
            if record_id in self._contact_of:
                return self._contact_of[record_id]
        raise NotFound(f"{self.system_id}: Contactperson {record_id} does not exist")


_LINE_READ_ONLY = {
    "Id",
    "SalesOrderId",
    "NetAmount",
    "TotalAmount",
    "VatAmount",
    "VatCode",
    "VatId",
    "VatRate",
    "ProductCode",
    "DepartmentCode",
    "ProjectCode",
    "LocationCode",
    "Dim1Code",
    "Dim2Code",
    "Dim3Code",
    "SellersReferenceEmployeeNo",
}


def derive_token_url(base_url: str) -> str:
    """``https://host/v2`` → ``https://host/OAuth/Token``; the demo's ``/Demo/v2`` likewise."""
    base = base_url.rstrip("/")
    if base.lower().endswith("/v2"):
        base = base[: -len("/v2")]
    return f"{base}/OAuth/Token"


def external_value(api: ApiType, external_ref: str) -> Any:
    """What is stamped into the type's external-reference field for ``external_ref``.

    Text fields hold at most 50 characters: a longer ref becomes ``sb:`` + a digest.
    ``ExternalNumber`` is an int64: a numeric ref is kept, any other becomes a stable
    60-bit number derived from it.
    """
    digest = hashlib.sha256(external_ref.encode()).hexdigest()
    if api.external_ref_field == "ExternalNumber":
        if external_ref.isdigit() and len(external_ref) <= 18:
            return int(external_ref)
        return int(digest[:15], 16)
    if len(external_ref) <= EXTERNAL_TEXT_MAX:
        return external_ref
    return f"sb:{digest[:40]}"


def json_pointer(path: str) -> str:
    """``MailAddress.City`` → ``/MailAddress/City`` (RFC 6901 escaping)."""
    return "/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in path.split("."))


def _wire(value: Any, prop: Property | None = None) -> Any:
    """A canonical value as the API takes it: int64 ids as numbers, lines as objects."""
    if isinstance(value, list):
        return [
            {k: _line_value(k, v) for k, v in item.items()} if isinstance(item, dict) else item
            for item in value
        ]
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if prop is not None and prop.type is DataType.REFERENCE and isinstance(value, str | int):
        # int64 ids go out as numbers; the engine hands them over as str or int
        text = str(value)
        return int(text) if text.lstrip("-").isdigit() else text
    if prop is not None and prop.type is not None and value is not None:
        try:
            value = coerce(value, prop.type)
        except ConversionError as exc:
            raise RecordError(f"{prop.name}: {exc}") from None
    return to_wire(value)


def _line_value(key: str, value: Any) -> Any:
    if key.endswith("Id") and isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, dict | list):
        return _wire(value)
    return to_wire(value)


def _belongs(api: ApiType, item: Mapping[str, Any]) -> bool:
    return all(item.get(key) == value for key, value in api.only.items())


def _pagination(response: httpx.Response) -> dict[str, Any] | None:
    raw = response.headers.get("X-Pagination")
    if not raw:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    return {str(k).lower(): v for k, v in value.items()}


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _own_time(item: Mapping[str, Any]) -> datetime | None:
    """The record's own ``LastChangedDateTimeOffset`` (what the change filter compares)."""
    stamp = item.get(MODIFIED)
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return _parse_time(stamp)
    except ValueError:
        return None


_EXACT_TYPES = (DataType.STRING, DataType.INTEGER, DataType.BOOLEAN, DataType.REFERENCE)


def _testable(path: str, was: Any, prop: Property | None) -> bool:
    """Whether a JSON Patch ``test`` of the property compares what it means: a top-level
    property whose value was present, of a type whose JSON has one form (not dates, not
    decimals)."""
    return "." not in path and was is not None and prop is not None and prop.type in _EXACT_TYPES


def _record_time(item: Mapping[str, Any]) -> datetime | None:
    """When the record last changed: its own timestamp or its address's, the later."""
    stamps = [item.get(MODIFIED), get_path(item, f"MailAddress.{MODIFIED}")]
    parsed = []
    for stamp in stamps:
        if isinstance(stamp, str) and stamp:
            try:
                parsed.append(_parse_time(stamp))
            except ValueError:
                continue
    return max(parsed) if parsed else None


# passes of the page-by-page read before it gives up (see _read_by_offset)
OFFSET_PASSES = 3


class _OrderNotHonoured(Exception):
    """The answer shows that keyset paging would skip records (why, in the message)."""


class _Read:
    """One read of a type: what every page asks, and the newest timestamp seen."""

    def __init__(
        self,
        api: ApiType,
        incremental: bool,
        params: dict[str, Any],
        bound: datetime | None,
        newest: datetime | None,
    ) -> None:
        self.api, self.incremental, self.params = api, incremental, params
        self.bound, self.newest = bound, newest

    def saw(self, stamp: datetime | None) -> None:
        if stamp is not None and (self.newest is None or stamp > self.newest):
            self.newest = stamp

    def cursor(self) -> str | None:
        return self.newest.isoformat() if self.incremental and self.newest else None


def _check_order(items: list[dict[str, Any]], bound: datetime | None) -> None:
    """Raise :class:`_OrderNotHonoured` unless the page is in timestamp order and after
    ``bound``."""
    previous: datetime | None = None
    for item in items:
        stamp = _own_time(item)
        if stamp is None:
            continue
        if bound is not None and stamp <= bound:
            raise _OrderNotHonoured(
                f"a page held a record changed at {stamp.isoformat()}, not after the "
                f"change filter's {bound.isoformat()}"
            )
        if previous is not None and stamp < previous:
            raise _OrderNotHonoured(
                "a page came out of LastChangedDateTimeOffset order: OrderBy is not honoured"
            )
        previous = stamp
