"""Exact Online connector (``kind: exact-online``).

* OAuth2 authorization code (``samband auth exact-online -c FILE SYSTEM``), rotating
  refresh tokens stored encrypted before use, never a token request within 570 s of the
  last (:mod:`samband.connectors._oauth`).
* The division from the ``division`` setting, else ``current/Me`` → ``CurrentDivision``.
* Reads through the Sync API (``Timestamp gt N``, 1000 per page, the cursor is the highest
  ``Timestamp`` seen) plus ``sync/Deleted`` for deletions; types without a Sync API
  (Departments, Divisions) through ``Modified ge datetime'…'`` (or full scans with
  ``full_scan: true``).  ``$select`` asks only for the fields the dataflows use;
  ``__next`` links are followed one page after another.
* ``/Date(ms)/`` values are vendor wall-clock time (CET/CEST): see
  :mod:`samband.kinds.exact_online.connector._dates`.  Account codes are sent right-aligned in 18
  characters and read back trimmed.
* Pacing from the rate-limit headers, QuotaExhausted when the daily budget is spent, and
  a breaker before Exact's 10-errors-an-hour block (``connector/_limits.py``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

import httpx

from samband.config.model import Config, SystemConfig
from samband.connectors._http import HttpClient, retry_after_seconds
from samband.connectors._oauth import (
    OAuthAuth,
    OAuthTokens,
    browser_login,
    login_context,
    state_folder,
)
from samband.connectors._trace import event_hooks
from samband.connectors.base import Connector, EntityType, Page, RecordData
from samband.errors import (
    AuthError,
    ContractError,
    InUse,
    NotFound,
    RecordError,
)
from samband.kinds.exact_online.connector._dates import parse_ms_date, to_vendor_wall, wire_to_iso
from samband.kinds.exact_online.connector._limits import ErrorBreaker, ExactPacer
from samband.kinds.exact_online.connector._schema import (
    TYPES,
    ExactType,
    entity_type,
    external_ref_problem,
    selectable,
    sync_selectable,
)
from samband.kinds.exact_online.fields import FIELDS
from samband.kinds.exact_online.filters import filterable, has_mandatory_filter
from samband.kinds.exact_online.settings import ExactOnlineSettings, ExactOnlineTypeSettings
from samband.secrets import TokenStore

DEFAULT_BASE_URL = "https://start.exactonline.nl"
SYNC_START = 1
TOKEN_MIN_INTERVAL = 570.0


@dataclass
class _RefIndex:
    """External refs of one type found through its Sync API in this run (for a ref
    field that mandatory filtering does not let ``$filter`` name)."""

    records: dict[str, RecordData] = field(default_factory=dict)
    top: int = SYNC_START  # the highest Timestamp a lookup scan has read
    scanned: bool = False  # a lookup has scanned the whole type once


class ClockLike(Protocol):
    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class _WallClock:
    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(seconds, 0.0))


def _credential(system_id: str, credentials: Mapping[str, str], name: str) -> str:
    value = credentials.get(name)
    if not value:
        raise AuthError(
            system_id,
            f"the credential {name!r} is missing",
            f"add `{name}: ${{ENV_VAR}}` under credentials and set the variable",
        )
    return value


def describe_error(response: httpx.Response) -> str:
    """The message of Exact's ``{"error": {"code", "message": {"value"}}}`` body."""
    try:
        body = response.json()
    except ValueError:
        text = response.text[:120].replace("\n", " ").strip()
        return text or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message")
            if isinstance(message, dict):
                message = message.get("value")
            code = error.get("code")
            text = str(message or "").strip() or response.reason_phrase
            return f"{text} (code {code})" if code else text
        if isinstance(error, str):
            return ": ".join(str(body[k]) for k in ("error", "error_description") if body.get(k))
    return response.reason_phrase


def _odata_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class ExactOnlineConnector(Connector):
    kind: ClassVar[str] = "exact-online"

    def __init__(
        self,
        system_id: str,
        config: SystemConfig,
        credentials: Mapping[str, str],
        *,
        state_dir: str | None = None,
        overlap_seconds: float = 5.0,
        clock: ClockLike | None = None,
        http_transport: httpx.BaseTransport | None = None,
    ) -> None:
        settings = ExactOnlineSettings.of(config, system_id)
        super().__init__(
            system_id,
            config,
            credentials,
            state_dir=state_dir or state_folder(settings.base_dir),
            overlap_seconds=overlap_seconds,
        )
        self.base_url = str(settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.clock: ClockLike = clock or _WallClock()
        self._division: int | None = (
            int(settings.division) if settings.division not in (None, "") else None
        )
        self.page_size = settings.page_size
        self.pacer = ExactPacer(system_id, clock=self.clock.time, sleep=self.clock.sleep)
        self.breaker = ErrorBreaker(
            system_id,
            clock=self.clock.time,
            limit=settings.max_errors_per_hour,
        )
        self._transport = http_transport
        self._tokens: OAuthTokens | None = None
        self._http: HttpClient | None = None
        self._ref_index: dict[str, _RefIndex] = {}
        for name, spec in TYPES.items():
            ref_field = ExactOnlineTypeSettings.of(
                config.entity_types.get(name), system_id, type_name=name
            ).external_ref_field
            problem = external_ref_problem(spec, ref_field) if ref_field else None
            if problem is not None and not spec.read_only:
                raise ContractError(system_id, *problem)

    # -- schema -------------------------------------------------------------------------
    @classmethod
    def describe(cls, config: SystemConfig) -> dict[str, EntityType]:
        return {
            name: entity_type(
                spec, ExactOnlineTypeSettings.of(config.entity_types.get(name), type_name=name)
            )
            for name, spec in TYPES.items()
        }

    # -- plumbing -----------------------------------------------------------------------
    def _token_source(self) -> OAuthTokens:
        if self._tokens is None:
            self._tokens = OAuthTokens(
                self.system_id,
                token_url=f"{self.base_url}/api/oauth2/token",
                client_id=_credential(self.system_id, self.credentials, "client_id"),
                client_secret=_credential(self.system_id, self.credentials, "client_secret"),
                store=TokenStore(self.system_id, str(self.state_dir)),
                http=httpx.Client(
                    timeout=30.0, transport=self._transport, event_hooks=event_hooks()
                )
                if self._transport
                else None,
                min_interval=TOKEN_MIN_INTERVAL,
                refresh_skew=30.0,
                clock=self.clock.time,
                expires_in_default=600.0,
                kind=self.kind,
                sleep=self.clock.sleep,
            )
        return self._tokens

    @property
    def http(self) -> HttpClient:
        if self._http is None:
            self._http = HttpClient(
                self.system_id,
                f"{self.base_url}/api/v1",
                auth=OAuthAuth(self._token_source()),
                headers={"Accept": "application/json"},
                limiter=self.pacer,
                stats=self.stats,
                retry_after=self._retry_after,
                describe_error=describe_error,
                sleep=self.clock.sleep,
                transport=self._transport,
            )
        return self._http

    def _retry_after(self, response: httpx.Response) -> float | None:
        """A 429 waits for the reset its headers name; anything else honours Retry-After
        or backs off."""
        limits = ("X-RateLimit-Minutely-Reset", "X-RateLimit-Reset")
        if response.status_code == 429 and any(name in response.headers for name in limits):
            return self.pacer.retry_after(response.headers)
        return retry_after_seconds(response)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        if self._tokens is not None:
            self._tokens.close()

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One API call through the breaker and the pacer."""
        endpoint = _endpoint(url)
        self.breaker.check(endpoint)
        try:
            response = self.http.request(method, url, **kwargs)
        except NotFound as exc:
            self.breaker.record(endpoint, exc.reason)
            raise
        except RecordError as exc:
            self.breaker.record(endpoint, exc.reason)
            # A DELETE sends no fields, so a refusal of it that is not a 404 means the
            # record cannot go (it is in use).  Decided by the status, never by the text:
            # Exact words its messages in the user's language.
            if method == "DELETE" and exc.details.get("status") in (400, 409):
                raise InUse(exc.reason, details=exc.details) from None
            raise
        except AuthError as exc:
            self.breaker.record(endpoint, str(exc))
            raise
        self.pacer.observe(response.headers)
        return response

    def _get(self, url: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        response = self._call("GET", url, params=params)
        body = self.http.json(response, "GET", url)
        if not isinstance(body, dict) or not isinstance(body.get("d"), dict | list):
            raise ContractError(self.system_id, f"GET {_endpoint(url)}: no 'd' in the answer")
        data: dict[str, Any] = body["d"] if isinstance(body["d"], dict) else {"results": body["d"]}
        return data

    @property
    def division(self) -> int:
        if self._division is None:
            data = self._get("current/Me", {"$select": "CurrentDivision"})
            results = data.get("results") or [data]
            try:
                self._division = int(results[0]["CurrentDivision"])
            except (KeyError, IndexError, TypeError, ValueError):
                raise ContractError(self.system_id, "current/Me gave no CurrentDivision") from None
        return self._division

    def check(self) -> None:
        _ = self.division

    def _spec(self, entity_type: str) -> tuple[ExactType, EntityType]:
        if entity_type not in TYPES:
            raise KeyError(f"system {self.system_id!r} has no entity type {entity_type!r}")
        return TYPES[entity_type], self.entity_type(entity_type)

    def _select(self, spec: ExactType, etype: EntityType, sync: bool = False) -> list[str]:
        """The ``$select`` of a read: of the CRUD endpoint, or (``sync``) of the type's
        Sync API endpoint, which serves fewer fields (a field it lacks is a 400)."""
        allowed = sync_selectable(spec) if sync else selectable(spec.resource)
        wanted = {path.split(".", 1)[0] for path in self.wanted_fields.get(spec.name, set())}
        if not wanted:
            return allowed
        wanted |= {spec.key}
        for extra in (etype.modified_field, etype.external_ref_field):
            if extra:
                wanted.add(extra)
        return [name for name in allowed if name in wanted]

    # -- records ------------------------------------------------------------------------
    def _record(self, spec: ExactType, raw: dict[str, Any]) -> RecordData:
        data: dict[str, Any] = {}
        for name, value in raw.items():
            if name in ("__metadata", "Timestamp"):
                continue
            if isinstance(value, dict) and "__deferred" in value:
                continue
            if isinstance(value, dict) and isinstance(value.get("results"), list):
                # an expanded collection (the lines of a created sales order)
                value = [
                    self._record(TYPES["SalesOrderLines"], line).data for line in value["results"]
                ]
            if isinstance(value, str):
                value = wire_to_iso(value)
                if spec.name == "Accounts" and name == "Code":
                    value = value.strip()
            data[name] = value
        if spec.key not in raw or raw[spec.key] in (None, ""):
            raise ContractError(self.system_id, f"a {spec.name} record without {spec.key}")
        modified = raw.get("Modified")
        moment = parse_ms_date(modified) if isinstance(modified, str) else None
        return RecordData(
            str(raw[spec.key]).lower(),
            data,
            moment.astimezone(UTC) if moment else None,
        )

    def _pages(
        self, url: str, params: dict[str, str] | None
    ) -> Iterator[tuple[list[dict[str, Any]], bool]]:
        """Each page's raw results (and whether it is the last), following ``__next``."""
        next_url: str | None = url
        while next_url:
            data = self._get(next_url, params)
            params = None  # __next carries every query option
            results = data.get("results")
            if not isinstance(results, list):
                raise ContractError(self.system_id, f"GET {_endpoint(url)}: no results list")
            next_url = data.get("__next") or None
            yield results, next_url is None

    def read(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        spec, etype = self._spec(entity_type)
        if spec.sync is not None and etype.incremental:
            yield from self._read_sync(spec, etype, cursor)
        else:
            yield from self._read_modified(spec, etype, cursor if etype.incremental else None)

    def _read_sync(self, spec: ExactType, etype: EntityType, cursor: str | None) -> Iterator[Page]:
        state = _parse_cursor(cursor)
        since, deleted_since = state.get("t", SYNC_START), state.get("d", SYNC_START)
        fields = [*self._select(spec, etype, sync=True), "Timestamp"]
        url = f"{self.division}/{spec.sync}"
        params = {"$select": ",".join(fields), "$filter": f"Timestamp gt {since}"}
        index = self._ref_index.setdefault(spec.name, _RefIndex())
        ref_field = etype.external_ref_field if self._refs_through_sync(spec, etype) else None
        for results, _last in self._pages(url, params):
            for raw in results:
                since = max(since, int(raw.get("Timestamp") or 0))
            self.stats.reads += len(results)
            records = [self._record(spec, raw) for raw in results]
            if ref_field:
                _index_refs(index, records, ref_field)
            yield Page(records, json.dumps({"t": since, "d": deleted_since}))
        if spec.deleted_type is None:  # a Sync API without a deletion feed
            return
        top, rows = self._read_deletions(spec.deleted_type, deleted_since)
        records = []
        for raw in rows:
            when = raw.get("DeletedDate")
            moment = parse_ms_date(when) if isinstance(when, str) else None
            records.append(
                RecordData(
                    str(raw.get("EntityKey") or "").lower(),
                    {},
                    moment.astimezone(UTC) if moment else None,
                    deleted=True,
                )
            )
        # every deletion of this type up to the highest Timestamp read has been read
        yield Page(records, json.dumps({"t": since, "d": max(deleted_since, top)}))

    def _read_deletions(self, number: int, since: int) -> tuple[int, list[dict[str, Any]]]:
        """The ``sync/Deleted`` rows of one entity type (``number``) after ``since``, and
        the highest ``Timestamp`` read.  One call (and its pages) per type: Exact answers
        one ``EntityType eq N`` per filter, as the public clients ask it; a filter joining
        several types with ``or`` is refused (400, counted toward the error block)."""
        params = {
            "$select": "EntityKey,EntityType,Timestamp,DeletedDate",
            "$filter": f"Timestamp gt {since} and EntityType eq {number}",
        }
        top, rows = since, []
        for results, _last in self._pages(f"{self.division}/sync/Deleted", params):
            for raw in results:
                top = max(top, int(raw.get("Timestamp") or 0))
                if int(raw.get("EntityType") or 0) == number:
                    rows.append(raw)
        return top, rows

    def _read_modified(
        self, spec: ExactType, etype: EntityType, cursor: str | None
    ) -> Iterator[Page]:
        params = {"$select": ",".join(self._select(spec, etype))}
        since: datetime | None = None
        if cursor and filterable(spec.resource, "Modified"):
            since = datetime.fromisoformat(cursor)
            start = since - timedelta(seconds=self.overlap_seconds)
            params["$filter"] = f"Modified ge datetime'{to_vendor_wall(start)}'"
        elif has_mandatory_filter(spec.resource):
            # mandatory filtering: a full read still names an allowed field (the key)
            params["$filter"] = f"{spec.key} ne null"
        newest = since
        for results, _last in self._pages(f"{self.division}/{spec.resource}", params):
            records = [self._record(spec, raw) for raw in results]
            for record in records:
                if record.modified and (newest is None or record.modified > newest):
                    newest = record.modified
            self.stats.reads += len(records)
            yield Page(
                records,
                newest.isoformat() if newest and etype.incremental else None,
            )

    def _find(self, spec: ExactType, etype: EntityType, condition: str) -> RecordData | None:
        params = {
            "$select": ",".join(self._select(spec, etype)),
            "$filter": condition,
            "$top": "1",
        }
        data = self._get(f"{self.division}/{spec.resource}", params)
        results = data.get("results") or []
        return self._record(spec, results[0]) if results else None

    def get(self, entity_type: str, record_id: str) -> RecordData | None:
        spec, etype = self._spec(entity_type)
        return self._find(spec, etype, f"{spec.key} eq {_key_literal(spec, record_id)}")

    def find_by_external_ref(self, entity_type: str, external_ref: str) -> RecordData | None:
        spec, etype = self._spec(entity_type)
        if etype.external_ref_field is None:
            return None
        field = etype.external_ref_field
        if self._refs_through_sync(spec, etype):
            return self._find_ref_through_sync(spec, etype, field, external_ref)
        params = {
            "$select": ",".join(self._select(spec, etype)),
            "$filter": f"{field} eq {_odata_string(external_ref)}",
            "$top": "10",
        }
        data = self._get(f"{self.division}/{spec.resource}", params)
        # compared here, exactly: Exact Online's database compares text without regard to
        # case, so the ref of another record that differs only in case matches too
        for item in data.get("results") or []:
            if isinstance(item, dict) and item.get(field) == external_ref:
                return self._record(spec, item)
        return None

    @staticmethod
    def _refs_through_sync(spec: ExactType, etype: EntityType) -> bool:
        """Whether the type's external refs are found through its Sync API: mandatory
        filtering refuses a ``$filter`` on the ref field (validate has made sure the Sync
        API serves it)."""
        field_name = etype.external_ref_field
        return (
            field_name is not None
            and spec.sync is not None
            and not filterable(spec.resource, field_name)
        )

    def _find_ref_through_sync(
        self, spec: ExactType, etype: EntityType, field_name: str, external_ref: str
    ) -> RecordData | None:
        """An interrupted create found by its ref without a refused ``$filter``: among the
        records this run's Sync API read saw, else by reading the type's Sync API (the
        whole of it once a run, later only what is newer)."""
        index = self._ref_index.setdefault(spec.name, _RefIndex())
        if external_ref in index.records:
            return index.records[external_ref]
        start = index.top if index.scanned else SYNC_START
        fields = [*self._select(spec, etype, sync=True), "Timestamp"]
        params = {"$select": ",".join(fields), "$filter": f"Timestamp gt {start}"}
        for results, _last in self._pages(f"{self.division}/{spec.sync}", params):
            for raw in results:
                index.top = max(index.top, int(raw.get("Timestamp") or 0))
            _index_refs(index, [self._record(spec, raw) for raw in results], field_name)
        index.scanned = True
        return index.records.get(external_ref)

    # -- writing ------------------------------------------------------------------------
    def _body(self, spec: ExactType, etype: EntityType, values: Mapping[str, Any]) -> dict:
        body: dict[str, Any] = {}
        fields = FIELDS[spec.resource]
        for path, value in values.items():
            name = etype.canonical(path)
            if name == "SalesOrderLines" and spec.name == "SalesOrders":
                body[name] = [self._line(line) for line in value or []]
                continue
            if name not in fields:
                raise RecordError(f"{spec.name} has no property {path!r} in Exact Online")
            if fields[name][1]:
                raise RecordError(f"{spec.name}.{name} is read-only in Exact Online")
            body[name] = _to_exact(name, value, spec)
        return body

    def _line(self, line: Any) -> dict[str, Any]:
        if not isinstance(line, Mapping):
            raise RecordError("each of SalesOrderLines must be an object of line fields")
        lines = TYPES["SalesOrderLines"]
        return {str(k): _to_exact(str(k), v, lines) for k, v in line.items()}

    def _writable(self, entity_type: str) -> tuple[ExactType, EntityType]:
        spec, etype = self._spec(entity_type)
        if etype.read_only:
            raise RecordError(f"{entity_type} is read-only in Exact Online")
        return spec, etype

    def create(
        self, entity_type: str, values: dict[str, Any], external_ref: str | None = None
    ) -> RecordData:
        spec, etype = self._writable(entity_type)
        body = self._body(spec, etype, {k: v for k, v in values.items() if k != spec.key})
        if external_ref and etype.external_ref_field:
            body[etype.external_ref_field] = external_ref
        url = f"{self.division}/{spec.resource}"
        response = self._call(
            "POST",
            url,
            json=body,
            headers={"Prefer": "return=representation", "Content-Type": "application/json"},
        )
        self.stats.writes += 1
        payload = self.http.json(response, "POST", url)
        if not isinstance(payload, dict) or not isinstance(payload.get("d"), dict):
            raise ContractError(self.system_id, f"POST {spec.resource}: no record in the answer")
        return self._record(spec, payload["d"])

    def update(
        self, entity_type: str, record_id: str, changes: dict[str, Any]
    ) -> RecordData | None:
        spec, etype = self._writable(entity_type)
        body = self._body(spec, etype, changes)
        if not body:
            return None
        url = f"{self.division}/{spec.resource}({_key_literal(spec, record_id)})"
        self._call("PUT", url, json=body, headers={"Content-Type": "application/json"})
        self.stats.writes += 1
        return None

    def delete(self, entity_type: str, record_id: str) -> None:
        spec, _ = self._writable(entity_type)
        url = f"{self.division}/{spec.resource}({_key_literal(spec, record_id)})"
        self._call("DELETE", url)
        self.stats.writes += 1

    # -- webhooks -----------------------------------------------------------------------
    def webhook_subscriptions(self) -> list[dict[str, Any]]:
        """This app's webhook subscriptions in the division (ID, CallbackURL, Topic)."""
        url = f"{self.division}/webhooks/WebhookSubscriptions"
        data = self._get(url, {"$select": "ID,CallbackURL,Topic"})
        return [dict(row) for row in data.get("results") or []]

    def subscribe_webhooks(self, callback_url: str, topics: list[str]) -> list[str]:
        """Subscribe ``callback_url`` to each topic it is not subscribed to yet; Exact
        first POSTs to the callback URL, so the receiver must already be listening."""
        have = {(row.get("CallbackURL"), row.get("Topic")) for row in self.webhook_subscriptions()}
        done = []
        url = f"{self.division}/webhooks/WebhookSubscriptions"
        for topic in topics:
            if (callback_url, topic) in have:
                done.append(f"{self.system_id}: {topic} already sent to {callback_url}")
                continue
            self._call(
                "POST",
                url,
                json={"CallbackURL": callback_url, "Topic": topic},
                headers={"Content-Type": "application/json"},
            )
            done.append(f"{self.system_id}: subscribed {callback_url} to {topic}")
        return done

    # -- first login --------------------------------------------------------------------
    @classmethod
    def login(
        cls,
        system_id: str,
        config: Config,
        *,
        port: int,
        open_browser: bool,
        echo: Callable[[str], None],
        state_dir: str | None = None,
        timeout: float = 300,
        credentials: Mapping[str, str] | None = None,
        redirect_uri: str | None = None,
        code: str | None = None,
        read_line: Callable[[str], str] | None = None,
    ) -> None:
        """``samband auth exact-online -c FILE SYSTEM``: log in in a browser, store tokens.

        Exact refuses a plain-HTTP redirect URI that is not on this machine: with an
        HTTPS one (``--redirect-uri`` or the ``redirect_uri`` setting) the user pastes
        back the address the browser was sent to, or a script passes ``--code``."""
        settings, creds = login_context(
            system_id, config, ExactOnlineSettings, credentials=credentials or None
        )
        base = str(settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        client_id = _credential(system_id, creds, "client_id")
        params = {"client_id": client_id}
        browser_login(
            system_id,
            authorize_url=f"{base}/api/oauth2/auth",
            params=params,
            tokens=lambda: OAuthTokens(
                system_id,
                token_url=f"{base}/api/oauth2/token",
                client_id=client_id,
                client_secret=_credential(system_id, creds, "client_secret"),
                store=TokenStore(system_id, state_dir or state_folder(settings.base_dir)),
                min_interval=TOKEN_MIN_INTERVAL,
                kind=cls.kind,
            ),
            port=port,
            open_browser=open_browser,
            echo=echo,
            timeout=timeout,
            redirect_uri=redirect_uri or settings.redirect_uri or None,
            code=code,
            read_line=read_line,
        )


def _endpoint(url: str) -> str:
    """``3000001/crm/Accounts(guid'…')?…`` → ``crm/Accounts`` (what Exact counts errors by)."""
    path = urlsplit(url).path
    marker = "/api/v1/"
    if marker in path:
        path = path.split(marker, 1)[1]
    parts = path.strip("/").split("/")
    if parts and parts[0].isdigit():
        parts = parts[1:]
    return "/".join(parts).split("(", 1)[0]


def _index_refs(index: _RefIndex, records: list[RecordData], field_name: str) -> None:
    # compared exactly later: Exact's own comparison ignores case
    for record in records:
        value = record.data.get(field_name)
        if isinstance(value, str) and value:
            index.records[value] = record


def _key_literal(spec: ExactType, record_id: str) -> str:
    if spec.key == "Code":
        return str(int(record_id))
    return f"guid'{record_id}'"


def _parse_cursor(cursor: str | None) -> dict[str, int]:
    if not cursor:
        return {}
    try:
        state = json.loads(cursor)
        return {k: int(v) for k, v in state.items() if k in ("t", "d")}
    except (ValueError, TypeError, AttributeError):
        return {"t": int(cursor)} if cursor.isdigit() else {}


def _to_exact(name: str, value: Any, spec: ExactType) -> Any:
    """A canonical value → Exact's wire format for field ``name``."""
    if value is None:
        return None
    if spec.name == "Accounts" and name == "Code":
        code = str(value).strip()
        if len(code) > 18:
            raise RecordError(f"Accounts.Code {code!r} is longer than Exact's 18 characters")
        return code.rjust(18)
    if isinstance(value, datetime):
        return to_vendor_wall(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
