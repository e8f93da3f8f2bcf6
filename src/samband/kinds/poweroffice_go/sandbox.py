"""A local PowerOffice GO v2 API: ``samband sandbox poweroffice-go --port 8080``.

Faithful where the connector depends on it (``../shared/reference/poweroffice-go.md`` and
the v2 OpenAPI file):

* ``POST /OAuth/Token`` (client credentials: Basic application:client key, and the
  ``Ocp-Apim-Subscription-Key``), 20-minute tokens on ``self.clock`` so tests can move
  time; every API call needs ``Authorization: Bearer`` and the subscription key.
* The API under ``/v2``: PascalCase JSON with the v2 DTO shapes (unknown properties are
  refused with 400), bare JSON arrays, ``204`` for an empty list, ``PageNumber`` /
  ``PageSize`` (max 20 000, default 5 000) / ``Fields`` / ``OrderBy``, the
  ``X-Pagination`` header (``nextPageLink`` absent on the last page), the filters
  ``lastChangedDateTimeOffsetGreaterThan`` (strictly greater), ``externalImportReference``,
  ``externalCodes``, ``contactIds``, ``codes`` and friends.
* ``PATCH`` takes an RFC 6902 JSON Patch (all six operations; read-only properties are
  refused); ``POST`` answers 201 with the record (``/Products``: 200); sales orders are
  created through ``POST /SalesOrders/Complete`` with their lines.
* ``DELETE`` answers 409 when the record is in use (a customer with projects, contact
  persons or orders; a department with projects or employees; ...).
* A contact's ``LastChangedDateTimeOffset`` does not move when its address or contact
  persons change (the address has its own timestamp), as in PowerOffice GO.
* 10 requests/second per subscription key on ``self.clock``; over it ``429`` with
  ``Retry-After: 1``.  ProblemDetails error bodies (``problem_case="camel"`` switches
  their keys to camelCase, which real answers also use).
* Several client companies (:meth:`PowerOfficeSandbox.add_client`, or
  ``POST /_sandbox/clients {"client_key": ...}``): an integrator has one
  application key and one subscription key, and each client company that grants it
  access has its own client key and its own data.  A token is the client's whose key
  asked for it, and every call with that token sees and changes that client's data
  only; the rate limit counts every call of the subscription key, whatever the client.
  Each client numbers its own records (ids start over per client: an assumption, and
  the harder case for a caller that would mix two clients' ids up).

Default keys: application ``sandbox-application-key``, client ``sandbox-client-key``,
subscription ``sandbox-subscription-key``.

Not in the v2 file, from a public v2 client verified against the demo environment
(sjurebass/Poweroffice-mcp-extended, ``src/tools/time-tracking.ts``): the time-tracking
activity catalogues ``/TimeTracking/ActivityTime`` and ``/TimeTracking/ActivityItem``
(``Name``, ``IsActive``, ``ProductId``, ``ProjectId``; a list leaves inactive activities
out unless ``includeInactive=true``, an assumption).  v1's ``/ProjectActivities`` and
``/TimeTrackingActivities`` do not exist in v2: 404, as any other unknown route.

``order_by="ignore"`` (or ``"shuffle"``) makes lists disregard ``OrderBy`` and answer in
id order (or in a fixed order unrelated to time), as an API that does not honour it
would: for tests that keyset paging never skips a row.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import random
import secrets
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from samband import exactjson
from samband.sandbox._base import ADMIN_PREFIX, Clock, Faults, Sandbox

MODIFIED = "LastChangedDateTimeOffset"
TOKEN_LIFETIME = 1200
MAX_PAGE_SIZE = 20000
DEFAULT_PAGE_SIZE = 5000
JSON = "application/json"

Handler = Callable[[Request], Awaitable[Response]]


class ApiProblem(Exception):
    """An error answer: status, title, detail."""

    def __init__(self, status: int, title: str, detail: str | None = None) -> None:
        super().__init__(title)
        self.status, self.title, self.detail = status, title, detail


@dataclass
class Exchange:
    """One request and its answer, as the sandbox saw them (``recording = True``)."""

    method: str
    path: str
    query: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""

    @property
    def params(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.query, keep_blank_values=True).items()}

    def json(self) -> Any:
        return orjson.loads(self.response_body) if self.response_body else None


# -- the collections and their DTO shapes ---------------------------------------------
_ADDRESS = ("AddressLine1", "AddressLine2", "City", "ZipCode", "CountryCode")
_CONTACT_ADDRESS = (*_ADDRESS, "Id", "ExternalCode", MODIFIED)
_CONTACT_FIELDS = (
    "Id",
    "Number",
    "Name",
    "FirstName",
    "LastName",
    "IsPerson",
    "LegalName",
    "OrganizationNumber",
    "EmailAddress",
    "PhoneNumber",
    "WebsiteUrl",
    "CurrencyCode",
    "DateOfBirth",
    "IsArchived",
    "IsActive",
    "ExternalImportReference",
    "ExternalNumber",
    "ContactGroupIds",
    "ContactCreatedDateTimeOffset",
    "MailAddress",
    MODIFIED,
)


@dataclass(frozen=True)
class _Kind:
    name: str  # path segment
    label: str  # in messages
    fields: tuple[str, ...]
    read_only: frozenset[str]
    created_field: str = "CreatedDateTimeOffset"
    contact: bool = False
    uuid_ids: bool = False
    create_status: int = 201
    number_field: str | None = None
    # lower-case query parameter → (field, how)
    filters: dict[str, tuple[str, str]] = field(default_factory=dict)
    # the route under /v2 when it is not the name (``TimeTracking/ActivityTime``)
    path: str = ""
    # a list leaves inactive records out unless ``includeInactive=true``
    hides_inactive: bool = False
    # properties a create must give
    required: tuple[str, ...] = ()

    @property
    def route(self) -> str:
        return self.path or self.name

    @cached_property
    def names(self) -> dict[str, str]:
        """Field names by their lower-case spelling (names match case-insensitively)."""
        return {name.lower(): name for name in self.fields}

    def canonical(self) -> dict[str, str]:
        return self.names


_RO_CONTACT = frozenset(
    {"Id", MODIFIED, "IsActive", "ContactCreatedDateTimeOffset", "SubledgerAccountId"}
)
_CONTACT_FILTERS = {
    "externalimportreference": ("ExternalImportReference", "eq"),
    "externalnos": ("ExternalNumber", "ranges"),
    "contactgroupids": ("ContactGroupIds", "ignore"),
}

ACTIVITY_KINDS = ("ActivityTime", "ActivityItem")

KINDS: dict[str, _Kind] = {
    k.name: k
    for k in (
        _Kind(
            "Customers",
            "Customer",
            (
                *_CONTACT_FIELDS,
                "InvoiceEmailAddress",
                "CustomerSince",
                "DepartmentId",
                "SalesPersonEmployeeId",
                "CustomerCreatedDateTimeOffset",
            ),
            _RO_CONTACT | {"CustomerCreatedDateTimeOffset"},
            created_field="CustomerCreatedDateTimeOffset",
            contact=True,
            number_field="Number",
            filters={
                **_CONTACT_FILTERS,
                "customernos": ("Number", "ranges"),
                "customercreateddatetimeoffsetgreaterthan": (
                    "CustomerCreatedDateTimeOffset",
                    "after",
                ),
            },
        ),
        _Kind(
            "Suppliers",
            "Supplier",
            (*_CONTACT_FIELDS, "SupplierCreatedDateTimeOffset"),
            _RO_CONTACT | {"SupplierCreatedDateTimeOffset"},
            created_field="SupplierCreatedDateTimeOffset",
            contact=True,
            number_field="Number",
            filters={
                **_CONTACT_FILTERS,
                "suppliernos": ("Number", "ranges"),
                "suppliercreateddatetimeoffsetgreaterthan": (
                    "SupplierCreatedDateTimeOffset",
                    "after",
                ),
            },
        ),
        _Kind(
            "Employees",
            "Employee",
            (
                *(
                    f
                    for f in _CONTACT_FIELDS
                    if f
                    not in (
                        "Name",
                        "IsPerson",
                        "LegalName",
                        "CurrencyCode",
                        "OrganizationNumber",
                        "IsActive",
                        "WebsiteUrl",
                    )
                ),
                "JobTitle",
                "DepartmentId",
                "ManagerEmployeeId",
                "HiredDate",
                "StartDate",
                "EndDate",
                "EmployeeCreatedDateTimeOffset",
            )[:],
            _RO_CONTACT | {"EmployeeCreatedDateTimeOffset"},
            created_field="EmployeeCreatedDateTimeOffset",
            contact=True,
            number_field="Number",
            filters={**_CONTACT_FILTERS, "employeenos": ("Number", "ranges")},
        ),
        _Kind(
            "ContactPersons",
            "Contact person",
            (
                "Id",
                "ContactId",
                "FirstName",
                "LastName",
                "EmailAddress",
                "PhoneNumber",
                "Title",
                "IsActive",
                "IsDefault",
                "ExternalCode",
                "MailAddress",
                "CreatedDateTimeOffset",
                MODIFIED,
            ),
            frozenset({"Id", "ContactId", "CreatedDateTimeOffset", MODIFIED}),
            filters={
                "contactids": ("ContactId", "list"),
                "externalcodes": ("ExternalCode", "list"),
                "createddatetimeoffsetgreaterthan": ("CreatedDateTimeOffset", "after"),
            },
        ),
        _Kind(
            "Departments",
            "Department",
            (
                "Id",
                "Code",
                "Name",
                "IsActive",
                "ManagerEmployeeId",
                "ManagerEmployeeNo",
                "CreatedDateTimeOffset",
                MODIFIED,
            ),
            frozenset(
                {"Id", "ManagerEmployeeId", "ManagerEmployeeNo", "CreatedDateTimeOffset", MODIFIED}
            ),
            filters={
                "codes": ("Code", "list"),
                "isactive": ("IsActive", "bool"),
                "name": ("Name", "eq"),
                "createddatetimeoffsetgreaterthan": ("CreatedDateTimeOffset", "after"),
            },
        ),
        _Kind(
            "Projects",
            "Project",
            (
                "Id",
                "Code",
                "Name",
                "CustomerId",
                "CustomerNo",
                "ContactPersonId",
                "DepartmentId",
                "ProjectManagerEmployeeId",
                "ParentProjectId",
                "ProjectStatus",
                "StartDate",
                "EndDate",
                "IsActive",
                "IsBillable",
                "IsInternal",
                "BillableRate",
                "BudgetedHours",
                "FixedPrice",
                "Progress",
                "ContractNo",
                "PurchaseOrderNo",
                "ExternalNumber",
                "CreatedDateTimeOffset",
                MODIFIED,
            ),
            frozenset({"Id", "CustomerNo", "CreatedDateTimeOffset", MODIFIED}),
            filters={
                "projectcodes": ("Code", "list"),
                "status": ("ProjectStatus", "eq"),
                "name": ("Name", "eq"),
                "createddatetimeoffsetgreaterthan": ("CreatedDateTimeOffset", "after"),
            },
        ),
        _Kind(
            "Products",
            "Product",
            (
                "Id",
                "Code",
                "Name",
                "Description",
                "ProductType",
                "UnitPrice",
                "UnitCost",
                "UnitOfMeasureCode",
                "Gtin",
                "IsStockItem",
                "StockOnHand",
                "StockAvailable",
                "ProductGroupId",
                "IsArchived",
                "CreatedDateTimeOffset",
                MODIFIED,
            ),
            frozenset({"Id", "CreatedDateTimeOffset", "StockAvailable", MODIFIED}),
            create_status=200,
            filters={
                "codes": ("Code", "list"),
                "isarchived": ("IsArchived", "bool"),
                "names": ("Name", "list"),
                "type": ("ProductType", "eq"),
                "createddatetimeoffsetgreaterthan": ("CreatedDateTimeOffset", "after"),
            },
        ),
        _Kind(
            "ProductGroups",
            "Product group",
            (
                "Id",
                "Code",
                "Name",
                "Description",
                "UnitPrice",
                "UnitCost",
                "IsArchived",
                "CreatedDateTimeOffset",
                MODIFIED,
            ),
            frozenset({"Id", "CreatedDateTimeOffset", MODIFIED}),
            required=("Name",),
            filters={
                "codes": ("Code", "list"),
                "isarchived": ("IsArchived", "bool"),
                "names": ("Name", "list"),
                "createddatetimeoffsetgreaterthan": ("CreatedDateTimeOffset", "after"),
            },
        ),
        _Kind(
            "SalesOrders",
            "Sales order",
            (
                "Id",
                "SalesOrderNo",
                "SalesOrderStatus",
                "CustomerId",
                "CustomerNo",
                "SalesOrderDate",
                "DeliveryDate",
                "CurrencyCode",
                "CustomerReference",
                "PurchaseOrderReference",
                "ContractNo",
                "DepartmentId",
                "ProjectId",
                "SalesPersonEmployeeId",
                "ExternalImportReference",
                "CustomerReferenceContactPersonId",
                "RelatedInvoiceNo",
                "NetAmount",
                "TotalAmount",
                "LineCount",
                "IsCreatedByCurrentIntegration",
                "CreatedDateTimeOffset",
                MODIFIED,
            ),
            frozenset(
                {
                    "Id",
                    "SalesOrderNo",
                    "CustomerNo",
                    "NetAmount",
                    "TotalAmount",
                    "LineCount",
                    "IsCreatedByCurrentIntegration",
                    "CreatedDateTimeOffset",
                    MODIFIED,
                }
            ),
            uuid_ids=True,
            filters={
                "orderstatus": ("SalesOrderStatus", "eq"),
                "onlycreatedbycurrentintegration": ("IsCreatedByCurrentIntegration", "only"),
            },
        ),
        *(
            _Kind(
                name,
                "Activity",
                ("Id", "Name", "IsActive", "ProductId", "ProjectId", MODIFIED),
                frozenset({"Id", MODIFIED}),
                created_field="",
                path=f"TimeTracking/{name}",
                hides_inactive=True,
                required=("Name",),
            )
            for name in ACTIVITY_KINDS
        ),
    )
}

# reference properties checked on every write: (property, collection it points into)
_REFERENCES = (
    ("DepartmentId", "Departments"),
    ("ProjectId", "Projects"),
    ("ProductId", "Products"),
    ("ProductGroupId", "ProductGroups"),
    ("CustomerReferenceContactPersonId", "ContactPersons"),
)

_LINE_FIELDS = (
    "Id",
    "SalesOrderId",
    "ProductId",
    "ProductCode",
    "Description",
    "Quantity",
    "ProductUnitPrice",
    "ProductUnitCost",
    "Allowance",
    "SortOrder",
    "LineType",
    "ExternalImportReference",
    "NetAmount",
    "VatAmount",
    "VatRate",
    "TotalAmount",
)
_LINE_RO = frozenset(
    {"Id", "SalesOrderId", "ProductCode", "NetAmount", "VatAmount", "VatRate", "TotalAmount"}
)
VAT_RATE = 0.25


def _stamp(moment: datetime) -> str:
    """.NET DateTimeOffset style, 7 fractional digits, UTC: sorts as text."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}0Z"


def _parse_time(text: str) -> str:
    try:
        value = datetime.fromisoformat(text.strip().replace(" ", "T", 1).replace("Z", "+00:00"))
    except ValueError:
        # "2021-09-25 08:03:00.1234567 -00:00" (the spec's example form)
        parts = text.strip().rsplit(" ", 1)
        try:
            value = datetime.fromisoformat("T".join(parts[0].split(" ", 1)) + parts[1])
        except (ValueError, IndexError):
            raise ApiProblem(
                400, "Unable to cast object(s)", f"{text!r} is not a date-time"
            ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return _stamp(value)


def _in_ranges(value: Any, spec: str) -> bool:
    if value is None:
        return False
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        low, dash, high = part.partition("-")
        try:
            if not dash and int(low) == value:
                return True
            if dash and int(low or 0) <= value and (not high.strip() or value <= int(high)):
                return True
        except ValueError:
            raise ApiProblem(400, "Unable to cast object(s)", f"{spec!r} is not a range") from None
    return False


# -- JSON Patch (RFC 6902) ----------------------------------------------------------------
class PatchError(ApiProblem):
    def __init__(self, detail: str) -> None:
        super().__init__(400, "Invalid JSON Patch document", detail)


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"path {pointer!r} must start with '/'")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _key(container: dict[str, Any], token: str) -> str:
    """Property names match case-insensitively, as in the .NET API."""
    if token in container:
        return token
    lowered = {k.lower(): k for k in container}
    return lowered.get(token.lower(), token)


def _parent(doc: Any, tokens: list[str], pointer: str) -> Any:
    current = doc
    for token in tokens[:-1]:
        if isinstance(current, dict):
            key = _key(current, token)
            if key not in current or current[key] is None:
                raise PatchError(f"the target location {pointer!r} does not exist")
            current = current[key]
        elif isinstance(current, list):
            current = current[_index(current, token, pointer)]
        else:
            raise PatchError(f"the target location {pointer!r} does not exist")
    return current


def _index(items: list[Any], token: str, pointer: str, *, adding: bool = False) -> int:
    if adding and token == "-":
        return len(items)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"{token!r} in {pointer!r} is not an array index")
    index = int(token)
    if index > len(items) or (not adding and index == len(items)):
        raise PatchError(f"index {index} in {pointer!r} is out of bounds")
    return index


def _get(doc: Any, pointer: str) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        key = _key(parent, last)
        if key not in parent:
            raise PatchError(f"the target location {pointer!r} does not exist")
        return parent[key]
    if isinstance(parent, list):
        return parent[_index(parent, last, pointer)]
    raise PatchError(f"the target location {pointer!r} does not exist")


def _add(doc: Any, pointer: str, value: Any) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        return value
    parent = _parent(doc, tokens, pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[_key(parent, last)] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, pointer, adding=True), value)
    else:
        raise PatchError(f"the target location {pointer!r} does not exist")
    return doc


def _replace(doc: Any, pointer: str, value: Any) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        return value
    parent = _parent(doc, tokens, pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        key = _key(parent, last)
        if key not in parent:
            raise PatchError(f"the target location {pointer!r} does not exist")
        parent[key] = value
    elif isinstance(parent, list):
        parent[_index(parent, last, pointer)] = value
    else:
        raise PatchError(f"the target location {pointer!r} does not exist")
    return doc


def _remove(doc: Any, pointer: str) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        raise PatchError("the whole document cannot be removed")
    parent = _parent(doc, tokens, pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        key = _key(parent, last)
        if key not in parent:
            raise PatchError(f"the target location {pointer!r} does not exist")
        del parent[key]
    elif isinstance(parent, list):
        del parent[_index(parent, last, pointer)]
    else:
        raise PatchError(f"the target location {pointer!r} does not exist")
    return doc


def apply_patch(document: Any, operations: Any) -> Any:
    """Apply an RFC 6902 patch to a copy of ``document``; raise :class:`PatchError`."""
    if not isinstance(operations, list):
        raise PatchError("a JSON Patch document is an array of operations")
    doc = copy.deepcopy(document)
    for number, operation in enumerate(operations):
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise PatchError(f"operation {number} needs 'op' and 'path'")
        op, path = str(operation["op"]).lower(), str(operation["path"])
        if op in ("add", "replace", "test") and "value" not in operation:
            raise PatchError(f"operation {number} ({op}) needs a 'value'")
        if op == "add":
            doc = _add(doc, path, copy.deepcopy(operation["value"]))
        elif op == "remove":
            doc = _remove(doc, path)
        elif op == "replace":
            doc = _replace(doc, path, copy.deepcopy(operation["value"]))
        elif op in ("move", "copy"):
            source = operation.get("from")
            if not isinstance(source, str):
                raise PatchError(f"operation {number} ({op}) needs 'from'")
            if op == "move" and (path + "/").startswith(source + "/") and path != source:
                raise PatchError(f"cannot move {source!r} into its own child {path!r}")
            value = copy.deepcopy(_get(doc, source))
            if op == "move":
                doc = _remove(doc, source)
            doc = _add(doc, path, value)
        elif op == "test":
            if _get(doc, path) != operation["value"]:
                raise PatchError(f"test failed: {path!r} is not {operation['value']!r}")
        else:
            raise PatchError(f"unknown operation {op!r}")
    return doc


# -- request log ----------------------------------------------------------------------------
class _Recorder:
    """Outermost ASGI layer: records every API exchange while ``box.recording`` is on."""

    def __init__(self, app: ASGIApp, box: PowerOfficeSandbox) -> None:
        self.app, self.box = app, box

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.box.recording
            or scope["path"].startswith(ADMIN_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        exchange = Exchange(
            scope["method"],
            scope["path"],
            scope.get("query_string", b"").decode("latin-1"),
            {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
            b"",
        )
        # logged before the answer goes out, so a client that has its answer finds it here
        self.box.log.append(exchange)

        async def recv() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                exchange.request_body += message.get("body", b"")
            return message

        async def snd(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                exchange.response_headers = {
                    k.decode("latin-1").lower(): v.decode("latin-1")
                    for k, v in message.get("headers", [])
                }
            elif message["type"] == "http.response.body":
                exchange.response_body += message.get("body", b"")
            await send(message)

        await self.app(scope, recv, snd)


# -- the sandbox ----------------------------------------------------------------------------
class _Client:
    """One client company's data: its records, sales order lines, ids and numbers."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[Any, dict[str, Any]]] = {name: {} for name in KINDS}
        self.lines: dict[str, dict[str, dict[str, Any]]] = {}
        self.ids = itertools.count(1001)
        self.contact_ids = itertools.count(100001)
        self.numbers: dict[str, itertools.count[int]] = {
            "Customers": itertools.count(10000),
            "Suppliers": itertools.count(20000),
            "Employees": itertools.count(1),
            "SalesOrders": itertools.count(1),
        }


class PowerOfficeSandbox(Sandbox):
    kind = "poweroffice-go"

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        faults: Faults | None = None,
        application_key: str = "sandbox-application-key",
        client_key: str = "sandbox-client-key",
        subscription_key: str = "sandbox-subscription-key",
        rate_limit: int = 10,
        token_lifetime: int = TOKEN_LIFETIME,
        problem_case: str = "pascal",
        order_by: str = "honour",
    ) -> None:
        super().__init__(clock=clock, faults=faults)
        self.application_key = application_key
        self.client_key = client_key  # the default client: calls outside a request see it
        self.clients = {(application_key, client_key)}
        self._data: dict[str, _Client] = {client_key: _Client()}
        # the client whose token the request being answered carries
        self._acting: ContextVar[str | None] = ContextVar(f"poweroffice-{id(self)}", default=None)
        self.subscription_keys = {subscription_key}
        self.rate_limit = rate_limit
        self.token_lifetime = token_lifetime
        self.problem_case = problem_case
        if order_by not in ("honour", "ignore", "shuffle"):
            raise ValueError(f"order_by is honour, ignore or shuffle, not {order_by!r}")
        # "ignore"/"shuffle": lists disregard OrderBy, as an API that does not honour it
        self.order_by = order_by
        self.recording = False
        self.log: list[Exchange] = []
        self.tokens_issued = 0
        self.throttled = 0
        self._tokens: dict[str, tuple[float, str]] = {}  # token → (expires, client key)
        self._hits: dict[str, deque[float]] = {}
        self.reset()

    # -- state ----------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every client's records (the clients and their keys stay)."""
        with self.lock:
            self._data = {key: _Client() for key in self._data}
            self._last_stamp = ""

    def add_client(self, client_key: str, *, application_key: str | None = None) -> None:
        """A client company that grants the integration access: its own ``client_key``
        and its own, empty data; the same application key (default: the sandbox's) and
        subscription key, so the same rate limit, as every other client."""
        with self.lock:
            self.clients.add((application_key or self.application_key, client_key))
            self._data.setdefault(client_key, _Client())

    @contextmanager
    def as_client(self, client_key: str) -> Iterator[None]:
        """Within the block, :meth:`records`, :meth:`insert`, :meth:`edit`, :meth:`remove`
        and :meth:`seed` work on ``client_key``'s data (default: the sandbox's client)."""
        if client_key not in self._data:
            raise KeyError(f"no client {client_key!r}: add_client first")
        token = self._acting.set(client_key)
        try:
            yield
        finally:
            self._acting.reset(token)

    def _client(self) -> _Client:
        return self._data[self._acting.get() or self.client_key]

    @property
    def tables(self) -> dict[str, dict[Any, dict[str, Any]]]:
        """The records of the client acting now, by collection and id."""
        return self._client().tables

    @property
    def lines(self) -> dict[str, dict[str, dict[str, Any]]]:
        return self._client().lines

    def now(self) -> str:
        """A timestamp for a write, strictly after the previous one."""
        stamp = _stamp(self.clock.now())
        if stamp <= self._last_stamp:
            last = datetime.fromisoformat(self._last_stamp[:26] + "+00:00")
            stamp = _stamp(last + timedelta(microseconds=1))
        self._last_stamp = stamp
        return stamp

    def records(self, collection: str, client: str | None = None) -> dict[Any, dict[str, Any]]:
        """The live records of a collection (``"Customers"``), by id (tests, demos), of
        ``client`` (a client key; default: the client acting now)."""
        if client is not None:
            return self._data[client].tables[collection]
        return self.tables[collection]

    def insert(self, collection: str, values: dict[str, Any]) -> dict[str, Any]:
        """Create a record as a user of PowerOffice GO would (no API call)."""
        with self.lock:
            record = self._new(KINDS[collection], values, by_integration=False)
            self.tables[collection][record["Id"]] = record
            return record

    def edit(self, collection: str, record_id: Any, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a record as a user would: ``{"Name": ..., "MailAddress.City": ...}``."""
        with self.lock:
            kind = KINDS[collection]
            old = self.tables[collection][record_id]
            new = copy.deepcopy(old)
            for path, value in changes.items():
                target = new
                parts = path.split(".")
                for part in parts[:-1]:
                    target = target.setdefault(part, {})
                target[parts[-1]] = value
            self._store_changed(kind, old, new)
            return new

    def remove(self, collection: str, record_id: Any) -> None:
        with self.lock:
            del self.tables[collection][record_id]

    # -- routes ---------------------------------------------------------------------
    @property
    def app(self) -> ASGIApp:
        if self._app is None:
            self._app = _Recorder(super().app, self)
        return self._app

    def problem(self, status: int, title: str) -> tuple[dict[str, Any], str]:
        return self._problem_body(status, title, None), JSON

    def _problem_body(self, status: int, title: str, detail: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Type": f"https://httpstatuses.io/{status}",
            "Title": title,
            "Status": status,
        }
        if detail is not None:
            body["Detail"] = detail
        if self.problem_case == "camel":
            body = {k[0].lower() + k[1:]: v for k, v in body.items()}
        return body

    def routes(self) -> list[BaseRoute]:  # type: ignore[override]
        api: list[BaseRoute] = [
            Route("/SalesOrders/Complete", self._wrap(self._create_order), methods=["POST"]),
            Route(
                "/SalesOrders/{id}/Complete", self._wrap(self._get_complete_order), methods=["GET"]
            ),
            Route(
                "/SalesOrders/{id}/Lines",
                self._wrap(self._order_lines),
                methods=["GET", "POST"],
            ),
            Route(
                "/SalesOrders/{id}/Lines/{line}",
                self._wrap(self._order_line),
                methods=["GET", "PATCH", "DELETE"],
            ),
            Route("/ContactPersons", self._wrap(self._list("ContactPersons")), methods=["GET"]),
            Route(
                "/ContactPersons/{contact}",
                self._wrap(self._create("ContactPersons")),
                methods=["POST"],
            ),
            Route(
                "/ContactPersons/{contact}/{id}",
                self._wrap(self._item("ContactPersons")),
                methods=["GET", "PATCH", "DELETE"],
            ),
        ]
        for name in KINDS:
            if name == "ContactPersons":
                continue
            methods = ["GET"] if name == "SalesOrders" else ["GET", "POST"]
            route = KINDS[name].route
            api.append(Route(f"/{route}", self._wrap(self._collection(name)), methods=methods))
            api.append(
                Route(
                    f"/{route}/{{id}}",
                    self._wrap(self._item(name)),
                    methods=["GET", "PATCH", "DELETE"],
                )
            )
        return [
            Route(f"{ADMIN_PREFIX}/clients", self._clients_endpoint, methods=["POST"]),
            Route("/OAuth/Token", self._token_endpoint, methods=["POST"]),
            Route("/Demo/OAuth/Token", self._token_endpoint, methods=["POST"]),
            Mount("/v2", routes=api),
            Mount("/Demo/v2", routes=api),
        ]

    # -- auth, limits, errors ----------------------------------------------------------
    def _answer(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None
    ) -> Response:
        content = b"" if body is None else exactjson.dumps(body)
        return Response(
            content,
            status_code=status,
            headers=headers,
            media_type=JSON if body is not None else None,
        )

    def _problem(self, exc: ApiProblem, headers: dict[str, str] | None = None) -> Response:
        return self._answer(
            exc.status, self._problem_body(exc.status, exc.title, exc.detail), headers
        )

    def _throttle(self, key: str) -> Response | None:
        now = self.clock.time()
        hits = self._hits.setdefault(key, deque())
        while hits and now - hits[0] >= 1.0:
            hits.popleft()
        if len(hits) >= self.rate_limit:
            self.throttled += 1
            return self._problem(
                ApiProblem(
                    429,
                    "Too Many Requests",
                    f"Rate limit of {self.rate_limit} requests per second exceeded",
                ),
                {"Retry-After": "1"},
            )
        hits.append(now)
        return None

    def _guard(self, request: Request) -> Response | str:
        """The refusal of a call, or the client key its token belongs to."""
        key = request.headers.get("ocp-apim-subscription-key")
        if key not in self.subscription_keys:
            return self._answer(
                401,
                {
                    "statusCode": 401,
                    "message": "Access denied due to missing or invalid subscription key.",
                },
            )
        with self.lock:
            limited = self._throttle(str(key))
            if limited is not None:
                return limited
            auth = request.headers.get("authorization", "")
            token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
            expires, client = self._tokens.get(token, (0.0, ""))
            if expires <= self.clock.time():
                return self._problem(
                    ApiProblem(
                        401, "Unauthorized", "The access token is missing, invalid or expired"
                    )
                )
        return client

    def _wrap(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            self.requests += 1
            client = self._guard(request)
            if isinstance(client, Response):
                return client
            acting = self._acting.set(client)  # this request's task only
            try:
                return await handler(request)
            except ApiProblem as exc:
                return self._problem(exc)
            finally:
                self._acting.reset(acting)

        return endpoint

    async def _clients_endpoint(self, request: Request) -> Response:
        """``POST /_sandbox/clients {"client_key": ...}``: :meth:`add_client`."""
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            body = None
        key = body.get("client_key") if isinstance(body, dict) else None
        if not isinstance(key, str) or not key.strip():
            return self._answer(400, {"title": "give the new client's key as client_key"})
        self.add_client(key.strip())
        return self._answer(201, {"added": True})

    async def _token_endpoint(self, request: Request) -> Response:
        self.requests += 1
        key = request.headers.get("ocp-apim-subscription-key")
        if key not in self.subscription_keys:
            return self._answer(
                401,
                {"statusCode": 401, "message": "Access denied due to invalid subscription key."},
            )
        with self.lock:
            limited = self._throttle(str(key))
        if limited is not None:
            return limited
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        if form.get("grant_type", [""])[0] != "client_credentials":
            return self._answer(400, {"error": "unsupported_grant_type"})
        auth = request.headers.get("authorization", "")
        try:
            decoded = (
                base64.b64decode(auth[6:].strip()).decode() if auth[:6].lower() == "basic " else ""
            )
        except (ValueError, UnicodeDecodeError):
            decoded = ""
        application, _, client = decoded.partition(":")
        if (application, client) not in self.clients:
            return self._answer(
                400,
                {
                    "error": "invalid_client",
                    "error_description": "The application key or client key is not valid",
                },
            )
        token = secrets.token_urlsafe(32)
        with self.lock:
            self._tokens[token] = (self.clock.time() + self.token_lifetime, client)
            self.tokens_issued += 1
        return self._answer(
            200,
            {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime},
        )

    # -- helpers ------------------------------------------------------------------------
    @staticmethod
    async def _body(request: Request, *, patch: bool = False) -> Any:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if patch and ctype != "application/json-patch+json":
            raise ApiProblem(
                415,
                "Unsupported Media Type",
                "PATCH takes a JSON Patch document (application/json-patch+json)",
            )
        if not patch and not (
            ctype in ("application/json", "text/json") or ctype.endswith("+json")
        ):
            raise ApiProblem(415, "Unsupported Media Type", f"{ctype or 'no content type'}")
        try:
            # amounts are .NET decimals: every digit sent is kept
            return exactjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise ApiProblem(400, "Invalid request body", "the body is not JSON") from None

    def _id(self, kind: _Kind, raw: str) -> Any:
        if kind.uuid_ids:
            try:
                return str(uuid.UUID(raw))
            except ValueError:
                raise ApiProblem(
                    400, "Unable to cast object(s)", f"{raw!r} is not a UUID"
                ) from None
        if not raw.lstrip("-").isdigit():
            raise ApiProblem(400, "Unable to cast object(s)", f"{raw!r} is not a number")
        return int(raw)

    def _find(self, kind: _Kind, raw: str) -> dict[str, Any]:
        record = self.tables[kind.name].get(self._id(kind, raw))
        if record is None:
            raise ApiProblem(
                404, "Object(s) not found", f"Could not find {kind.label.lower()} with id = {raw}."
            )
        return record

    def _new_id(self, kind: _Kind) -> Any:
        if kind.uuid_ids:
            return str(uuid.uuid4())
        if kind.contact:
            return next(self._client().contact_ids)
        return next(self._client().ids)

    def _new(self, kind: _Kind, values: dict[str, Any], *, by_integration: bool) -> dict[str, Any]:
        names = kind.canonical()
        record: dict[str, Any] = dict.fromkeys(kind.fields)
        for key, value in values.items():
            name = names.get(key.lower())
            if name is None:
                raise ApiProblem(
                    400, f"{kind.label} validation error(s)", f"Unknown property {key!r}."
                )
            if name in kind.read_only and name != "ContactId":
                continue
            record[name] = value
        now = self.now()
        record["Id"] = self._new_id(kind)
        record[MODIFIED] = now
        if kind.created_field:
            record[kind.created_field] = now
        if kind.contact:
            record["ContactCreatedDateTimeOffset"] = now
            address = dict.fromkeys(_CONTACT_ADDRESS)
            given = values.get("MailAddress") or {}
            if not isinstance(given, dict):
                raise ApiProblem(
                    400, f"{kind.label} validation error(s)", "MailAddress is an object"
                )
            lowered = {a.lower(): a for a in (*_ADDRESS, "ExternalCode")}
            for key, value in given.items():
                if key.lower() not in lowered:
                    raise ApiProblem(
                        400,
                        f"{kind.label} validation error(s)",
                        f"Unknown address property {key!r}.",
                    )
                address[lowered[key.lower()]] = value
            address["Id"] = next(self._client().ids)
            address["CountryCode"] = address["CountryCode"] or "NO"
            address[MODIFIED] = now
            record["MailAddress"] = address
            record["IsArchived"] = bool(record.get("IsArchived"))
            if kind.name != "Employees":
                record["IsActive"] = not record["IsArchived"]
                record["IsPerson"] = bool(record.get("IsPerson"))
                if record["IsPerson"] and not record.get("Name"):
                    record["Name"] = " ".join(
                        p for p in (record.get("FirstName"), record.get("LastName")) if p
                    )
            record["ContactGroupIds"] = record.get("ContactGroupIds") or []
        if kind.number_field and record.get(kind.number_field) is None:
            record[kind.number_field] = next(self._client().numbers[kind.name])
        if kind.name == "ContactPersons":
            address = dict.fromkeys(_ADDRESS)
            address.update(values.get("MailAddress") or {})
            record["MailAddress"] = address
            record["IsActive"] = True if record.get("IsActive") is None else record["IsActive"]
        if kind.name in ("Departments", "Projects", *ACTIVITY_KINDS):
            record["IsActive"] = True if record.get("IsActive") is None else record["IsActive"]
        if kind.name == "ProductGroups":
            record["IsArchived"] = bool(record.get("IsArchived"))
        if kind.name == "Products":
            record["StockAvailable"] = record.get("StockOnHand") or 0
            record["IsArchived"] = bool(record.get("IsArchived"))
            record["ProductType"] = record.get("ProductType") or "Product"
            record["UnitOfMeasureCode"] = record.get("UnitOfMeasureCode") or "EA"
        if kind.name == "Projects":
            record["ProjectStatus"] = record.get("ProjectStatus") or "Active"
            customer = self._refer("Customers", record.get("CustomerId"), "Customer")
            record["CustomerNo"] = customer["Number"] if customer else None
        if kind.name == "SalesOrders":
            customer = self._refer("Customers", record.get("CustomerId"), "Customer")
            record["CustomerNo"] = customer["Number"] if customer else None
            record["SalesOrderNo"] = next(self._client().numbers["SalesOrders"])
            record["SalesOrderStatus"] = record.get("SalesOrderStatus") or "Draft"
            record["CurrencyCode"] = record.get("CurrencyCode") or "NOK"
            record["IsCreatedByCurrentIntegration"] = by_integration
            record.update(LineCount=0, NetAmount=0.0, TotalAmount=0.0)
        for ref, target in _REFERENCES:
            if ref in kind.fields and record.get(ref) is not None:
                self._refer(target, record[ref], target[:-1])
        return record

    def _refer(self, collection: str, value: Any, label: str) -> dict[str, Any] | None:
        if value is None:
            return None
        record = self.tables[collection].get(value)
        if record is None:
            raise ApiProblem(404, "Object(s) not found", f"{label} with id = {value} not found.")
        return record

    def _store_changed(self, kind: _Kind, old: dict[str, Any], new: dict[str, Any]) -> None:
        """Keep ``new`` with fresh timestamps for what changed."""
        if new == old:
            return
        now = self.now()
        old_address, new_address = old.get("MailAddress"), new.get("MailAddress")
        if kind.contact and old_address != new_address and isinstance(new_address, dict):
            new_address[MODIFIED] = now
        rest_old = {k: v for k, v in old.items() if k != "MailAddress" or not kind.contact}
        rest_new = {k: v for k, v in new.items() if k != "MailAddress" or not kind.contact}
        if rest_old != rest_new:
            new[MODIFIED] = now
        if kind.contact and "IsActive" in kind.fields:
            new["IsActive"] = not new.get("IsArchived")
        if new.get("IsPerson") and (new.get("FirstName"), new.get("LastName")) != (
            old.get("FirstName"),
            old.get("LastName"),
        ):
            new["Name"] = " ".join(p for p in (new.get("FirstName"), new.get("LastName")) if p)
        self.tables[kind.name][new["Id"]] = new

    # -- handlers -----------------------------------------------------------------------
    def _collection(self, name: str) -> Handler:
        list_handler, create_handler = self._list(name), self._create(name)

        async def handler(request: Request) -> Response:
            if request.method == "POST":
                return await create_handler(request)
            return await list_handler(request)

        return handler

    def _list(self, name: str) -> Handler:
        kind = KINDS[name]
        names = kind.canonical()

        async def handler(request: Request) -> Response:
            query = {k.lower(): v for k, v in request.query_params.items()}
            try:
                page_number = int(query.get("pagenumber", 1))
                page_size = int(query.get("pagesize", DEFAULT_PAGE_SIZE))
            except ValueError:
                raise ApiProblem(400, "Unable to cast object(s)", "PageNumber/PageSize") from None
            if page_size > MAX_PAGE_SIZE or page_size < 1 or page_number < 1:
                raise ApiProblem(
                    400,
                    "Invalid paging",
                    f"PageSize must be between 1 and {MAX_PAGE_SIZE}; PageNumber from 1",
                )
            with self.lock:
                rows = list(self.tables[name].values())
            rows = self._filter(kind, rows, query)
            order = query.get("orderby")
            if self.order_by == "shuffle":
                rows = sorted(rows, key=lambda row: _scrambled(row["Id"]))
            elif order and self.order_by != "ignore":
                rows = self._order(names, rows, order)
            fields = None
            if query.get("fields"):
                fields = []
                for raw in query["fields"].split(","):
                    raw = raw.strip()
                    if not raw:
                        continue
                    top = raw.split(".")[0].lower()
                    if top not in names:
                        raise ApiProblem(
                            400, "Invalid field(s)", f"{raw!r} is not a field of {kind.label}."
                        )
                    fields.append(names[top])
                fields = list(dict.fromkeys(fields))
            total = len(rows)
            start = (page_number - 1) * page_size
            chunk = rows[start : start + page_size]
            if not chunk:
                return Response(status_code=204)
            if fields is not None:
                chunk = [{k: row[k] for k in fields if k in row} for row in chunk]
            total_pages = (total + page_size - 1) // page_size
            paging: dict[str, Any] = {
                "TotalCount": total,
                "PageSize": page_size,
                "CurrentPage": page_number,
                "TotalPages": total_pages,
            }
            link_query = {
                k: v for k, v in request.query_params.items() if k.lower() != "pagenumber"
            }
            if page_number > 1:
                paging["previousPageLink"] = self._link(request, link_query, page_number - 1)
            if page_number < total_pages:
                paging["nextPageLink"] = self._link(request, link_query, page_number + 1)
            return Response(
                exactjson.dumps(chunk, default=_json_default),
                media_type=JSON,
                headers={"X-Pagination": orjson.dumps(paging).decode()},
            )

        return handler

    @staticmethod
    def _link(request: Request, query: dict[str, str], page: int) -> str:
        from urllib.parse import urlencode

        return str(request.url.replace(query=urlencode({**query, "PageNumber": page})))

    def _filter(
        self, kind: _Kind, rows: list[dict[str, Any]], query: dict[str, str]
    ) -> list[dict[str, Any]]:
        if kind.hides_inactive and query.get("includeinactive", "").strip().lower() != "true":
            rows = [row for row in rows if row.get("IsActive") is not False]
        since = query.get("lastchangeddatetimeoffsetgreaterthan")
        if since:
            bound = _parse_time(since)
            rows = [row for row in rows if row[MODIFIED] > bound]
        for param, (name, how) in kind.filters.items():
            value = query.get(param)
            if value is None or value.strip() == "" or how == "ignore":
                continue
            if how == "eq":
                rows = [row for row in rows if row.get(name) == value]
            elif how == "list":
                wanted = {v.strip() for v in value.split(",") if v.strip()}
                rows = [row for row in rows if str(row.get(name)) in wanted]
            elif how == "ranges":
                rows = [row for row in rows if _in_ranges(row.get(name), value)]
            elif how == "bool" or how == "only":
                flag = value.strip().lower() == "true"
                if how == "only" and not flag:
                    continue
                rows = [row for row in rows if bool(row.get(name)) == flag]
            elif how == "after":
                bound = _parse_time(value)
                rows = [row for row in rows if (row.get(name) or "") > bound]
        return rows

    @staticmethod
    def _order(
        names: dict[str, str], rows: list[dict[str, Any]], order: str
    ) -> list[dict[str, Any]]:
        for part in reversed([p.strip() for p in order.split(",") if p.strip()]):
            field_name, _, direction = part.partition(" ")
            name = names.get(field_name.lower())
            if name is None:
                raise ApiProblem(400, "Invalid OrderBy", f"{field_name!r} is not a field")
            rows = sorted(
                rows,
                key=lambda row: (row.get(name) is not None, row.get(name) or 0),
                reverse=direction.strip().lower() == "desc",
            )
        return rows

    def _create(self, name: str) -> Handler:
        kind = KINDS[name]

        async def handler(request: Request) -> Response:
            body = await self._body(request)
            if not isinstance(body, dict):
                raise ApiProblem(400, f"{kind.label} validation error(s)", "expected an object")
            with self.lock:
                if name == "ContactPersons":
                    contact = self._id(kind, request.path_params["contact"])
                    if (
                        contact not in self.tables["Customers"]
                        and contact not in self.tables["Suppliers"]
                    ):
                        raise ApiProblem(
                            404, "Object(s) not found", f"Contact with id = {contact} not found."
                        )
                    for required in ("FirstName", "LastName"):
                        if not any(k.lower() == required.lower() and v for k, v in body.items()):
                            raise ApiProblem(
                                400,
                                "Contact person validation error(s)",
                                f"The {required} field is required.",
                            )
                    body = {**body, "ContactId": contact}
                for required in kind.required:
                    if not any(k.lower() == required.lower() and v for k, v in body.items()):
                        raise ApiProblem(
                            400,
                            f"{kind.label} validation error(s)",
                            f"The {required} field is required.",
                        )
                self._check_unique(kind, body)
                record = self._new(kind, body, by_integration=True)
                self.tables[name][record["Id"]] = record
            return self._answer(kind.create_status, record)

        return handler

    def _check_unique(self, kind: _Kind, body: dict[str, Any]) -> None:
        for name in ("ExternalImportReference", "ExternalCode"):
            value = next((v for k, v in body.items() if k.lower() == name.lower()), None)
            if value and name in kind.fields:
                for other in self.tables[kind.name].values():
                    if other.get(name) == value:
                        raise ApiProblem(
                            400,
                            f"{kind.label} validation error(s)",
                            f"{name} is already in use. {value!r} is used on Id = {other['Id']}.",
                        )

    def _item(self, name: str) -> Handler:
        kind = KINDS[name]

        async def handler(request: Request) -> Response:
            raw = request.path_params["id"]
            with self.lock:
                record = self._find(kind, raw)
                if (
                    name == "ContactPersons"
                    and str(record["ContactId"]) != request.path_params["contact"]
                ):
                    raise ApiProblem(
                        404,
                        "Object(s) not found",
                        f"Could not find contact person with id = {raw}.",
                    )
                if request.method == "GET":
                    return self._answer(200, record)
                if request.method == "DELETE":
                    self._check_unused(kind, record)
                    del self.tables[name][record["Id"]]
                    self.lines.pop(str(record["Id"]), None)
                    return Response(status_code=200)
            operations = await self._body(request, patch=True)
            with self.lock:
                record = self._find(kind, raw)
                updated = apply_patch(record, operations)
                self._validate_patched(kind, record, updated)
                self._store_changed(kind, record, updated)
                return self._answer(200, self.tables[name][record["Id"]])

        return handler

    def _validate_patched(self, kind: _Kind, old: dict[str, Any], new: Any) -> None:
        title = f"{kind.label} validation error(s)"
        if not isinstance(new, dict):
            raise ApiProblem(400, title, "the patched document is not an object")
        unknown = set(new) - set(kind.fields)
        if unknown:
            raise ApiProblem(400, title, f"Unknown property {sorted(unknown)[0]!r}.")
        for name in kind.read_only:
            if new.get(name) != old.get(name):
                raise ApiProblem(400, title, f"{name} is read-only.")
        if "MailAddress" in kind.fields:
            address = new.get("MailAddress")
            allowed = set(_CONTACT_ADDRESS if kind.contact else _ADDRESS)
            if address is not None and (not isinstance(address, dict) or set(address) - allowed):
                raise ApiProblem(400, title, "MailAddress has an unknown property")
            if kind.contact and isinstance(address, dict):
                before = old.get("MailAddress") or {}
                for name in ("Id", MODIFIED):
                    if address.get(name) != before.get(name):
                        raise ApiProblem(400, title, f"MailAddress.{name} is read-only.")
        for name in ("IsArchived", "IsActive", "IsPerson"):
            if name in new and new[name] is not None and not isinstance(new[name], bool):
                raise ApiProblem(400, title, f"{name} must be true or false.")
        for ref, target in (("CustomerId", "Customers"), *_REFERENCES):
            if ref in new and new[ref] != old.get(ref) and new[ref] is not None:
                self._refer(target, new[ref], target[:-1])

    def _check_unused(self, kind: _Kind, record: dict[str, Any]) -> None:
        rid = record["Id"]
        uses: list[str] = []

        def count(collection: str, field_name: str, what: str) -> None:
            n = sum(1 for r in self.tables[collection].values() if r.get(field_name) == rid)
            if n:
                uses.append(f"{n} {what}")

        if kind.name == "Customers":
            count("Projects", "CustomerId", "project(s)")
            count("SalesOrders", "CustomerId", "sales order(s)")
            if rid not in self.tables["Suppliers"]:
                count("ContactPersons", "ContactId", "contact person(s)")
        elif kind.name == "Suppliers":
            if rid not in self.tables["Customers"]:
                count("ContactPersons", "ContactId", "contact person(s)")
        elif kind.name == "Departments":
            count("Projects", "DepartmentId", "project(s)")
            count("Employees", "DepartmentId", "employee(s)")
            count("Customers", "DepartmentId", "customer(s)")
        elif kind.name == "Projects":
            count("SalesOrders", "ProjectId", "sales order(s)")
            for activities in ACTIVITY_KINDS:
                count(activities, "ProjectId", "activity(ies)")
            count("Projects", "ParentProjectId", "sub-project(s)")
        elif kind.name == "Employees":
            count("Projects", "ProjectManagerEmployeeId", "project(s) managed")
        elif kind.name == "ContactPersons":
            count("Projects", "ContactPersonId", "project(s)")
        elif kind.name == "ProductGroups":
            count("Products", "ProductGroupId", "product(s)")
        elif kind.name == "Products":
            n = sum(
                1
                for lines in self.lines.values()
                for line in lines.values()
                if line.get("ProductId") == rid
            )
            if n:
                uses.append(f"{n} sales order line(s)")
        if uses:
            raise ApiProblem(
                409,
                "Conflict",
                f"{kind.label} with id = {rid} is in use ({', '.join(uses)}) and cannot be "
                "deleted; archive it instead.",
            )

    # -- sales orders -------------------------------------------------------------------
    def _new_line(self, order_id: str, values: dict[str, Any]) -> dict[str, Any]:
        names = {n.lower(): n for n in _LINE_FIELDS}
        line: dict[str, Any] = dict.fromkeys(_LINE_FIELDS)
        for key, value in values.items():
            name = names.get(key.lower())
            if name is None:
                if key.lower() in ("productcode",):
                    continue
                raise ApiProblem(
                    400, "Sales order line validation error(s)", f"Unknown property {key!r}."
                )
            if name not in _LINE_RO:
                line[name] = value
        line["Id"] = str(uuid.uuid4())
        line["SalesOrderId"] = order_id
        line["LineType"] = line["LineType"] or "Normal"
        product = self._refer("Products", line.get("ProductId"), "Product")
        if product is not None:
            line["ProductCode"] = product.get("Code")
            if line["ProductUnitPrice"] is None:
                line["ProductUnitPrice"] = product.get("UnitPrice")
            if line["Description"] is None:
                line["Description"] = product.get("Name")
        self._price(line)
        return line

    @staticmethod
    def _price(line: dict[str, Any]) -> None:
        quantity = float(line.get("Quantity") or 0)
        price = float(line.get("ProductUnitPrice") or 0)
        allowance = float(line.get("Allowance") or 0)
        net = round(quantity * price * (1 - allowance), 2)
        line["NetAmount"] = net
        line["VatRate"] = VAT_RATE
        line["VatAmount"] = round(net * VAT_RATE, 2)
        line["TotalAmount"] = round(net * (1 + VAT_RATE), 2)

    def _sum_order(self, order: dict[str, Any], *, touch: bool = True) -> None:
        lines = list(self.lines.get(order["Id"], {}).values())
        order["LineCount"] = len(lines)
        order["NetAmount"] = round(sum(line["NetAmount"] for line in lines), 2)
        order["TotalAmount"] = round(sum(line["TotalAmount"] for line in lines), 2)
        if touch:
            order[MODIFIED] = self.now()

    def _complete(self, order: dict[str, Any]) -> dict[str, Any]:
        return {**order, "SalesOrderLines": list(self.lines.get(order["Id"], {}).values())}

    async def _create_order(self, request: Request) -> Response:
        body = await self._body(request)
        if not isinstance(body, dict):
            raise ApiProblem(400, "Sales order validation error(s)", "expected an object")
        lines = body.pop("SalesOrderLines", None) or []
        with self.lock:
            order = self._new(KINDS["SalesOrders"], body, by_integration=True)
            self.lines[order["Id"]] = {}
            for values in lines:
                line = self._new_line(order["Id"], dict(values))
                self.lines[order["Id"]][line["Id"]] = line
            self._sum_order(order, touch=False)
            self.tables["SalesOrders"][order["Id"]] = order
            return self._answer(201, self._complete(order))

    async def _get_complete_order(self, request: Request) -> Response:
        with self.lock:
            order = self._find(KINDS["SalesOrders"], request.path_params["id"])
            return self._answer(200, self._complete(order))

    async def _order_lines(self, request: Request) -> Response:
        kind = KINDS["SalesOrders"]
        if request.method == "POST":
            values = await self._body(request)
        with self.lock:
            order = self._find(kind, request.path_params["id"])
            lines = self.lines.setdefault(order["Id"], {})
            if request.method == "GET":
                if not lines:
                    return Response(status_code=204)
                return self._answer(200, list(lines.values()))
            line = self._new_line(order["Id"], dict(values))
            lines[line["Id"]] = line
            self._sum_order(order)
            return self._answer(201, line)

    async def _order_line(self, request: Request) -> Response:
        kind = KINDS["SalesOrders"]
        operations = await self._body(request, patch=True) if request.method == "PATCH" else None
        with self.lock:
            order = self._find(kind, request.path_params["id"])
            lines = self.lines.setdefault(order["Id"], {})
            line_id = request.path_params["line"]
            line = lines.get(line_id)
            if line is None:
                raise ApiProblem(
                    404,
                    "Object(s) not found",
                    f"Could not find sales order line with id = {line_id}.",
                )
            if request.method == "GET":
                return self._answer(200, line)
            if request.method == "DELETE":
                del lines[line_id]
                self._sum_order(order)
                return Response(status_code=200)
            updated = apply_patch(line, operations)
            if not isinstance(updated, dict) or set(updated) - set(_LINE_FIELDS):
                raise ApiProblem(400, "Sales order line validation error(s)", "unknown property")
            for name in _LINE_RO:
                if updated.get(name) != line.get(name):
                    raise ApiProblem(
                        400, "Sales order line validation error(s)", f"{name} is read-only."
                    )
            self._price(updated)
            lines[line_id] = updated
            self._sum_order(order)
            return self._answer(200, updated)

    # -- sample data --------------------------------------------------------------------
    def seed(self, count: int, rng_seed: int = 1, *, only: tuple[str, ...] | None = None) -> None:
        """``count`` customers, suppliers (a third of them persons), contact persons,
        projects, products, sales orders, employees, activities; a few departments.
        ``only`` restricts it to some collections (``("Customers",)`` for benchmarks)."""
        from samband import sampledata

        rng = random.Random(rng_seed)

        def wanted(name: str) -> bool:
            return only is None or name in only

        with self.lock:
            departments: list[Any] = []
            if wanted("Departments"):
                for index, label in enumerate(
                    ("Salg", "Drift", "Utvikling", "Økonomi", "Service")[: max(1, min(count, 5))]
                ):
                    record = self.insert(
                        "Departments", {"Code": f"{100 + index * 10}", "Name": label}
                    )
                    departments.append(record["Id"])
            customers: list[Any] = []
            if wanted("Customers"):
                for company in _companies(count, rng):
                    record = self.insert("Customers", _contact_values(company))
                    customers.append(record["Id"])
            suppliers: list[Any] = []
            if wanted("Suppliers"):
                companies = _companies(count - count // 3, rng)
                people = sampledata.persons(count // 3, rng, "NO")
                for company in companies:
                    suppliers.append(self.insert("Suppliers", _contact_values(company))["Id"])
                for person in people:
                    values = {
                        "IsPerson": True,
                        "FirstName": person["first_name"],
                        "LastName": person["last_name"],
                        "EmailAddress": person["email"],
                        "PhoneNumber": person["mobile"],
                    }
                    suppliers.append(self.insert("Suppliers", values)["Id"])
            if wanted("ContactPersons") and (customers or suppliers):
                owners = customers + suppliers
                for person in sampledata.persons(count, rng, "NO"):
                    self.insert(
                        "ContactPersons",
                        {
                            "ContactId": rng.choice(owners),
                            "FirstName": person["first_name"],
                            "LastName": person["last_name"],
                            "EmailAddress": person["email"],
                            "PhoneNumber": person["phone"],
                            "Title": person["title"],
                        },
                    )
            employees: list[Any] = []
            if wanted("Employees"):
                for person in sampledata.persons(count, rng, "NO"):
                    values = {
                        "FirstName": person["first_name"],
                        "LastName": person["last_name"],
                        "EmailAddress": person["email"],
                        "PhoneNumber": person["mobile"],
                        "JobTitle": person["title"],
                        "DepartmentId": rng.choice(departments) if departments else None,
                    }
                    employees.append(self.insert("Employees", values)["Id"])
            products: list[dict[str, Any]] = []
            if wanted("Products"):
                for product in sampledata.products(count, rng):
                    products.append(
                        self.insert(
                            "Products",
                            {
                                "Code": product["code"],
                                "Name": product["name"],
                                "Description": product["description"],
                                "UnitPrice": float(product["unit_price"]),
                                "UnitCost": float(product["unit_cost"]),
                                "ProductType": rng.choice(("Product", "Service")),
                            },
                        )
                    )
            projects: list[dict[str, Any]] = []
            if wanted("Projects") and customers:
                for index in range(count):
                    start = datetime(2024, 1, 1) + timedelta(days=rng.randrange(0, 600))
                    projects.append(
                        self.insert(
                            "Projects",
                            {
                                "Code": f"PRJ{1000 + index}",
                                "Name": f"Prosjekt {1000 + index}",
                                "CustomerId": rng.choice(customers),
                                "DepartmentId": rng.choice(departments) if departments else None,
                                "ProjectManagerEmployeeId": (
                                    rng.choice(employees) if employees else None
                                ),
                                "StartDate": start.date().isoformat(),
                                "EndDate": (start + timedelta(days=90)).date().isoformat(),
                                "IsBillable": rng.random() < 0.8,
                            },
                        )
                    )
            if wanted("ActivityTime"):
                names = ("Konsulenttid", "Intern tid", "Support", "Kurs", "Møte", "Reise")
                for index in range(count):
                    project = rng.choice(projects) if projects and index % 2 else None
                    self.insert(
                        "ActivityTime",
                        {
                            "Name": f"{rng.choice(names)} {index + 1}",
                            "ProjectId": project["Id"] if project else None,
                            "IsActive": True,
                        },
                    )
            if wanted("SalesOrders") and customers and products:
                for _ in range(count):
                    order = self.insert(
                        "SalesOrders",
                        {
                            "CustomerId": rng.choice(customers),
                            "SalesOrderDate": (
                                datetime(2025, 1, 1) + timedelta(days=rng.randrange(0, 300))
                            )
                            .date()
                            .isoformat(),
                        },
                    )
                    self.lines[order["Id"]] = {}
                    for _ in range(rng.randrange(1, 4)):
                        product = rng.choice(products)
                        line = self._new_line(
                            order["Id"],
                            {"ProductId": product["Id"], "Quantity": float(rng.randrange(1, 10))},
                        )
                        self.lines[order["Id"]][line["Id"]] = line
                    self._sum_order(order, touch=False)
            if wanted("ProductGroups"):
                for index, name in enumerate(("Tjenester", "Varer", "Lisenser")):
                    self.insert("ProductGroups", {"Code": f"G{index + 1}", "Name": name})


def _companies(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """Sample companies, made in chunks: unique names within a chunk are cheap, within
    50 000 they are not (a benchmark's sandbox does not need them unique)."""
    from samband import sampledata

    result: list[dict[str, Any]] = []
    while len(result) < count:
        result.extend(sampledata.companies(min(5000, count - len(result)), rng, "NO"))
    return result


def _contact_values(company: dict[str, Any]) -> dict[str, Any]:
    return {
        "Name": company["name"],
        "OrganizationNumber": company["org_no"],
        "EmailAddress": company["email"],
        "PhoneNumber": company["phone"],
        "WebsiteUrl": company["website"],
        "MailAddress": {
            "AddressLine1": company["address"],
            "ZipCode": company["zip_code"],
            "City": company["city"],
            "CountryCode": company["country"],
        },
    }


def _json_default(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def _scrambled(record_id: Any) -> str:
    """A fixed order of records that has nothing to do with when they changed."""
    return hashlib.sha256(str(record_id).encode()).hexdigest()
