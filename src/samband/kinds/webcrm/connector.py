"""``kind: webcrm`` — the WebCRM REST API v1 (``https://api.webcrm.com``).

Config::

    webcrm:
      kind: webcrm
      label: WebCRM
      base_url: https://api.webcrm.com        # the sandbox's URL when trying things out
      credentials: {api_token: ${WEBCRM_API_TOKEN}}
      entity_types:
        Organisations:
          archive_status: {property: OrganisationStatus, value: Inactive}
          external_ref: OrganisationExtraCustom1
        Persons:
          archive_status: {property: PersonStatus, value: Resigned}
          external_ref: PersonCustom1

How the connector uses the API, and why:

* **Auth.** ``POST /Auth/ApiLogin`` with the application token as form field
  ``authCode``; the answer (PascalCase) carries ``AccessToken``, ``RefreshToken`` and
  ``ExpiresIn``.  A 200 answer with ``IsError: true`` is a refusal (:class:`AuthError`
  with the ``ErrorDescription``).  Tokens are renewed through ``POST /Auth/ApiRefresh``
  (the refresh token in a ``refreshToken`` header, as the swagger has it) a minute
  before they expire or after a 401; when the refresh token is refused too, or the
  refresh keeps answering 5xx (retried first, as transient), the connector logs in
  again.  Tokens live in memory only: a login costs one call and needs nothing the
  environment does not already hold.
* **Paging.** ``Page`` (from 1) and ``Size`` (``page_size``, default 500, at most 1000)
  over bare JSON arrays; a read stops at an empty or short page.
* **Changes.** Incremental reads of Organisations use
  ``GET /Organisations/FindByUpdateDates/{start}/{end}`` with ``start`` = the cursor and
  ``end`` = a date far ahead.  The published swagger has FindByUpdateDates for
  Organisations only (the other entities have ``FindByCreateDates``, which misses edits):
  every other type is read in full on every run unless ``changes: queries``.  We chose it over
  ``/Queries?script=SELECT … WHERE …UpdatedAt >= '…'`` because it is a plain path with
  the same plural names and JSON shape as the lists, needs no query-language text built
  from values, and its half-open window is documented; ``changes: queries`` switches to
  the script form for accounts where FindByUpdateDates is not available.  The cursor is
  the largest ``…UpdatedAt`` seen minus ``overlap_seconds``, and it is handed over on the
  last page only (records come in id order, so a cursor from a middle page could skip
  older changes on later pages).  ``Users`` have no change filter: they are read in full
  every run (``incremental: false``) and the engine detects changes by content hash; any
  other type can be switched to full scans with ``incremental: false`` — the only way to
  notice records deleted in WebCRM (Products, QuotationLines).
* **Empty dates.** WebCRM writes ``0001-01-01T00:00:00+00:00`` where a date is empty;
  records are handed to the engine with ``None`` there, and reference ids of ``0``
  (a person without an organisation) become ``None`` as well.  Writing ``None`` sends the
  empty date or ``0`` back.
* **Writes.** Creates are ``POST /{Entity}``; the answer is the new id (Persons answer a
  bare number; a string or an object with the id field is accepted too), then the record
  is read back with ``GET``.  Updates are a ``GET`` of the record, the changed properties
  merged in, and a ``PUT`` of the whole record (PUT replaces the record and answers 200
  without a body).  The bulk ``PATCH /{Entity}`` upsert is not used: it answers one
  string per item that is either a new id or an error message, which cannot be told
  apart reliably, and the engine writes one record at a time with its own intents.
  Organisations, Persons, Opportunities and Users cannot be deleted through the API: ``delete``
  refuses them without a call, and the ``archive`` delete policy sets the status the
  config names (``archive_status``).
* **Persons.** ``PersonLastName`` is mandatory and ``PersonOrganisationId`` cannot be
  changed through the API once set (WebCRM's own ERP integration says both): a create
  without a last name, or an update that would move a person to another organisation
  (or to none), is a record error before any write.
* **Limits.** 250 requests per sliding minute per application token: a client-side
  limiter shared by every connector of the process paces calls (``rate_limit`` changes
  it, 0 turns it off); a 429 is retried after the body's ``RetryAfterSeconds`` (or the
  ``Retry-After`` header).
* **Bad answers.** HTML pages and 5xx are retried, then reported with the method and
  path; a body that is not JSON, a record without its id, or a 200 with
  ``IsError: true`` raise :class:`ContractError` (reads) or :class:`RecordError` (writes)
  naming the request.  A GET whose body is cut short is asked again (up to three times).
  ``POST /Organisations`` may answer the new id or nothing: without an id (in the body or
  a ``Location`` header) and without an external reference, the newest record holding
  the texts sent is taken as the one created.  A create whose answer lacks the new
  id — or names a record that is not the one sent, as a damaged ``123`` read as ``12``
  would — is looked up by its external reference before it is reported, so it is
  neither lost nor created twice.

The field lists follow WebCRM's published swagger (``https://api.webcrm.com/swagger/v1/
swagger.json``, the 2020 copy kept in dreamdata-io/tap-webcrm; WebCRM's own
webCRMdotcom/ErpIntegrations SDK is generated from it) and, for the fields newer than that
copy (``OrganisationDelivery…``, ``OrganisationCompanyDescription``,
``OrganisationCountryData``, ``OpportunityCurrencySymbol``), the discontinued service's
dataflow documents.  Max lengths other than ``OrganisationName`` (200),
``OrganisationTelephone``, ``…City``, ``…Country``, ``…Www``, ``…VatNumber``,
``OrganisationExtraCustom1–8`` (50) and ``OrganisationAddress`` (250) — the swagger's —
and the length of ``PersonCustom1–15`` are assumptions, marked in the README.
``external_ref`` must name one of the custom fields (``OrganisationExtraCustom1–8``, at
most 50 characters, or ``PersonCustom1–15``); a ref longer than the field holds is a
record error before any call.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from samband.config.model import SystemConfig
from samband.connectors._http import (
    Auth,
    HttpClient,
    describe_problem,
    limiter_for,
    retry_after_seconds,
)
from samband.connectors.base import Connector, EntityType, Page, Property, RecordData
from samband.errors import (
    AuthError,
    ContractError,
    ConversionError,
    NotFound,
    RecordError,
    Stale,
    TransientError,
)
from samband.kinds.webcrm.settings import WebCrmSettings, WebCrmTypeSettings
from samband.types import DataType, coerce, to_wire, utc_moment

DEFAULT_BASE_URL = "https://api.webcrm.com"
EMPTY_DATE = "0001-01-01T00:00:00+00:00"
FAR_FUTURE = "9999-12-31T23:59:59+00:00"
MAX_PAGE_SIZE = 1000
TOKEN_MARGIN_SECONDS = 60.0
GET_PARSE_ATTEMPTS = 3
# custom text fields per table (name pattern, count, max length): the swagger gives
# Organisations OrganisationExtraCustom1–8 (at most 50 characters each); Persons have no
# ExtraCustom fields but PersonCustom1–15 (their length is an assumption)
CUSTOM_FIELDS: dict[str, tuple[str, int, int]] = {
    "Organisation": ("OrganisationExtraCustom{}", 8, 50),
    "Person": ("PersonCustom{}", 15, 255),
}
# the entities whose FindByUpdateDates WebCRM's published swagger lists
FIND_BY_UPDATE_DATES = frozenset({"Organisations"})

S, INT, D, DA, DT, R = (
    DataType.STRING,
    DataType.INTEGER,
    DataType.DECIMAL,
    DataType.DATE,
    DataType.DATETIME,
    DataType.REFERENCE,
)


def _check_external_refs(config: SystemConfig, system_id: str) -> None:
    """Refuse an ``external_ref`` that names no field of its type (``validate`` and a run say
    the same): a create could not stamp its ref, and every run would create it again."""
    for name, entity in ENTITIES.items():
        ref_field = WebCrmTypeSettings.of(
            config.entity_types.get(name), type_name=name
        ).external_ref
        if ref_field and ref_field not in entity.properties:
            custom = [p for p in entity.properties if "Custom" in p]
            raise ContractError(
                system_id,
                f"{name}: external_ref {ref_field!r} is not a field of WebCRM {name}",
                f"use a custom field you use for nothing else: {', '.join(custom)}"
                if custom
                else f"{name} has no custom field for it",
            )


@dataclass(frozen=True)
class WebCrmEntity:
    """One WebCRM collection: its entity-type name, URL segment and singular table name
    (the prefix of every field, and the table name in ``/Queries``)."""

    name: str
    path: str
    table: str
    properties: dict[str, Property] = field(default_factory=dict)
    read_only: bool = False
    can_delete: bool = False
    incremental: bool = True
    required: tuple[str, ...] = ()
    # set on create, never changed through the API once set
    fixed: tuple[str, ...] = ()

    @property
    def id_field(self) -> str:
        return f"{self.table}Id"

    @property
    def updated_field(self) -> str:
        return f"{self.table}UpdatedAt"

    @property
    def created_field(self) -> str:
        return f"{self.table}CreatedAt"


def _entity(
    name: str,
    path: str,
    table: str,
    fields: list[tuple[str, DataType, int | None] | tuple[str, DataType, int | None, str]],
    *,
    custom: bool = False,
    computed: tuple[str, ...] = (),
    required: tuple[str, ...] = (),
    **options: Any,
) -> WebCrmEntity:
    props: dict[str, Property] = {
        f"{table}Id": Property(f"{table}Id", INT, read_only=True),
    }
    for spec in fields:
        short, dtype, max_length = spec[0], spec[1], spec[2]
        references = spec[3] if len(spec) > 3 else None  # type: ignore[misc]
        full = f"{table}{short}"
        props[full] = Property(
            full,
            dtype,
            read_only=short in computed,
            required=full in required,
            max_length=max_length,
            references=references,
        )
    if custom:
        pattern, count, length = CUSTOM_FIELDS[table]
        for number in range(1, count + 1):
            full = pattern.format(number)
            props[full] = Property(full, S, max_length=length)
    for stamp in ("CreatedAt", "UpdatedAt"):
        props[f"{table}{stamp}"] = Property(f"{table}{stamp}", DT, read_only=True)
    return WebCrmEntity(name, path, table, props, required=required, **options)


# WebCRM's read-only country object beside OrganisationCountry (the field's documents
# read OrganisationCountryData.CodeISO and .Name; newer swaggers give Opportunities the
# same {Name, CodeISO, CodeUN} object as OpportunityCountry)
COUNTRY_DATA_FIELDS = ("Name", "CodeISO", "CodeUN")

ENTITIES: dict[str, WebCrmEntity] = {
    e.name: e
    for e in (
        _entity(
            "Organisations",
            "Organisations",
            "Organisation",
            [
                ("Name", S, 200),
                ("Address", S, 250),
                ("City", S, 50),
                ("PostCode", S, 20),
                ("State", S, None),
                ("Country", S, 50),
                *((f"CountryData.{part}", S, None) for part in COUNTRY_DATA_FIELDS),
                ("DeliveryAddress", S, None),
                ("DeliveryCity", S, None),
                ("DeliveryPostCode", S, None),
                ("DeliveryState", S, None),
                ("CompanyDescription", S, None),
                ("Telephone", S, 50),
                ("Www", S, 50),
                ("VatNumber", S, 50),
                ("Status", S, 100),
                ("Type", S, 100),
            ],
            custom=True,
            computed=tuple(f"CountryData.{part}" for part in COUNTRY_DATA_FIELDS),
            required=("OrganisationName",),
        ),
        _entity(
            "Persons",
            "Persons",
            "Person",
            [
                ("OrganisationId", R, None, "Organisations"),
                ("FirstName", S, 100),
                ("LastName", S, 100),
                ("Name", S, 201),
                ("Email", S, 200),
                ("DirectPhone", S, 50),
                ("MobilePhone", S, 50),
                ("Title", S, 100),
                ("Status", S, 50),
                ("Birthday", DA, None),
            ],
            custom=True,
            computed=("Name",),
            # WebCRM's own ERP integration: "It is mandatory to define last name in
            # webCRM" and "We cannot change the organisation ID through the API"
            required=("PersonLastName",),
            fixed=("PersonOrganisationId",),
        ),
        _entity(
            "Products",
            "Products",
            "Product",
            [
                ("Price", D, None),
                ("CostPrice", D, None),
                ("ListPrice", D, None),
                ("Discount", D, None),
                ("Quantity", D, None),
                ("VatCode", S, 20),
                ("StockStatus", S, None),
                ("Comment", S, None),
            ],
            can_delete=True,
        ),
        _entity(
            "Quotationline",
            "QuotationLines",
            "QuotationLine",
            [
                ("OpportunityId", R, None, "Opportunities"),
                ("OrganisationId", R, None, "Organisations"),
                ("PersonId", R, None, "Persons"),
                ("Price", D, None),
                ("CostPrice", D, None),
                ("ListPrice", D, None),
                ("Quantity", D, None),
                ("Discount", D, None),
                ("VatPercentage", D, None),
                ("Comment", S, None),
            ],
            can_delete=True,
        ),
        _entity(
            "Opportunities",
            "Opportunities",
            "Opportunity",
            [
                ("OrganisationId", R, None, "Organisations"),
                ("PersonId", R, None, "Persons"),
                ("AssignedTo", R, None, "Users"),
                ("Description", S, None),
                ("Level", INT, None),
                ("LevelText", S, None),
                ("CurrencyName", S, None),
                ("CurrencySymbol", S, None),
                ("Discount", D, None),
                ("OrderDate", DA, None),
            ],
        ),
        _entity(
            "Users",
            "Users",
            "User",
            [
                ("Name", S, None),
                ("Email", S, None),
                ("Telephone", S, None),
                ("MobilePhone", S, None),
                ("Title", S, None),
            ],
            incremental=False,
        ),
    )
}

# What the field's documents (../shared/reference/field-properties.tsv) name for WebCRM
# and this connector leaves out, or reads but does not write although documents write
# it, with the reason; docs/systems/webcrm.md lists the same.
FIELD_DOCUMENTS_READ_ONLY: dict[tuple[str, str], str] = {
    ("Organisations", "OrganisationId"): "WebCRM gives the id; documents use it as a key",
    ("Persons", "PersonName"): (
        "assumed computed by WebCRM from PersonFirstName and PersonLastName (the swagger "
        "does not say); write those two instead"
    ),
}
FIELD_DOCUMENTS_ABSENT: dict[tuple[str, str], str] = {
    ("Persons", "document_number"): (
        "not a WebCRM field: the swagger's PersonDto has no such property (nor any "
        "document or birth number); the documents that name it map Exact Online "
        "Contacts.BirthDate to it, a leftover of a generic template"
    ),
}


def is_empty_date(value: Any) -> bool:
    return isinstance(value, str) and value.strip().startswith("0001-01-01")


def parse_timestamp(value: Any) -> datetime | None:
    """A WebCRM date-time as an aware UTC datetime; the empty date and junk give None."""
    return None if is_empty_date(value) else utc_moment(value)


def from_wire(entity: WebCrmEntity, body: Mapping[str, Any]) -> dict[str, Any]:
    """A record as the engine sees it: empty dates and ``0`` references become None."""
    data = dict(body)
    for name, prop in entity.properties.items():
        if name not in data:
            continue
        value = data[name]
        empty_date = prop.type in (DA, DT) and is_empty_date(value)
        no_reference = prop.type is R and value in (0, "0", "")
        if empty_date or no_reference:
            data[name] = None
    return data


def wire_value(entity: WebCrmEntity, path: str, value: Any) -> Any:
    """A canonical value in WebCRM's wire format (raises RecordError when impossible)."""
    prop = entity.properties.get(path)
    dtype = prop.type if prop else None
    if value is None:
        if dtype in (DA, DT):
            return EMPTY_DATE
        if dtype is R:
            return 0
        if dtype is S:
            return ""
        return None
    try:
        if dtype is R or dtype is INT:
            text = coerce(value, R)
            if not text.lstrip("-").isdigit():
                raise ConversionError(f"{value!r} is not a WebCRM id (a whole number)")
            return int(text)
        if dtype is DA:
            day = coerce(value, DA)
            return f"{day.isoformat()}T00:00:00+00:00"
        if dtype is DT:
            return coerce(value, DT).isoformat()
        if dtype is D:
            return to_wire(coerce(value, D))
        if dtype is S:
            text = coerce(value, S)
            if prop is not None and prop.max_length and len(text) > prop.max_length:
                raise RecordError(
                    f"{path} is {len(text)} characters long; WebCRM {entity.name}.{path} holds "
                    f"at most {prop.max_length}"
                )
            return text
    except ConversionError as exc:
        raise RecordError(f"{path}: {exc}") from None
    return to_wire(value) if isinstance(value, Decimal | date) else value


def _describe_error(response: httpx.Response) -> str:
    """WebCRM error bodies: ``Message``/``Type``, or the auth shape with ErrorDescription."""
    try:
        body = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        for key in ("ErrorDescription", "Message", "Error", "message"):
            if body.get(key):
                return str(body[key])
    return describe_problem(response)


def _retry_after(response: httpx.Response) -> float | None:
    """``RetryAfterSeconds`` from a 429 body, else the ``Retry-After`` header."""
    if response.status_code == 429:
        try:
            body = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict):
            seconds = body.get("RetryAfterSeconds")
            if isinstance(seconds, int | float) and not isinstance(seconds, bool):
                return max(float(seconds), 0.0)
    return retry_after_seconds(response)


class WebCrmAuth(Auth):
    """ApiLogin with the application token, ApiRefresh before expiry or after a 401."""

    def __init__(
        self,
        system_id: str,
        client: HttpClient,
        api_token: str,
        clock: Callable[[], float],
    ) -> None:
        self.system_id = system_id
        self._client = client
        self._api_token = api_token
        self._clock = clock
        self._access: str | None = None
        self._refresh: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.logins = 0
        self.refreshes = 0

    def headers(self) -> dict[str, str]:
        with self._lock:
            if self._access is None or self._clock() >= self._expires_at - TOKEN_MARGIN_SECONDS:
                self._renew()
            return {"Authorization": f"Bearer {self._access}"}

    def refresh(self) -> bool:
        """After a 401: the access token is no good any more; get a new one."""
        with self._lock:
            self._access = None
            self._renew()
        return True

    def _renew(self) -> None:
        if self._refresh is not None:
            try:
                # the swagger's ApiRefresh takes the refresh token in a header
                self._token("/Auth/ApiRefresh", headers={"refreshToken": self._refresh})
                self.refreshes += 1
                return
            except (AuthError, TransientError):
                # expired or used, or the refresh keeps failing (5xx): log in again; a
                # login that fails the same way is transient, and the run goes on
                self._refresh = None
        self._token("/Auth/ApiLogin", form={"authCode": self._api_token})
        self.logins += 1

    def _token(
        self,
        path: str,
        *,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        hint = "check the WebCRM application token (credentials: api_token)"
        for attempt in range(GET_PARSE_ATTEMPTS):
            try:
                # a token request changes nothing that a repeat would duplicate
                response = self._client.request(
                    "POST", path, data=form, headers=headers, idempotent=True
                )
            except RecordError as exc:
                raise AuthError(
                    self.system_id, f"POST {path} refused: {exc.reason}", hint
                ) from None
            try:
                body = self._client.json(response, "POST", path)
                break
            except ContractError:  # a body cut short: ask again
                if attempt + 1 == GET_PARSE_ATTEMPTS:
                    raise
        if not isinstance(body, dict):
            raise ContractError(
                self.system_id, f"POST {path} answered {type(body).__name__}, not a token object"
            )
        if body.get("IsError"):
            reason = body.get("ErrorDescription") or body.get("Error") or "no reason given"
            raise AuthError(self.system_id, f"POST {path} answered IsError: {reason}", hint)
        access = body.get("AccessToken")
        if not isinstance(access, str) or not access:
            raise ContractError(self.system_id, f"POST {path} answered without an AccessToken")
        refresh = body.get("RefreshToken")
        try:
            expires_in = float(body.get("ExpiresIn") or 3600)
        except (TypeError, ValueError):
            expires_in = 3600.0
        self._access = access
        self._refresh = refresh if isinstance(refresh, str) and refresh else None
        self._expires_at = self._clock() + expires_in


class WebCrmConnector(Connector):
    kind = "webcrm"

    def __init__(
        self,
        system_id: str,
        config: SystemConfig,
        credentials: Mapping[str, str],
        *,
        state_dir: str | None = None,
        overlap_seconds: float = 5.0,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(
            system_id, config, credentials, state_dir=state_dir, overlap_seconds=overlap_seconds
        )
        settings = WebCrmSettings.of(config, system_id)
        self.base_url = str(settings.base_url or DEFAULT_BASE_URL)
        self.page_size = max(1, min(settings.page_size, MAX_PAGE_SIZE))
        self.changes = settings.changes
        if self.changes not in ("find_by_update_dates", "queries"):
            raise ContractError(
                system_id,
                f"changes: {self.changes!r} is not known",
                "use find_by_update_dates or queries",
            )
        _check_external_refs(config, system_id)
        api_token = self.credentials.get("api_token", "")
        if not api_token:
            raise AuthError(
                system_id,
                "no WebCRM application token",
                "set credentials: {api_token: ${WEBCRM_API_TOKEN}} and the variable",
            )
        # keyed by a digest: the token itself is kept nowhere but in the auth object
        key = hashlib.sha256(api_token.encode()).hexdigest()[:16]
        limiter = limiter_for("webcrm", key, settings.rate_limit)
        common: dict[str, Any] = {
            "limiter": limiter,
            "stats": self.stats,
            "retry_after": _retry_after,
            "describe_error": _describe_error,
            "headers": {"Accept": "application/json"},
        }
        if sleep is not None:
            common["sleep"] = sleep
        self._auth_http = HttpClient(system_id, self.base_url, **common)
        self.auth = WebCrmAuth(system_id, self._auth_http, api_token, clock or time.monotonic)
        self.http = HttpClient(system_id, self.base_url, auth=self.auth, **common)

    # -- schema -------------------------------------------------------------------
    @classmethod
    def describe(cls, config: SystemConfig) -> dict[str, EntityType]:
        _check_external_refs(config, "webcrm")
        types: dict[str, EntityType] = {}
        for name, entity in ENTITIES.items():
            settings = WebCrmTypeSettings.of(config.entity_types.get(name), type_name=name)
            archive_spec = settings.archive_status or settings.archive
            archive: tuple[str, Any] | None = None
            if isinstance(archive_spec, dict) and archive_spec.get("property"):
                archive = (str(archive_spec["property"]), archive_spec.get("value"))
            incremental = entity.incremental and settings.incremental and not settings.full_scan
            types[name] = EntityType(
                name=name,
                id_field=entity.id_field,
                modified_field=entity.updated_field,
                properties=dict(entity.properties),
                incremental=incremental,
                reports_deletes=False,
                read_only=entity.read_only or bool(settings.read_only),
                can_delete=entity.can_delete,
                external_ref_field=settings.external_ref,
                archive=archive,
            )
        return types

    def _entity(self, entity_type: str) -> tuple[WebCrmEntity, EntityType]:
        etype = self.entity_type(entity_type)
        return ENTITIES[etype.name], etype

    # -- lifecycle ----------------------------------------------------------------
    def check(self) -> None:
        """Log in and read one organisation: proves URL, token and privileges."""
        self._get_list("/Organisations", {"Page": 1, "Size": 1})

    def close(self) -> None:
        self.http.close()
        self._auth_http.close()

    # -- reading ------------------------------------------------------------------
    def _get_list(self, url: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        body = self._get_json(url, params)
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise ContractError(
                self.system_id,
                f"GET {url} answered {type(body).__name__}, not an array of records",
            )
        return body

    def _get_json(self, url: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET and parse, asking again when the body is cut short or not JSON (a GET
        changes nothing, so a repeat is safe); IsError answers are not repeated."""
        for attempt in range(GET_PARSE_ATTEMPTS):
            response = self.http.request("GET", url, params=params)
            try:
                body = self.http.json(response, "GET", url)
                break
            except ContractError:
                if attempt + 1 == GET_PARSE_ATTEMPTS:
                    raise
                self.stats.retries += 1
        return self._checked(body, "GET", url)

    def _json(self, response: httpx.Response, method: str, url: str) -> Any:
        return self._checked(self.http.json(response, method, url), method, url)

    def _checked(self, body: Any, method: str, url: str) -> Any:
        if isinstance(body, dict) and body.get("IsError"):
            reason = body.get("ErrorDescription") or body.get("Message") or body.get("Error")
            raise ContractError(
                self.system_id, f"{method} {url} answered IsError: {reason or 'no reason given'}"
            )
        return body

    def _record(self, entity: WebCrmEntity, body: Mapping[str, Any], where: str) -> RecordData:
        record_id = body.get(entity.id_field)
        if record_id in (None, "", 0):
            raise ContractError(
                self.system_id, f"{where} answered a record without {entity.id_field}"
            )
        data = from_wire(entity, body)
        return RecordData(str(record_id), data, parse_timestamp(body.get(entity.updated_field)))

    def _pages(
        self, entity: WebCrmEntity, url: str, params: Mapping[str, Any]
    ) -> Iterator[list[RecordData]]:
        page_no, previous_first = 1, None
        while True:
            rows = self._get_list(url, {**params, "Page": page_no, "Size": self.page_size})
            records = [self._record(entity, row, f"GET {url}") for row in rows]
            if records and page_no > 1 and records[0].id == previous_first:
                raise ContractError(
                    self.system_id, f"GET {url} answered page {page_no} like page {page_no - 1}"
                )
            self.stats.reads += len(records)
            last = len(records) < self.page_size
            yield records
            if last:
                return
            previous_first = records[0].id
            page_no += 1

    def _changes_request(self, entity: WebCrmEntity, since: datetime) -> tuple[str, dict[str, Any]]:
        start = since.astimezone(UTC).isoformat()
        if self.changes == "queries":
            # The timestamp comes from our own cursor (parsed, then formatted), never
            # from record contents; the script form is the one WebCRM documents.
            script = f"SELECT * FROM {entity.table} WHERE {entity.updated_field} >= '{start}'"
            return "/Queries", {"script": script}
        url = (
            f"/{entity.path}/FindByUpdateDates/{quote(start, safe='')}/{quote(FAR_FUTURE, safe='')}"
        )
        return url, {}

    def _has_changes_filter(self, entity: WebCrmEntity) -> bool:
        """WebCRM's swagger has ``FindByUpdateDates`` for Organisations only (the others
        have ``FindByCreateDates``, blind to edits); ``/Queries`` filters any table."""
        return self.changes == "queries" or entity.path in FIND_BY_UPDATE_DATES

    def read(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        entity, etype = self._entity(entity_type)
        since = parse_timestamp(cursor) if etype.incremental and cursor else None
        params: dict[str, Any] = {}
        if since is None or not self._has_changes_filter(entity):
            # a full scan: the engine tells changed records by their content
            url = f"/{entity.path}"
        else:
            url, params = self._changes_request(entity, since)
        newest: datetime | None = None
        pending: list[RecordData] | None = None
        for records in self._pages(entity, url, params):
            if pending is not None:
                yield Page(pending, None)
            for record in records:
                if record.modified is not None and (newest is None or record.modified > newest):
                    newest = record.modified
            pending = records
        cursor_out: str | None = None
        if etype.incremental and newest is not None:
            moved = newest - timedelta(seconds=self.overlap_seconds)
            if since is None or moved > since:
                cursor_out = moved.isoformat()
        yield Page(pending or [], cursor_out)

    def get(self, entity_type: str, record_id: str) -> RecordData | None:
        entity, _ = self._entity(entity_type)
        body = self._get_raw(entity, record_id)
        return None if body is None else self._record(entity, body, f"GET /{entity.path}/{{id}}")

    def _get_raw(self, entity: WebCrmEntity, record_id: str) -> dict[str, Any] | None:
        url = f"/{entity.path}/{quote(str(record_id), safe='')}"
        try:
            body = self._get_json(url)
        except NotFound:
            return None
        if body is None:
            return None
        if not isinstance(body, dict):
            raise ContractError(
                self.system_id, f"GET {url} answered {type(body).__name__}, not a record"
            )
        return body

    def find_by_external_ref(self, entity_type: str, external_ref: str) -> RecordData | None:
        """Through ``/Queries … WHERE field = 'ref'`` (what WebCRM's own ERP integration
        does for its keys), not a full scan: only a create that was interrupted needs it."""
        entity, etype = self._entity(entity_type)
        if etype.external_ref_field is None:
            return None
        quoted = external_ref.replace("'", "''")  # SQL's own escape of a quote in a string
        script = f"SELECT * FROM {entity.table} WHERE {etype.external_ref_field} = '{quoted}'"
        for records in self._pages(entity, "/Queries", {"script": script}):
            for record in records:
                if record.data.get(etype.external_ref_field) == external_ref:
                    return record
        return None

    # -- writing ------------------------------------------------------------------
    def _body(self, entity: WebCrmEntity, values: Mapping[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for path, value in values.items():
            prop = entity.properties.get(path)
            if prop is not None and prop.read_only:
                continue  # ids, stamps and computed names are WebCRM's to set
            body[path] = wire_value(entity, path, value)
        return body

    def create(
        self, entity_type: str, values: dict[str, Any], external_ref: str | None = None
    ) -> RecordData:
        entity, etype = self._entity(entity_type)
        if etype.read_only:
            raise RecordError(f"{entity_type} is read-only in WebCRM")
        body = self._body(entity, values)
        if external_ref and etype.external_ref_field:
            ref_prop = entity.properties.get(etype.external_ref_field)
            if ref_prop and ref_prop.max_length and len(external_ref) > ref_prop.max_length:
                raise RecordError(
                    f"the external ref {external_ref!r} is {len(external_ref)} characters long; "
                    f"{etype.external_ref_field} holds at most {ref_prop.max_length}"
                )
            body[etype.external_ref_field] = wire_value(
                entity, etype.external_ref_field, external_ref
            )
        for name in entity.required:
            if not body.get(name):
                raise RecordError(f"{entity_type} needs {name}; the record has none")
        url = f"/{entity.path}"
        response = self.http.request("POST", url, json=body)
        try:
            answer = self._write_answer(response, "POST", url)
        except ContractError:
            answer = None  # a body cut short or not JSON: the record may exist all the same
        new_id = _new_id(answer, entity) or _location_id(response)
        created = self._get_raw(entity, new_id) if new_id is not None else None
        if created is not None and _is_ours(created, body, etype.external_ref_field):
            self.stats.writes += 1
            return self._record(entity, created, f"GET {url}/{{id}}")
        # No usable id: find the record by the ref stamped into it, never create again.
        found = (
            self.find_by_external_ref(entity_type, external_ref)
            if external_ref and etype.external_ref_field
            else None
        )
        if found is None and new_id is None and not (external_ref and etype.external_ref_field):
            # POST /Organisations may answer without the id (a valid answer, not damage):
            # the newest record holding what was sent is the one created
            found = self._find_sent(entity, body)
        if found is not None:
            self.stats.writes += 1
            return found
        what = (
            f"without the new {entity.id_field}"
            if new_id is None
            else f"id {new_id}, which is not the record sent"
        )
        raise ContractError(
            self.system_id,
            f"POST {url} answered {response.status_code} {what}; the record may have been created",
            "look for it in WebCRM before the next run (an external_ref field lets Samband "
            "find it by itself)",
        )

    def _find_sent(self, entity: WebCrmEntity, sent: Mapping[str, Any]) -> RecordData | None:
        """The record with the highest id (ids grow) whose texts are the ones sent."""
        best: RecordData | None = None
        for records in self._pages(entity, f"/{entity.path}", {}):
            for record in records:
                if _is_ours(record.data, sent, None) and (
                    best is None or int(record.id) > int(best.id)
                ):
                    best = record
        return best

    def _write_answer(self, response: httpx.Response, method: str, url: str) -> Any:
        body = self.http.json(response, method, url)
        if isinstance(body, dict) and body.get("IsError"):
            reason = body.get("ErrorDescription") or body.get("Message") or body.get("Error")
            raise RecordError(
                f"{method} {url} answered {response.status_code} with IsError: "
                f"{reason or 'no reason given'}",
                details={"status": response.status_code},
            )
        return body

    checks_expected = True

    def update(
        self,
        entity_type: str,
        record_id: str,
        changes: dict[str, Any],
        expected: dict[str, Any] | None = None,
    ) -> None:
        """WebCRM's PUT takes the whole record: read it, change ``changes``, put it back.
        With ``expected``, a changed property that holds another value than when it was
        read (edited since) stops the update: :class:`Stale`."""
        entity, etype = self._entity(entity_type)
        if etype.read_only:
            raise RecordError(f"{entity_type} is read-only in WebCRM")
        body = self._body(entity, changes)
        if not body:
            return None  # nothing WebCRM would store (read-only properties only)
        for name in entity.required:
            if name in body and not body[name]:
                raise RecordError(f"{entity_type} needs {name}; the change empties it")
        current = self._get_raw(entity, record_id)
        if current is None:
            raise NotFound(f"{entity_type} {record_id} does not exist in {self.system_id}")
        for name in entity.fixed:
            if (
                name in body
                and current.get(name) not in (None, 0, "")
                and not _same_value(current.get(name), body[name])
            ):
                raise RecordError(
                    f"WebCRM does not let the API change {name} once it is set "
                    f"({entity_type} {record_id} has {current.get(name)}, the change wants "
                    f"{body[name]}); change it in WebCRM itself, or map the property only "
                    "one way into WebCRM on create"
                )
        for name in body:
            if (
                expected is not None
                and name in expected
                and not _same_value(current.get(name), expected[name])
            ):
                raise Stale(
                    f"{self.system_id}: {entity_type} {record_id}: {name} was edited after "
                    "it was read"
                )
        merged = {**current, **body}
        url = f"/{entity.path}/{quote(str(record_id), safe='')}"
        response = self.http.request("PUT", url, json=merged)
        self._write_answer(response, "PUT", url)
        self.stats.writes += 1
        return None

    def delete(self, entity_type: str, record_id: str) -> None:
        entity, etype = self._entity(entity_type)
        if not etype.can_delete:
            raise RecordError(
                f"WebCRM has no DELETE for {entity_type}; use on_delete: archive with an "
                "archive_status, or unlink"
            )
        url = f"/{entity.path}/{quote(str(record_id), safe='')}"
        response = self.http.request("DELETE", url)
        self._write_answer(response, "DELETE", url)
        self.stats.writes += 1


def _is_ours(created: Mapping[str, Any], sent: Mapping[str, Any], ref_field: str | None) -> bool:
    """The record read back is the one sent (guards against an id that a damaged answer
    turned into another record's id: ``123`` cut to ``12`` is still JSON).  The stamped
    external ref decides when there is one; else the texts sent, compared loosely."""
    if ref_field and ref_field in sent:
        return created.get(ref_field) == sent[ref_field]

    def loose(value: Any) -> str:
        return str(value or "").strip().casefold()

    return all(loose(created.get(k)) == loose(v) for k, v in sent.items() if isinstance(v, str))


def _new_id(answer: Any, entity: WebCrmEntity) -> str | None:
    """The id in a POST answer: a number, a numeric string, or an object with the id."""
    if isinstance(answer, dict):
        answer = answer.get(entity.id_field, answer.get("Id"))
    if isinstance(answer, bool):
        return None
    if isinstance(answer, int) and answer > 0:
        return str(answer)
    if isinstance(answer, str) and answer.strip().isdigit() and int(answer) > 0:
        return answer.strip()
    return None


def _location_id(response: httpx.Response) -> str | None:
    """The new id at the end of a ``Location`` header (``…/Organisations/123``), if any."""
    tail = response.headers.get("location", "").rstrip("/").rsplit("/", 1)[-1]
    return tail if tail.isdigit() and int(tail) > 0 else None


def _same_value(current: Any, was: Any) -> bool:
    """Whether a value WebCRM holds now is the one read before (empty values — null, "",
    the zero date — are alike; numbers compare by value)."""
    empty = (None, "", EMPTY_DATE)
    if current in empty or was in empty:
        return current in empty and was in empty
    if isinstance(current, int | float) and isinstance(was, int | float):
        return float(current) == float(was)
    return bool(current == was)
