"""A local WebCRM REST API v1: ``samband sandbox webcrm --port N``.

Faithful where the connector depends on it:

* ``POST /Auth/ApiLogin`` (form ``authCode``, or an ``authCode`` header) and
  ``POST /Auth/ApiRefresh`` (a ``refreshToken`` header; a token in the form body is not
  seen) answer the PascalCase token object;
  a wrong code answers **200** with ``IsError: true``.  Access tokens expire after 3600 s
  on the sandbox clock; refresh tokens after a day, and each works once.
* Lists ``GET /{Entity}?Page=&Size=`` answer bare arrays in id order (Size 1–1000).
* ``GET /Organisations/FindByUpdateDates/{start}/{end}`` (start ≤ updated < end; the
  swagger has it for Organisations only, every other entity answers 404) and
  ``GET /Queries?script=SELECT * FROM <Table> WHERE <Table>UpdatedAt >= '<iso>'`` — only
  that script form; anything else answers 400 with a message.
* ``POST`` (creates; answers the new id as a number — ``POST /Organisations`` answers
  200 without a body when ``organisation_post_answers_id`` is false),
  ``GET|PUT /{Entity}/{id}`` (PUT replaces the whole record and answers 200 without a
  body), ``PATCH /{Entity}`` bulk
  upsert (one string per item: the id, or the error message), ``DELETE`` on Products and
  QuotationLines only (405 elsewhere).
* Empty dates are ``0001-01-01T00:00:00+00:00``; every record carries every field.
* 250 calls per sliding minute per application token: 429 with ``Retry-After`` and
  ``{"RetryAfterSeconds": n, "Message": ..., "Type": "TooManyRequestsException"}``.
* Fields: the published swagger's (``OrganisationDto``, ``PersonDto``, ``ProductDto``,
  ``QuotationLineDto``, ``OpportunityDto``, ``UserDto``; a subset of each) and the newer
  ones the field's documents name: ``OrganisationDeliveryAddress``/``City``/``PostCode``/
  ``State``, ``OrganisationCompanyDescription``, ``OpportunityCurrencySymbol`` and the
  read-only ``OrganisationCountryData`` object (``Name``, ``CodeISO``, ``CodeUN``), which
  the sandbox derives from ``OrganisationCountry`` for a few countries (an assumption).
* Validation: fields the table does not have (e.g. ``PersonExtraCustom1``: Persons have
  ``PersonCustom1–15``; Organisations ``OrganisationExtraCustom1–8``, ≤ 50), max lengths
  (``OrganisationName`` ≤ 200, ``OrganisationTelephone`` ≤ 50, …), types, required names
  and existing parents → 400 ``{"Message", "Type"}``.

The application token of a fresh sandbox is :data:`SANDBOX_API_TOKEN`.  ``quirks``
(``missing_id``, ``is_error``) make the next N answers misbehave the way real APIs
sometimes do, on top of the base class's fault injection.
"""

from __future__ import annotations

import math
import random
import re
import secrets
from collections import deque
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from samband.sandbox._base import Clock, ExactJSONResponse, Faults, Sandbox, exact_json

SANDBOX_API_TOKEN = "5e4f2a36-0c1b-4d8e-9a7f-3b2c1d0e9f8a"
ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_SECONDS = 24 * 3600
RATE_LIMIT_CALLS = 250
RATE_LIMIT_PERIOD = 60.0
MAX_SIZE = 1000

EMPTY_DATE = "0001-01-01T00:00:00+00:00"  # how WebCRM writes "no date"
# custom text fields (name pattern, count, max length): OrganisationExtraCustom1–8 (≤ 50)
# per the swagger; Persons have no ExtraCustom fields but PersonCustom1–15
CUSTOM_FIELDS: dict[str, tuple[str, int, int]] = {
    "Organisation": ("OrganisationExtraCustom{}", 8, 50),
    "Person": ("PersonCustom{}", 15, 255),
}


# -- WebCRM's tables, as its API documentation lists them ----------------------------------
@dataclass(frozen=True)
class Column:
    """One field of a WebCRM table: ``text`` (with a maximum length, if one is known),
    ``int``, ``id`` of a row of ``parent``, ``number``, ``date``, ``datetime`` or
    ``country`` (an object); ``computed`` ones are set by WebCRM and ignored in writes."""

    kind: str
    length: int | None = None
    parent: str | None = None
    computed: bool = False


@dataclass(frozen=True)
class Table:
    """A WebCRM collection: its URL segment, its singular name (every field's prefix and
    the table of ``/Queries``), its fields by full name."""

    path: str
    table: str
    columns: dict[str, Column]
    id_field: str
    created_field: str
    updated_field: str
    required: tuple[str, ...] = ()
    fixed: tuple[str, ...] = ()  # set on create, refused as a change afterwards
    writable: bool = True
    deletable: bool = False


def _table(
    path: str,
    table: str,
    columns: dict[str, Column],
    *,
    custom: bool = False,
    **options: Any,
) -> Table:
    key, created, updated = (table + suffix for suffix in ("Id", "CreatedAt", "UpdatedAt"))
    full = {key: Column("int", computed=True)}
    full.update({table + name: column for name, column in columns.items()})
    if custom:
        pattern, count, length = CUSTOM_FIELDS[table]
        for number in range(1, count + 1):
            full[pattern.format(number)] = _text(length)
    full[created] = full[updated] = Column("datetime", computed=True)
    return Table(path, table, full, key, created, updated, **options)


def _text(length: int) -> Column:
    return Column("text", length)


_NUMBER, _DATE, _FREE = Column("number"), Column("date"), Column("text")

# by the name Samband's configs use (the API's own path where that is the same); the
# fields are the published swagger's, plus the newer ones the field's documents name
# (OrganisationDelivery…, OrganisationCompanyDescription, OrganisationCountryData,
# OpportunityCurrencySymbol)
TABLES: dict[str, Table] = {
    "Organisations": _table(
        "Organisations",
        "Organisation",
        {
            "Name": _text(200),
            "Address": _text(250),
            "City": _text(50),
            "PostCode": _text(20),
            "State": _FREE,
            "Country": _text(50),
            # WebCRM's country record for OrganisationCountry: {Name, CodeISO, CodeUN}
            "CountryData": Column("country", computed=True),
            "DeliveryAddress": _FREE,
            "DeliveryCity": _FREE,
            "DeliveryPostCode": _FREE,
            "DeliveryState": _FREE,
            "CompanyDescription": _FREE,
            "Telephone": _text(50),
            "Www": _text(50),
            "VatNumber": _text(50),
            "Status": _text(100),
            "Type": _text(100),
        },
        custom=True,
        required=("OrganisationName",),
    ),
    "Persons": _table(
        "Persons",
        "Person",
        {
            "OrganisationId": Column("id", parent="Organisations"),
            "FirstName": _text(100),
            "LastName": _text(100),
            "Name": Column("text", 201, computed=True),
            "Email": _text(200),
            "DirectPhone": _text(50),
            "MobilePhone": _text(50),
            "Title": _text(100),
            "Status": _text(50),
            "Birthday": _DATE,
        },
        custom=True,
        # WebCRM's own ERP integration (webCRMdotcom/ErpIntegrations, PersonDto.cs): a
        # last name is mandatory, and a person's organisation cannot be changed
        required=("PersonLastName",),
        fixed=("PersonOrganisationId",),
    ),
    "Products": _table(
        "Products",
        "Product",
        {
            "Price": _NUMBER,
            "CostPrice": _NUMBER,
            "ListPrice": _NUMBER,
            "Discount": _NUMBER,
            "Quantity": _NUMBER,
            "VatCode": _text(20),
            "StockStatus": _FREE,
            "Comment": _FREE,
        },
        deletable=True,
    ),
    "Quotationline": _table(
        "QuotationLines",
        "QuotationLine",
        {
            "OpportunityId": Column("id", parent="Opportunities"),
            "OrganisationId": Column("id", parent="Organisations"),
            "PersonId": Column("id", parent="Persons"),
            "Price": _NUMBER,
            "CostPrice": _NUMBER,
            "ListPrice": _NUMBER,
            "Quantity": _NUMBER,
            "Discount": _NUMBER,
            "VatPercentage": _NUMBER,
            "Comment": _FREE,
        },
        deletable=True,
    ),
    "Opportunities": _table(
        "Opportunities",
        "Opportunity",
        {
            "OrganisationId": Column("id", parent="Organisations"),
            "PersonId": Column("id", parent="Persons"),
            "AssignedTo": Column("id", parent="Users"),
            "Description": _FREE,
            "Level": Column("int"),
            "LevelText": _FREE,
            "CurrencyName": _FREE,
            "CurrencySymbol": _FREE,
            "Discount": _NUMBER,
            "OrderDate": _DATE,
        },
    ),
    "Users": _table(
        "Users",
        "User",
        {
            "Name": _FREE,
            "Email": _FREE,
            "Telephone": _FREE,
            "MobilePhone": _FREE,
            "Title": _FREE,
        },
    ),
}

# The countries the sandbox resolves OrganisationCountry to (name, ISO 3166-1 alpha-2,
# numeric UN code); any other text keeps its name and has empty codes.
COUNTRIES: dict[str, tuple[str, str, str]] = {
    name.casefold(): (name, iso, un)
    for name, iso, un in (
        ("Norway", "NO", "578"),
        ("Sweden", "SE", "752"),
        ("Denmark", "DK", "208"),
        ("Finland", "FI", "246"),
        ("Iceland", "IS", "352"),
        ("Germany", "DE", "276"),
        ("Netherlands", "NL", "528"),
        ("United Kingdom", "GB", "826"),
        ("United States", "US", "840"),
    )
}

_BY_PATH = {entity.path.lower(): entity for entity in TABLES.values()}
_BY_TABLE = {entity.table.lower(): entity for entity in TABLES.values()}
_QUERY = re.compile(
    r"""^\s*SELECT\s+\*\s+FROM\s+\[?(?P<table>\w+)\]?\s+
        WHERE\s+\[?(?P<field>\w+)\]?\s*(?P<op>>=|=)\s*'(?P<value>(?:[^']|'')*)'\s*;?\s*$""",
    re.IGNORECASE | re.VERBOSE,
)


@dataclass
class Quirks:
    """Misbehaviour of the next N answers (counted down as they fire)."""

    missing_id: int = 0  # POST answers 200 with an empty body
    wrong_id: int = 0  # POST answers the id of record 1 (a damaged answer that still parses)
    cut_body: int = 0  # GET answers with the body cut in half (Content-Length to match)
    is_error: int = 0  # API calls answer 200 with an IsError body
    is_error_method: str | None = None  # only calls of this method (None: any)
    refresh_error: int = 0  # POST /Auth/ApiRefresh answers 500


class WebCrmSandbox(Sandbox):
    kind = "webcrm"

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        faults: Faults | None = None,
        api_tokens: tuple[str, ...] = (SANDBOX_API_TOKEN,),
        rate_limit: int = RATE_LIMIT_CALLS,
    ) -> None:
        super().__init__(clock=clock, faults=faults)
        self.api_tokens = set(api_tokens)
        self.rate_limit = rate_limit
        self.quirks = Quirks()
        # POST /Organisations may answer without the new id (200, empty body): both
        # answers occur, so the sandbox can give either
        self.organisation_post_answers_id = True
        self.tables: dict[str, dict[int, dict[str, Any]]] = {}
        self.next_id: dict[str, int] = {}
        self.access_tokens: dict[str, tuple[str, float]] = {}
        self.refresh_tokens: dict[str, tuple[str, float]] = {}
        self.calls: dict[str, deque[float]] = {}
        self.logins = 0
        self.refreshes = 0
        self.throttled = 0
        self.reset()

    # -- data ---------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.tables = {entity.path: {} for entity in TABLES.values()}
            self.next_id = {entity.path: 1 for entity in TABLES.values()}
            self.access_tokens.clear()
            self.refresh_tokens.clear()
            self.calls.clear()

    def problem(self, status: int, title: str) -> tuple[dict[str, Any], str]:
        body: dict[str, Any] = {"Message": title, "Type": _exception_type(status)}
        if status == 429:
            body["RetryAfterSeconds"] = 1
        return body, "application/json; charset=utf-8"

    def _stamp(self) -> str:
        return self.clock.now().isoformat(timespec="milliseconds")

    def blank(self, entity: Table) -> dict[str, Any]:
        """A record with every field at WebCRM's empty value."""
        record: dict[str, Any] = {}
        for name, column in entity.columns.items():
            if column.kind in ("date", "datetime"):
                record[name] = EMPTY_DATE
            elif column.kind in ("int", "id", "number"):
                record[name] = 0
            elif column.kind == "country":
                record[name] = {"Name": "", "CodeISO": "", "CodeUN": ""}
            else:
                record[name] = ""
        return record

    def insert(self, entity_name: str, values: dict[str, Any]) -> dict[str, Any]:
        """Add a record as a user of WebCRM would (no validation, no API call)."""
        entity = _named(entity_name)
        _known(entity, values)
        with self.lock:
            record_id = self.next_id[entity.path]
            self.next_id[entity.path] += 1
            record = {**self.blank(entity), **values, entity.id_field: record_id}
            now = self._stamp()
            record[entity.created_field] = record[entity.updated_field] = now
            _compute(entity, record)
            self.tables[entity.path][record_id] = record
            return dict(record)

    def edit(self, entity_name: str, record_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a record as a user of WebCRM would; bumps its UpdatedAt."""
        entity = _named(entity_name)
        _known(entity, changes)
        with self.lock:
            record = self.tables[entity.path][int(record_id)]
            record.update(changes)
            record[entity.updated_field] = self._stamp()
            _compute(entity, record)
            return dict(record)

    def records(self, entity_name: str) -> dict[int, dict[str, Any]]:
        with self.lock:
            return {k: dict(v) for k, v in self.tables[_named(entity_name).path].items()}

    def seed(self, count: int, rng_seed: int = 1) -> None:
        from samband import sampledata

        rng = random.Random(rng_seed)
        companies = sampledata.companies(count, rng, "NO")
        people = sampledata.persons(count, rng, "NO", companies)
        goods = sampledata.products(count, rng)
        org_ids = []
        for company in companies:
            org = self.insert(
                "Organisations",
                {
                    "OrganisationName": company["name"],
                    "OrganisationAddress": company["address"],
                    "OrganisationPostCode": company["zip_code"],
                    "OrganisationCity": company["city"],
                    "OrganisationCountry": "Norway" if company["country"] == "NO" else "",
                    "OrganisationTelephone": company["phone"],
                    "OrganisationWww": company["website"],
                    "OrganisationVatNumber": company["vat_number"],
                    "OrganisationStatus": rng.choice(("Customer", "Prospect", "Partner")),
                    "OrganisationType": "Company",
                },
            )
            org_ids.append(org["OrganisationId"])
        for person in people:
            index = person.get("company_index")
            self.insert(
                "Persons",
                {
                    "PersonOrganisationId": org_ids[index] if index is not None else 0,
                    "PersonFirstName": person["first_name"],
                    "PersonLastName": person["last_name"],
                    "PersonEmail": person["email"],
                    "PersonDirectPhone": person["phone"],
                    "PersonMobilePhone": person["mobile"],
                    "PersonTitle": person["title"],
                    "PersonStatus": "Active",
                },
            )
        product_ids = []
        for product in goods:
            stored = self.insert(
                "Products",
                {
                    "ProductComment": f"{product['code']} {product['name']}",
                    "ProductPrice": float(product["unit_price"]),
                    "ProductCostPrice": float(product["unit_cost"]),
                    "ProductQuantity": 1,
                    "ProductVatCode": "25",
                },
            )
            product_ids.append((stored["ProductId"], stored["ProductPrice"]))
        user = self.insert(
            "Users",
            {
                "UserName": "Sandbox Admin",
                "UserEmail": "admin@example.no",
                "UserTelephone": "+47 22 00 00 00",
                "UserTitle": "Administrator",
            },
        )
        for index, org_id in enumerate(org_ids):
            opportunity = self.insert(
                "Opportunities",
                {
                    "OpportunityOrganisationId": org_id,
                    "OpportunityAssignedTo": user["UserId"],
                    "OpportunityDescription": f"Tilbud {index + 1}",
                    "OpportunityLevel": rng.randrange(1, 5),
                    "OpportunityCurrencyName": "NOK",
                    "OpportunityCurrencySymbol": "kr",
                },
            )
            if product_ids:
                product_id, price = rng.choice(product_ids)
                self.insert(
                    "QuotationLines",
                    {
                        "QuotationLineOpportunityId": opportunity["OpportunityId"],
                        "QuotationLineOrganisationId": org_id,
                        "QuotationLineComment": f"Vare {product_id}",
                        "QuotationLinePrice": price,
                        "QuotationLineQuantity": rng.randrange(1, 20),
                        "QuotationLineVatPercentage": 25,
                    },
                )

    # -- plumbing -----------------------------------------------------------------
    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        body, ctype = self.problem(status, message)
        return ExactJSONResponse(body, status_code=status, headers=headers, media_type=ctype)

    def _authorise(self, request: Request) -> Response | str:
        """The application token behind a valid bearer token, or an error answer."""
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        with self.lock:
            entry = self.access_tokens.get(token)
            if entry is None or entry[1] <= self.clock.time():
                return self._error(401, "Authorization has been denied for this request.")
            app_token = entry[0]
            limited = self._throttle(app_token)
        if limited is not None:
            return limited
        return app_token

    def _throttle(self, app_token: str) -> Response | None:
        now = self.clock.time()
        window = self.calls.setdefault(app_token, deque())
        while window and now - window[0] >= RATE_LIMIT_PERIOD:
            window.popleft()
        if len(window) >= self.rate_limit:
            wait = max(1, math.ceil(RATE_LIMIT_PERIOD - (now - window[0])))
            self.throttled += 1
            body = {
                "RetryAfterSeconds": wait,
                "Message": f"API rate limit of {self.rate_limit} requests per minute exceeded",
                "Type": "TooManyRequestsException",
            }
            return ExactJSONResponse(body, status_code=429, headers={"Retry-After": str(wait)})
        window.append(now)
        return None

    def _quirk_is_error(self, method: str = "POST") -> Response | None:
        with self.lock:
            wanted = self.quirks.is_error_method
            if self.quirks.is_error <= 0 or (wanted and wanted.upper() != method.upper()):
                return None
            self.quirks.is_error -= 1
        return ExactJSONResponse(
            {
                "IsError": True,
                "Error": "internal_error",
                "ErrorDescription": "The request could not be processed",
            }
        )

    # -- auth ---------------------------------------------------------------------
    def _issue(self, app_token: str) -> Response:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        now = self.clock.time()
        self.access_tokens[access] = (app_token, now + ACCESS_TOKEN_SECONDS)
        self.refresh_tokens[refresh] = (app_token, now + REFRESH_TOKEN_SECONDS)
        return ExactJSONResponse(
            {
                "AccessToken": access,
                "RefreshToken": refresh,
                "ExpiresIn": ACCESS_TOKEN_SECONDS,
                "TokenType": "Bearer",
                "IsError": False,
                "Error": None,
                "ErrorDescription": None,
            }
        )

    @staticmethod
    def _auth_refusal(error: str, description: str) -> Response:
        body = {
            "AccessToken": None,
            "RefreshToken": None,
            "ExpiresIn": 0,
            "TokenType": None,
            "IsError": True,
            "Error": error,
            "ErrorDescription": description,
        }
        return ExactJSONResponse(body)

    async def api_login(self, request: Request) -> Response:
        quirk = self._quirk_is_error()
        if quirk is not None:
            return quirk
        form = await _form(request)
        code = form.get("authCode") or request.headers.get("authCode") or ""
        with self.lock:
            if code not in self.api_tokens:
                return self._auth_refusal("invalid_grant", "The authCode is not valid")
            self.logins += 1
            return self._issue(code)

    async def api_refresh(self, request: Request) -> Response:
        # the swagger takes the refresh token in a header, not in the form body
        token = request.headers.get("refreshToken", "")
        with self.lock:
            if self.quirks.refresh_error > 0:
                self.quirks.refresh_error -= 1
                return self._error(500, "An error has occurred.")
            entry = self.refresh_tokens.pop(token, None)
            if entry is None or entry[1] <= self.clock.time():
                return self._auth_refusal("invalid_grant", "The refresh token is not valid")
            self.refreshes += 1
            return self._issue(entry[0])

    # -- entities -----------------------------------------------------------------
    def _entity(self, request: Request) -> Table | None:
        return _BY_PATH.get(str(request.path_params["entity"]).lower())

    def _paged(self, request: Request, rows: list[dict[str, Any]]) -> Response:
        try:
            page = int(request.query_params.get("Page", "1"))
            size = int(request.query_params.get("Size", "100"))
        except ValueError:
            return self._error(400, "Page and Size must be whole numbers")
        if page < 1 or not 1 <= size <= MAX_SIZE:
            return self._error(400, f"Page must be at least 1 and Size between 1 and {MAX_SIZE}")
        start = (page - 1) * size
        return self._json(rows[start : start + size])

    def _json(self, body: Any) -> Response:
        """A JSON answer, or half of one while the ``cut_body`` quirk lasts."""
        response = ExactJSONResponse(body)
        with self.lock:
            if self.quirks.cut_body <= 0:
                return response
            self.quirks.cut_body -= 1
        return Response(response.body[: len(response.body) // 2], media_type="application/json")

    def _sorted(self, entity: Table) -> list[dict[str, Any]]:
        table = self.tables[entity.path]
        return [dict(table[key]) for key in sorted(table)]

    async def collection(self, request: Request) -> Response:
        checked = self._authorise(request)
        if isinstance(checked, Response):
            return checked
        quirk = self._quirk_is_error(request.method)
        if quirk is not None:
            return quirk
        entity = self._entity(request)
        if entity is None:
            return self._error(404, f"No resource {request.url.path}")
        if request.method == "GET":
            with self.lock:
                rows = self._sorted(entity)
            return self._paged(request, rows)
        if not entity.writable:
            return self._error(405, f"{entity.path} cannot be written through the API")
        try:
            payload = await exact_json(request)
        except ValueError:
            return self._error(400, "The request body is not valid JSON")
        if request.method == "POST":
            if not isinstance(payload, dict):
                return self._error(400, f"POST /{entity.path} takes one {entity.table} object")
            with self.lock:
                problem = self._validate(entity, payload, creating=True)
                if problem:
                    return self._error(400, problem, None)
                record = self._write(entity, None, payload)
                if self.quirks.missing_id > 0:
                    self.quirks.missing_id -= 1
                    return Response(b"", status_code=200)
                if self.quirks.wrong_id > 0:
                    self.quirks.wrong_id -= 1
                    return ExactJSONResponse(1)
                if entity.path == "Organisations" and not self.organisation_post_answers_id:
                    return Response(b"", status_code=200)
            return ExactJSONResponse(record[entity.id_field])
        # PATCH: bulk upsert
        if not isinstance(payload, list):
            return self._error(400, f"PATCH /{entity.path} takes an array of {entity.table}")
        answers: list[str] = []
        with self.lock:
            for item in payload:
                if not isinstance(item, dict):
                    answers.append("Item is not an object")
                    continue
                record_id = _int(item.get(entity.id_field))
                existing = self.tables[entity.path].get(record_id) if record_id else None
                if record_id and existing is None:
                    answers.append(f"{entity.table} {record_id} was not found")
                    continue
                merged = {**existing, **item} if existing else item
                problem = self._validate(
                    entity, merged, creating=existing is None, existing=existing
                )
                if problem:
                    answers.append(problem)
                    continue
                record = self._write(entity, record_id if existing else None, merged)
                answers.append(str(record[entity.id_field]))
        return ExactJSONResponse(answers)

    async def item(self, request: Request) -> Response:
        checked = self._authorise(request)
        if isinstance(checked, Response):
            return checked
        quirk = self._quirk_is_error(request.method)
        if quirk is not None:
            return quirk
        entity = self._entity(request)
        if entity is None:
            return self._error(404, f"No resource {request.url.path}")
        record_id = _int(request.path_params["id"]) or 0
        with self.lock:
            existing = self.tables[entity.path].get(record_id)
        if existing is None:
            return self._error(404, f"{entity.table} {request.path_params['id']} was not found")
        if request.method == "GET":
            return self._json(dict(existing))
        if request.method == "DELETE":
            if not entity.deletable:
                return self._error(405, "The requested resource does not support DELETE")
            with self.lock:
                self.tables[entity.path].pop(record_id, None)
            return Response(b"", status_code=200)
        if not entity.writable:
            return self._error(405, f"{entity.path} cannot be written through the API")
        try:
            payload = await exact_json(request)
        except ValueError:
            return self._error(400, "The request body is not valid JSON")
        if not isinstance(payload, dict):
            return self._error(400, f"PUT /{entity.path}/{{id}} takes one {entity.table} object")
        with self.lock:
            problem = self._validate(entity, payload, creating=False, existing=existing)
            if problem:
                return self._error(400, problem)
            self._write(entity, record_id, payload)
        return Response(b"", status_code=200)

    async def find_by_update_dates(self, request: Request) -> Response:
        checked = self._authorise(request)
        if isinstance(checked, Response):
            return checked
        entity = self._entity(request)
        # WebCRM's published swagger has FindByUpdateDates for Organisations only; the
        # other entities have FindByCreateDates, which says nothing about edits
        if entity is None or entity.path != "Organisations":
            return self._error(404, f"No resource {request.url.path}")
        start = _parse_when(request.path_params["start"])
        end = _parse_when(request.path_params["end"])
        if start is None or end is None:
            return self._error(400, "start and end must be ISO 8601 date-times")
        with self.lock:
            rows = [
                row
                for row in self._sorted(entity)
                if (when := _parse_when(row[entity.updated_field])) is not None
                and start <= when < end
            ]
        return self._paged(request, rows)

    async def queries(self, request: Request) -> Response:
        checked = self._authorise(request)
        if isinstance(checked, Response):
            return checked
        script = request.query_params.get("script", "")
        match = _QUERY.match(script)
        if match is None:
            return self._error(
                400,
                "Only scripts of the form SELECT * FROM <Table> WHERE <Table>UpdatedAt >= "
                "'<ISO date-time>' or WHERE <Field> = '<text>' are supported by the sandbox",
            )
        entity = _BY_TABLE.get(match["table"].lower())
        if entity is None or not entity.writable:
            return self._error(400, f"Unknown table {match['table']}")
        value = match["value"].replace("''", "'")
        if match["op"] == "=":
            field = next((c for c in entity.columns if c.lower() == match["field"].lower()), None)
            if field is None:
                return self._error(400, f"{entity.table} has no field {match['field']}")
            with self.lock:
                rows = [row for row in self._sorted(entity) if str(row.get(field)) == value]
            return self._paged(request, rows)
        if match["field"].lower() != entity.updated_field.lower():
            return self._error(400, f"Only {entity.updated_field} can be compared with >=")
        since = _parse_when(value)
        if since is None:
            return self._error(400, f"{value!r} is not an ISO 8601 date-time")
        with self.lock:
            rows = [
                row
                for row in self._sorted(entity)
                if (when := _parse_when(row[entity.updated_field])) is not None and when >= since
            ]
        return self._paged(request, rows)

    # -- validation and storage -----------------------------------------------------
    def _validate(
        self,
        entity: Table,
        payload: dict[str, Any],
        creating: bool,
        existing: dict[str, Any] | None = None,
    ) -> str:
        unknown = sorted(name for name in payload if name not in entity.columns)
        if unknown:
            return f"{entity.table} has no field {', '.join(unknown)}"
        for name in entity.fixed:
            was = existing.get(name) if existing is not None else None
            if was and name in payload and payload[name] != was:
                return f"{name} cannot be changed through the API"
        for name, column in entity.columns.items():
            if name not in payload or column.computed:
                continue
            value = payload[name]
            if value is None:
                continue
            if column.kind == "text":
                if not isinstance(value, str):
                    return f"{name} must be a string"
                if column.length and len(value) > column.length:
                    return (
                        f"{name} must be a string with a maximum length of {column.length} "
                        f"(got {len(value)})"
                    )
            elif column.kind in ("int", "id"):
                if isinstance(value, bool) or not isinstance(value, int):
                    return f"{name} must be a whole number"
                if column.parent and value:
                    parent = TABLES[column.parent]
                    if value not in self.tables[parent.path]:
                        return f"{name}: {parent.table} {value} does not exist"
            elif column.kind == "number":
                try:
                    if isinstance(value, bool):
                        raise InvalidOperation
                    Decimal(str(value))
                except InvalidOperation:
                    return f"{name} must be a number"
            elif column.kind in ("date", "datetime") and (
                not isinstance(value, str) or _parse_when(value) is None
            ):
                return f"{name} must be an ISO 8601 date-time"
        for name in entity.required:
            value = payload.get(name)
            if (creating or name in payload) and (not isinstance(value, str) or not value.strip()):
                return f"{name} is required"
        return ""

    def _write(
        self, entity: Table, record_id: int | None, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """Store a whole record (PUT semantics: fields not sent go back to empty)."""
        table = self.tables[entity.path]
        now = self._stamp()
        record = self.blank(entity)
        for name, column in entity.columns.items():
            if name in payload and not column.computed and payload[name] is not None:
                record[name] = payload[name]
        if record_id is None:
            record_id = self.next_id[entity.path]
            self.next_id[entity.path] += 1
            record[entity.created_field] = now
        else:
            record[entity.created_field] = table[record_id][entity.created_field]
            for name in entity.fixed:  # a PUT without it does not take it away
                if payload.get(name) is None:
                    record[name] = table[record_id][name]
        record[entity.id_field] = record_id
        record[entity.updated_field] = now
        _compute(entity, record)
        table[record_id] = record
        return record

    def routes(self) -> list[Route]:
        return [
            Route("/Auth/ApiLogin", self.api_login, methods=["POST"]),
            Route("/Auth/ApiRefresh", self.api_refresh, methods=["POST"]),
            Route("/Queries", self.queries, methods=["GET"]),
            Route(
                "/{entity}/FindByUpdateDates/{start}/{end}",
                self.find_by_update_dates,
                methods=["GET"],
            ),
            Route("/{entity}", self.collection, methods=["GET", "POST", "PATCH"]),
            Route("/{entity}/{id}", self.item, methods=["GET", "PUT", "DELETE"]),
        ]


def _named(name: str) -> Table:
    """An entity by its entity-type name (``Quotationline``) or path (``QuotationLines``)."""
    return TABLES.get(name) or _BY_PATH[name.lower()]


async def _form(request: Request) -> dict[str, str]:
    """An url-encoded form (parsed here: Starlette's own parser needs python-multipart)."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[-1] for key, values in fields.items()}


def _known(entity: Table, values: dict[str, Any]) -> None:
    """A user cannot fill in a field WebCRM does not have either."""
    unknown = sorted(name for name in values if name not in entity.columns)
    if unknown:
        raise ValueError(f"{entity.table} has no field {', '.join(unknown)}")


def _compute(entity: Table, record: dict[str, Any]) -> None:
    if entity.table == "Organisation":
        text = str(record.get("OrganisationCountry") or "").strip()
        name, iso, un = COUNTRIES.get(text.casefold(), (text, "", ""))
        record["OrganisationCountryData"] = {"Name": name, "CodeISO": iso, "CodeUN": un}
    if entity.table == "Person":
        first, last = record.get("PersonFirstName") or "", record.get("PersonLastName") or ""
        record["PersonName"] = f"{first} {last}".strip()


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _parse_when(text: str) -> datetime | None:
    text = text.strip()
    if text.startswith("0001-01-01"):
        return datetime(1, 1, 1, tzinfo=UTC)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _exception_type(status: int) -> str:
    return {
        400: "ValidationException",
        401: "UnauthorizedException",
        404: "NotFoundException",
        405: "MethodNotAllowedException",
        429: "TooManyRequestsException",
    }.get(status, "ServerException")


__all__ = ["SANDBOX_API_TOKEN", "Quirks", "WebCrmSandbox"]
