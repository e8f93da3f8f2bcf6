"""Exact Online sandbox: the REST API subset Samband (and public clients) use.

Faithful where clients depend on it:

* OAuth2 authorization code: ``GET /api/oauth2/auth`` approves at once and redirects to
  the ``redirect_uri`` with a one-time ``code`` (an ``https`` one, or plain ``http`` on
  loopback only: Exact refuses plain-HTTP callbacks); ``POST /api/oauth2/token`` trades codes
  and refresh tokens.  Access tokens live 10 minutes (``expires_in`` is the *string*
  ``"600"``); a refresh within 570 s of the previous token answers 400
  ``access_denied``; every refresh rotates the refresh token and the old one dies once
  the new one is used.
* ``/api/v1/current/Me``; ``/api/v1/{division}/…`` collections with the ``d`` /
  ``results`` / ``__next`` envelope and ``__metadata``; pages of 60 (1000 on the Sync
  API); ``$select``, ``$filter`` (see :mod:`samband.kinds.exact_online.sandbox._odata`), ``$top``,
  ``$skiptoken``, ``$orderby``, ``$inlinecount``, ``$expand=SalesOrderLines``;
  mandatory filtering on every CRUD endpoint with a Sync API: a collection GET must
  filter on an allowed field and on allowed fields only
  (:mod:`samband.kinds.exact_online.filters`).
* POST (201, ``{"d": record}``), PUT (204, only the given fields), DELETE (204).
* The Sync API (``sync/CRM/Accounts`` …, ``Timestamp`` row versions) and ``sync/Deleted``.
* Rate limits per app and division: minutely (60) and daily (5 000) with the
  ``X-RateLimit-*`` headers (resets in epoch milliseconds) and 429s; more than 10 errors
  an hour on one endpoint blocks it for an hour.  All on ``self.clock``.
* Date-times as ``/Date(ms)/`` of Amsterdam wall-clock time; errors as
  ``{"error": {"code": "", "message": {"lang": "", "value": "…"}}}``.
* Webhooks: ``webhooks/WebhookSubscriptions`` (list, create, delete; no update).  A
  create needs ``CallbackURL`` (``https``, or plain ``http`` on loopback) and a known
  ``Topic``; Exact first POSTs an empty body to the callback URL and refuses the
  subscription (500 ``Invalid: Post to callback URL endpoint returns …``) unless it
  answers 2xx.  Each change of a record then POSTs ``{"Content": {...}, "HashCode":
  "HEX"}`` to every subscription of its topic from a background thread, the HashCode being
  the upper-case hex HMAC-SHA256 of the ``Content`` text with ``webhook_secret``.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import ipaddress
import json
import random
import re
import secrets
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from samband import exactjson, sampledata
from samband.kinds.exact_online.fields import FIELDS
from samband.kinds.exact_online.filters import (
    filterable,
    has_mandatory_filter,
    mandatory_filter_message,
)
from samband.kinds.exact_online.sandbox._odata import (
    ODataError,
    filter_fields,
    parse_filter,
    parse_orderby,
    parse_select,
)
from samband.kinds.exact_online.sandbox._wire import from_client, to_wire
from samband.kinds.exact_online.sync_fields import sync_fields
from samband.sandbox._base import Clock, ExactJSONResponse, Faults, Sandbox
from samband.sandbox._push import Deliverer, Delivery


@dataclass(frozen=True)
class Resource:
    key: str
    entity_type: int | None = None  # number in sync/Deleted
    read_only: bool = False
    model: str = ""


RESOURCES: dict[str, Resource] = {
    "crm/Accounts": Resource("ID", 2, model="Account"),
    "crm/Contacts": Resource("ID", 5, model="Contact"),
    "logistics/Items": Resource("ID", 9, model="Item"),
    "project/Projects": Resource("ID", 21, model="Project"),
    "salesorder/SalesOrders": Resource("OrderID", 32, model="SalesOrder"),
    "salesorder/SalesOrderLines": Resource("ID", 33, model="SalesOrderLine"),
    "hrm/Departments": Resource("ID", read_only=True, model="Department"),
    "hrm/Divisions": Resource("Code", read_only=True, model="Division"),
}
SYNC: dict[str, str] = {
    "sync/CRM/Accounts": "crm/Accounts",
    "sync/CRM/Contacts": "crm/Contacts",
    "sync/Logistics/Items": "logistics/Items",
    "sync/Project/Projects": "project/Projects",
    "sync/SalesOrder/SalesOrderHeaders": "salesorder/SalesOrders",
    "sync/SalesOrder/SalesOrderLines": "salesorder/SalesOrderLines",
}
#: webhook topics Exact offers (a subset), and the resources whose changes they announce
WEBHOOK_TOPICS: dict[str, tuple[str, ...]] = {
    "Accounts": ("crm/Accounts",),
    "BankAccounts": (),
    "Contacts": ("crm/Contacts",),
    "CostTransactions": (),
    "Documents": (),
    "FinancialTransactions": (),
    "GoodsDeliveries": (),
    "Items": ("logistics/Items",),
    "Projects": ("project/Projects",),
    "PurchaseOrders": (),
    "Quotations": (),
    "SalesInvoices": (),
    "SalesOrders": ("salesorder/SalesOrders", "salesorder/SalesOrderLines"),
    "StockPositions": (),
    "TimeTransactions": (),
}
WEBHOOKS = "webhooks/WebhookSubscriptions"
_WEBHOOK_FIELDS = (
    "ID",
    "CallbackURL",
    "ClientID",
    "Created",
    "Creator",
    "CreatorFullName",
    "Description",
    "Division",
    "IsInstant",
    "Topic",
    "UserID",
)
_KEY = re.compile(r"^(?P<resource>.+?)\((?P<key>[^)]*)\)$")
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_INT_TYPES = {"Int16", "Int32", "Int64", "Byte"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def error_body(message: str, code: str = "", lang: str = "") -> dict[str, Any]:
    return {"error": {"code": code, "message": {"lang": lang, "value": message}}}


#: Exact answers in the user's language; ``language="nl"`` makes the sandbox do so for the
#: messages a client might be tempted to match on
_DUTCH_PREFIXES = (
    (
        "This account is in use and cannot be deleted",
        "Dit account is in gebruik en kan niet worden verwijderd",
    ),
    ("Object not found", "Object niet gevonden"),
    ("Mandatory: ", "Verplicht: "),
    ("Unauthorized: the access token is missing or expired", "Niet geautoriseerd"),
)


def _in_dutch(message: str) -> str:
    for english, dutch in _DUTCH_PREFIXES:
        if message.startswith(english):
            return dutch + message[len(english) :]
    return message


class ExactOnlineSandbox(Sandbox):
    kind = "exact-online"

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        faults: Faults | None = None,
        division: int = 3_000_001,
        client_id: str = "samband-sandbox",
        client_secret: str = "sandbox-secret",
        minutely_limit: int = 60,
        daily_limit: int = 5000,
        page_size: int = 60,
        sync_page_size: int = 1000,
        token_lifetime: float = 600.0,
        token_min_interval: float = 570.0,
        error_block_threshold: int = 10,
        language: str = "en",
        webhook_secret: str = "sandbox-webhook-secret",
    ) -> None:
        super().__init__(clock=clock, faults=faults)
        self.language = language  # "nl": error messages in Dutch, as for a Dutch user
        self.division = division
        self.client_id, self.client_secret = client_id, client_secret
        self.minutely_limit, self.daily_limit = minutely_limit, daily_limit
        self.page_size, self.sync_page_size = page_size, sync_page_size
        self.token_lifetime, self.token_min_interval = token_lifetime, token_min_interval
        self.error_block_threshold = error_block_threshold
        self.user_id = "5e1e6b7a-0000-4000-8000-000000000001"
        self.webhook_secret = webhook_secret
        self.webhooks = Deliverer("exact-online-sandbox")
        self._rng = random.Random(7)
        self.reset()

    # -- state ----------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.tables: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in RESOURCES}
            self.deleted: list[dict[str, Any]] = []
            self.account_codes: dict[str, str] = {}  # padded code → account ID
            self._key_cache: dict[str, tuple[int, int, list[tuple[int, str]]]] = {}
            self._key_version = 0
            self.row_version = 1
            self.codes: dict[str, tuple[str, str]] = {}
            self.access_tokens: dict[str, float] = {}
            self.refresh_tokens: dict[str, dict[str, Any]] = {}
            self.grants: dict[str, float] = {}  # grant id → when its last token was issued
            self.token_requests = 0
            self.minute_reset = 0.0
            self.minute_used = 0
            self.day_reset = 0.0
            self.day_used = 0
            self.api_calls = 0
            self.throttled = 0
            self.endpoint_errors: dict[str, deque[float]] = {}
            self.blocked_until: dict[str, float] = {}
            self.subscriptions: dict[str, dict[str, Any]] = {}
            self._add_division(self.division, "Samband Sandbox B.V.", main=True)

    def _next_version(self) -> int:
        self.row_version += 1
        return self.row_version

    def _add_division(self, code: int, description: str, main: bool = False) -> None:
        now = self.clock.now()
        self.tables["hrm/Divisions"][str(code)] = {
            "Code": code,
            "Description": description,
            "Country": "NL",
            "Currency": "EUR",
            "Main": main,
            "Status": 1,
            "Created": now,
            "Modified": now,
            "StartDate": now.replace(hour=0, minute=0, second=0, microsecond=0),
            "Timestamp": self._next_version(),
        }

    def insert(self, resource: str, values: dict[str, Any]) -> dict[str, Any]:
        """Store a record as if created through the API (tests and seed use it)."""
        with self.lock:
            return self._create(resource, dict(values), validate=False)

    def edit(self, resource: str, key: str, values: dict[str, Any]) -> dict[str, Any]:
        """Change a record as a user of Exact would (bumps Modified and Timestamp)."""
        with self.lock:
            record = self.tables[resource][key.lower()]
            record.update(values)
            record["Modified"] = self.clock.now()
            record["Timestamp"] = self._next_version()
            self._changed(resource, record, "Update")
            return record

    def remove(self, resource: str, key: str) -> None:
        with self.lock:
            self._delete(resource, key.lower())

    def seed(self, count: int, rng_seed: int = 1) -> None:
        rng = random.Random(rng_seed)
        companies = sampledata.companies(count, rng, "NL")
        people = sampledata.persons(count, rng, "NL", companies)
        products = sampledata.products(count, rng)
        with self.lock:
            accounts = []
            for index, company in enumerate(companies, start=1):
                accounts.append(
                    self._create(
                        "crm/Accounts",
                        {
                            "Code": str(index),
                            "Name": company["name"],
                            "Email": company["email"],
                            "Phone": company["phone"],
                            "Website": company["website"],
                            "AddressLine1": company["address"],
                            "Postcode": company["zip_code"],
                            "City": company["city"],
                            "Country": company["country"],
                            "VATNumber": company["vat_number"],
                            "ChamberOfCommerce": company["org_no"],
                            "Status": "C",
                            "IsSupplier": False,
                            "Blocked": False,
                        },
                        validate=False,
                    )
                )
            for person in people:
                account = accounts[person["company_index"] or 0] if accounts else None
                self._create(
                    "crm/Contacts",
                    {
                        "Account": account["ID"] if account else None,
                        "FirstName": person["first_name"],
                        "LastName": person["last_name"],
                        "Email": person["email"],
                        "Phone": person["phone"],
                        "Mobile": person["mobile"],
                        "JobTitleDescription": person["title"],
                    },
                    validate=False,
                )
            items = [
                self._create(
                    "logistics/Items",
                    {
                        "Code": product["code"],
                        "Description": product["name"],
                        "ExtraDescription": product["description"],
                        "CostPriceStandard": float(product["unit_cost"]),
                        "Unit": "pc",
                        "IsSalesItem": True,
                    },
                    validate=False,
                )
                for product in products
            ]
            for index in range(1, min(count, 20) + 1):
                self._create(
                    "hrm/Departments",
                    {"Code": f"D{index:02d}", "Description": f"Afdeling {index}"},
                    validate=False,
                )
            for index in range(1, min(count, 5)):
                self._add_division(self.division + index, f"Werkmaatschappij {index} B.V.")
            for index, account in enumerate(accounts[:count], start=1):
                self._create(
                    "project/Projects",
                    {
                        "Code": f"PRJ{index:04d}",
                        "Description": f"Project {account['Name']}",
                        "Type": 2,
                        "Account": account["ID"],
                    },
                    validate=False,
                )
                if items:
                    item = items[rng.randrange(len(items))]
                    self._create(
                        "salesorder/SalesOrders",
                        {
                            "OrderedBy": account["ID"],
                            "Description": f"Order {index}",
                            "SalesOrderLines": [
                                {"Item": item["ID"], "Quantity": rng.randrange(1, 10)}
                            ],
                        },
                        validate=False,
                    )

    # -- records ----------------------------------------------------------------------
    def _convert(self, resource: str, name: str, value: Any) -> Any:
        spec = FIELDS[resource].get(name)
        if spec is None:
            raise ApiError(400, f"Property '{name}' does not exist on type '{resource}'")
        exact_type = spec[0]
        if value is None:
            return None
        try:
            if exact_type == "Guid":
                text = str(value).lower()
                if not _GUID.match(text):
                    raise ValueError
                return text
            if exact_type in _INT_TYPES:
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ValueError
                return int(value)
            if exact_type == "Double":
                if isinstance(value, bool):
                    raise ValueError
                return float(value)
            if exact_type == "Boolean":
                if not isinstance(value, bool):
                    raise ValueError
                return value
            if exact_type == "DateTime":
                return from_client(str(value))
            if exact_type.startswith("UTF8"):
                return str(value)
        except (TypeError, ValueError):
            raise ApiError(
                400, f"Error converting value {value!r} to type '{exact_type}' ({name})"
            ) from None
        return value

    def _create(self, resource: str, body: dict[str, Any], validate: bool = True) -> dict[str, Any]:
        spec = RESOURCES[resource]
        fields = FIELDS[resource]
        lines = body.pop("SalesOrderLines", None) if resource == "salesorder/SalesOrders" else None
        record: dict[str, Any] = {}
        for name, value in body.items():
            if name == "__metadata":
                continue
            if validate and fields.get(name, ("", False, False))[1]:
                continue  # read-only fields are ignored, as Exact does
            record[name] = self._convert(resource, name, value)
        if validate:
            for name, (_, _, required) in fields.items():
                if (
                    required
                    and name != spec.key
                    and record.get(name) in (None, "")
                    and name != "SalesOrderLines"
                ):
                    raise ApiError(400, f"Mandatory: {name}")
            if resource == "salesorder/SalesOrders" and not lines:
                raise ApiError(400, "Mandatory: SalesOrderLines")
        key = str(record.get(spec.key) or uuid.UUID(int=self._rng.getrandbits(128), version=4))
        key = key.lower()
        table = self.tables[resource]
        if key in table:
            raise ApiError(400, f"Duplicate key: {key}")
        original = record.get(spec.key)
        # Int32 keys (Divisions' Code) stay numbers, so filters like `Code eq 7` match
        record[spec.key] = original if isinstance(original, int) else key
        if resource == "crm/Accounts":
            code = str(record.get("Code") or "").strip()
            if not code:
                code = str(len(table) + 1)
                while code.rjust(18) in self.account_codes:
                    code = str(int(code) + 1)
            if len(code) > 18:
                raise ApiError(400, "Code: the code is longer than 18 characters")
            padded = code.rjust(18)
            if padded in self.account_codes:
                raise ApiError(400, f"Code {code} already exists")
            record["Code"] = padded
            self.account_codes[padded] = key
        now = self.clock.now()
        record.update(
            Created=now,
            Modified=now,
            Creator=self.user_id,
            Modifier=self.user_id,
            Division=self.division,
            Timestamp=self._next_version(),
        )
        if resource == "crm/Contacts" and record.get("FirstName"):
            record["FullName"] = f"{record.get('FirstName', '')} {record.get('LastName', '')}"
        table[key] = record
        self._key_version += 1
        self._changed(resource, record, "Create")
        if lines:
            for number, line in enumerate(lines, start=1):
                line = {k: v for k, v in dict(line).items() if k != "__metadata"}
                line["OrderID"] = key
                line.setdefault("LineNumber", number)
                self._create("salesorder/SalesOrderLines", line, validate=validate)
        return record

    def _update(self, resource: str, key: str, body: dict[str, Any]) -> None:
        record = self.tables[resource].get(key)
        if record is None:
            raise ApiError(404, "Object not found")
        changes = {}
        for name, value in body.items():
            if name == "__metadata" or FIELDS[resource].get(name, ("", False, False))[1]:
                continue
            if name == RESOURCES[resource].key:
                continue
            changes[name] = self._convert(resource, name, value)
        if resource == "crm/Accounts" and "Code" in changes:
            code = str(changes["Code"] or "").strip()
            padded = code.rjust(18)
            if not code or len(code) > 18:
                raise ApiError(400, "Code: a code of 1 to 18 characters is mandatory")
            if self.account_codes.get(padded, key) != key:
                raise ApiError(400, f"Code {code} already exists")
            self.account_codes.pop(record.get("Code") or "", None)
            self.account_codes[padded] = key
            changes["Code"] = padded
        for name in ("Name",) if resource == "crm/Accounts" else ():
            if name in changes and not changes[name]:
                raise ApiError(400, f"Mandatory: {name}")
        record.update(changes)
        record["Modified"] = self.clock.now()
        record["Modifier"] = self.user_id
        record["Timestamp"] = self._next_version()
        self._changed(resource, record, "Update")

    def _delete(self, resource: str, key: str) -> None:
        table = self.tables[resource]
        if key not in table:
            raise ApiError(404, "Object not found")
        if resource == "crm/Accounts":
            for other in ("crm/Contacts", "project/Projects"):
                if any(r.get("Account") == key for r in self.tables[other].values()):
                    raise ApiError(400, "This account is in use and cannot be deleted")
        removed = table.pop(key)
        self._key_version += 1
        self._changed(resource, removed, "Delete")
        if resource == "crm/Accounts":
            self.account_codes.pop(removed.get("Code") or "", None)
        if resource == "salesorder/SalesOrders":
            for line_key in [
                k
                for k, r in self.tables["salesorder/SalesOrderLines"].items()
                if r.get("OrderID") == key
            ]:
                self._delete("salesorder/SalesOrderLines", line_key)
        entity_type = RESOURCES[resource].entity_type
        if entity_type is not None:
            now = self.clock.now()
            self.deleted.append(
                {
                    "Timestamp": self._next_version(),
                    "DeletedBy": self.user_id,
                    "DeletedDate": now,
                    "Division": self.division,
                    "EntityKey": key,
                    "EntityType": entity_type,
                    "ID": str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
                }
            )

    # -- webhooks ---------------------------------------------------------------------
    def _changed(self, resource: str, record: dict[str, Any], action: str) -> None:
        """Queue the webhook of a change to every subscription of its topic (the lock is
        held; the background thread sends after it is released)."""
        topic = next((t for t, rs in WEBHOOK_TOPICS.items() if resource in rs), None)
        if topic is None or not self.subscriptions:
            return
        if resource == "salesorder/SalesOrderLines":
            resource, key, action = "salesorder/SalesOrders", str(record.get("OrderID")), "Update"
        else:
            key = str(record.get(RESOURCES[resource].key))
        for subscription in self.subscriptions.values():
            if subscription["Topic"] != topic:
                continue
            base = subscription["_base"]
            content = {
                "Topic": topic,
                "ClientId": self.client_id,
                "Division": self.division,
                "Action": action,
                "Key": key,
                "ExactOnlineEndpoint": f"{base}api/v1/{self.division}/{resource}(guid'{key}')",
                "EventCreatedOn": self.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            }
            text = json.dumps(content, separators=(",", ":"))
            code = hmac.new(self.webhook_secret.encode(), text.encode(), hashlib.sha256)
            body = f'{{"Content":{text},"HashCode":"{code.hexdigest().upper()}"}}'
            self.webhooks.send(
                Delivery(
                    subscription["CallbackURL"],
                    body.encode(),
                    (("Content-Type", "application/json"),),
                )
            )

    def _subscription_problem(self, body: Any) -> ApiError | None:
        """Why a new subscription is refused before its callback URL is tried, or None."""
        if not isinstance(body, dict):
            return ApiError(400, "The request body must be a JSON object")
        unknown = [name for name in body if name not in _WEBHOOK_FIELDS and name != "__metadata"]
        if unknown:
            return ApiError(400, f"Property '{unknown[0]}' does not exist on WebhookSubscription")
        url, topic = body.get("CallbackURL"), body.get("Topic")
        if not isinstance(url, str) or not url:
            return ApiError(400, "Mandatory: CallbackURL")
        if not isinstance(topic, str) or not topic:
            return ApiError(400, "Mandatory: Topic")
        if topic not in WEBHOOK_TOPICS:
            return ApiError(400, f"Invalid topic: {topic}")
        if not _callback_allowed(url):
            return ApiError(400, "Invalid: the callback URL must use https")
        if any(
            row["CallbackURL"] == url and row["Topic"] == topic
            for row in self.subscriptions.values()
        ):
            return ApiError(400, f"A subscription of {url} to {topic} already exists")
        return None

    async def _validate_callback(self, url: str) -> int | str:
        """Exact's check of a new subscription: an empty POST to the callback URL."""
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                answer = await client.post(url, content=b"")
        except httpx.HTTPError:
            return "An error occurred while sending the request."
        return answer.status_code

    def _webhooks(
        self, request: Request, key: str | None, body: Any, validation: int | str | None
    ) -> tuple[int, Any]:
        base = str(request.base_url)
        method = request.method
        if method == "GET":
            select = parse_select(request.query_params.get("$select"))
            unknown = [name for name in select or () if name not in _WEBHOOK_FIELDS]
            if unknown:
                raise ApiError(400, f"Invalid $select: {unknown[0]}")
            rows = list(self.subscriptions.values())
            if key is not None:
                rows = [row for row in rows if row["ID"] == key]
                if not rows:
                    raise ApiError(404, "Object not found")
            rendered = [
                {
                    "__metadata": {
                        "uri": f"{base}api/v1/{self.division}/{WEBHOOKS}(guid'{row['ID']}')",
                        "type": "Exact.Web.Api.Models.Webhooks.WebhookSubscription",
                    },
                    **{
                        k: v
                        for k, v in row.items()
                        if not k.startswith("_") and (select is None or k in select)
                    },
                }
                for row in rows
            ]
            return 200, {"d": rendered[0] if key is not None else {"results": rendered}}
        if method == "PUT":
            raise ApiError(405, "A webhook subscription cannot be updated; delete it and create it")
        if method == "DELETE":
            if key is None or self.subscriptions.pop(key, None) is None:
                raise ApiError(404, "Object not found")
            return 204, None
        if key is not None:
            raise ApiError(400, "POST goes to the collection, not to one record")
        problem = self._subscription_problem(body)
        if problem is not None:
            raise problem
        url, topic = body["CallbackURL"], body["Topic"]
        if not isinstance(validation, int) or not 200 <= validation < 300:
            reason = validation if isinstance(validation, str) else f"{validation}"
            raise ApiError(500, f"Invalid: Post to callback URL endpoint returns {reason}")
        sid = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        row = {
            "ID": sid,
            "CallbackURL": url,
            "ClientID": self.client_id,
            "Created": self.clock.now(),
            "Creator": self.user_id,
            "CreatorFullName": "Sandbox User",
            "Description": str(body.get("Description") or ""),
            "Division": self.division,
            "IsInstant": False,
            "Topic": topic,
            "UserID": self.user_id,
            "_base": base,
        }
        self.subscriptions[sid] = row
        public = {k: v for k, v in row.items() if not k.startswith("_")}
        return 201, {"d": public}

    # -- rendering --------------------------------------------------------------------
    def _render(
        self,
        base: str,
        resource: str,
        record: dict[str, Any],
        select: list[str] | None,
        expand: set[str],
        sync: bool = False,
    ) -> dict[str, Any]:
        spec = RESOURCES[resource]
        key = record[spec.key]
        key_text = f"guid'{key}'" if spec.key != "Code" else str(key)
        uri = f"{base}api/v1/{self.division}/{resource}({key_text})"
        out: dict[str, Any] = {
            "__metadata": {"uri": uri, "type": f"Exact.Web.Api.Models.{spec.model}"}
        }
        names = select if select is not None else list(FIELDS[resource])
        if sync and select is None:
            names = [*names, "Timestamp"]
        for name in names:
            if name == "Timestamp" and sync:
                out[name] = record["Timestamp"]
                continue
            exact_type = FIELDS[resource][name][0]
            value = record.get(name)
            if exact_type == "Collection":
                if name in expand and name == "SalesOrderLines":
                    lines = [
                        self._render(base, "salesorder/SalesOrderLines", line, None, set())
                        for line in self.tables["salesorder/SalesOrderLines"].values()
                        if line.get("OrderID") == key
                    ]
                    out[name] = {"results": lines}
                else:
                    out[name] = {"__deferred": {"uri": f"{uri}/{name}"}}
                continue
            if isinstance(value, datetime):
                value = to_wire(value)
            out[name] = value
        return out

    # -- rate limits --------------------------------------------------------------------
    def _limit_headers(self, daily: bool = True, minutely: bool = True) -> dict[str, str]:
        headers: dict[str, str] = {}
        if daily:
            headers["X-RateLimit-Limit"] = str(self.daily_limit)
            headers["X-RateLimit-Remaining"] = str(max(self.daily_limit - self.day_used, 0))
            headers["X-RateLimit-Reset"] = str(int(self.day_reset * 1000))
        if minutely:
            headers["X-RateLimit-Minutely-Limit"] = str(self.minutely_limit)
            headers["X-RateLimit-Minutely-Remaining"] = str(
                max(self.minutely_limit - self.minute_used, 0)
            )
            headers["X-RateLimit-Minutely-Reset"] = str(int(self.minute_reset * 1000))
        return headers

    def _count_call(self) -> None:
        now = self.clock.time()
        if now >= self.day_reset:
            midnight = datetime.fromtimestamp(now, UTC).replace(
                hour=0, minute=0, second=0, microsecond=0
            ) + timedelta(days=1)
            self.day_reset, self.day_used = midnight.timestamp(), 0
        if now >= self.minute_reset:
            self.minute_reset, self.minute_used = now + 60.0, 0
        if self.day_used >= self.daily_limit:
            self.throttled += 1
            raise ApiError(
                429, "API rate limit exceeded (daily)", self._limit_headers(minutely=False)
            )
        if self.minute_used >= self.minutely_limit:
            self.throttled += 1
            raise ApiError(
                429, "API rate limit exceeded (minutely)", self._limit_headers(daily=False)
            )
        self.day_used += 1
        self.minute_used += 1
        self.api_calls += 1

    def _note_error(self, endpoint: str, status: int) -> None:
        if status not in (400, 401, 403, 404):
            return
        now = self.clock.time()
        errors = self.endpoint_errors.setdefault(endpoint, deque())
        errors.append(now)
        while errors and errors[0] < now - 3600:
            errors.popleft()
        if len(errors) > self.error_block_threshold:
            self.blocked_until[endpoint] = now + 3600

    # -- routes -------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            Route("/api/oauth2/auth", self._auth_page, methods=["GET"]),
            Route("/api/oauth2/token", self._token, methods=["POST"]),
            Route("/api/v1/current/Me", self._me, methods=["GET"]),
            Route(
                "/api/v1/{division:int}/{path:path}",
                self._api,
                methods=["GET", "POST", "PUT", "DELETE"],
            ),
        ]

    def problem(self, status: int, title: str) -> tuple[dict[str, Any], str]:
        return error_body(title), "application/json"

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        return ExactJSONResponse(body, status_code=status, headers=headers)

    async def _auth_page(self, request: Request) -> Response:
        query = request.query_params
        client_id, redirect_uri = query.get("client_id", ""), query.get("redirect_uri", "")
        if client_id != self.client_id or not redirect_uri:
            return Response(
                "<html><body>Unknown client or missing redirect_uri</body></html>",
                status_code=400,
                media_type="text/html",
            )
        parts = urlsplit(redirect_uri)
        if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(parts.hostname)):
            # Exact refuses a plain-HTTP callback; the sandbox allows one on loopback
            return Response(
                "<html><body>The redirect_uri must use https</body></html>",
                status_code=400,
                media_type="text/html",
            )
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = (client_id, redirect_uri)
        parts = urlsplit(redirect_uri)
        extra = {"code": code}
        if "state" in query:
            extra["state"] = query["state"]
        joined = f"{parts.query}&{urlencode(extra)}" if parts.query else urlencode(extra)
        return RedirectResponse(urlunsplit(parts._replace(query=joined)), status_code=302)

    def issue_tokens(self) -> dict[str, str]:
        """A fresh token pair as after a login (for tests that skip the browser step)."""
        with self.lock:
            return self._issue(secrets.token_hex(8), None)

    def _issue(self, grant: str, previous: str | None) -> dict[str, str]:
        access = "sbx-at-" + secrets.token_urlsafe(24)
        refresh = "sbx-rt-" + secrets.token_urlsafe(24)
        now = self.clock.time()
        self.access_tokens[access] = now + self.token_lifetime
        self.refresh_tokens[refresh] = {"grant": grant, "previous": previous}
        self.grants[grant] = now
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": str(int(self.token_lifetime)),
            "refresh_token": refresh,
        }

    async def _token(self, request: Request) -> Response:
        # form-encoded, parsed here (Starlette's form parser needs python-multipart)
        data = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))

        def oauth_error(error: str, description: str) -> Response:
            return self._json(400, {"error": error, "error_description": description})

        with self.lock:
            self.token_requests += 1
            if data.get("client_id") != self.client_id or (
                data.get("client_secret") != self.client_secret
            ):
                return oauth_error("invalid_client", "Unknown client or wrong secret")
            grant_type = data.get("grant_type")
            if grant_type == "authorization_code":
                entry = self.codes.pop(data.get("code", ""), None)
                if entry is None or entry[1] != data.get("redirect_uri"):
                    return oauth_error("invalid_grant", "Invalid authorization code")
                return self._json(200, self._issue(secrets.token_hex(8), None))
            if grant_type == "refresh_token":
                token = data.get("refresh_token", "")
                state = self.refresh_tokens.get(token)
                if state is None:
                    return oauth_error("invalid_grant", "Invalid refresh token")
                grant = state["grant"]
                if self.clock.time() - self.grants.get(grant, 0.0) < self.token_min_interval:
                    return oauth_error(
                        "access_denied", "Rate limit exceeded: access_token not expired"
                    )
                if state["previous"]:
                    # the new refresh token is used: its predecessor dies
                    self.refresh_tokens.pop(state["previous"], None)
                    state["previous"] = None
                return self._json(200, self._issue(grant, token))
            return oauth_error("unsupported_grant_type", "Unsupported grant_type")

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return False
        expiry = self.access_tokens.get(header[7:].strip())
        return expiry is not None and self.clock.time() < expiry

    async def _me(self, request: Request) -> Response:
        return await self._handle(request, None, "current/Me")

    async def _api(self, request: Request) -> Response:
        return await self._handle(
            request, int(request.path_params["division"]), request.path_params["path"]
        )

    async def _handle(self, request: Request, division: int | None, path: str) -> Response:
        body: Any = None
        if request.method in ("POST", "PUT"):
            raw = await request.body()
            try:
                body = exactjson.loads(raw) if raw else {}
            except ValueError:
                body = ApiError(400, "The request body is not valid JSON")
        match = _KEY.match(path)
        endpoint = match.group("resource") if match else path
        validation: int | str | None = None
        if (
            request.method == "POST"
            and path == WEBHOOKS
            and self._authorised(request)
            and self._subscription_problem(body) is None
        ):
            validation = await self._validate_callback(body["CallbackURL"])
        with self.lock:
            self.requests += 1
            try:
                if self.blocked_until.get(endpoint, 0.0) > self.clock.time():
                    raise ApiError(
                        403,
                        f"Too many errors on {endpoint}: this app is blocked for an hour",
                    )
                if not self._authorised(request):
                    raise ApiError(
                        401,
                        "Unauthorized: the access token is missing or expired",
                        {"WWW-Authenticate": "Bearer"},
                    )
                self._count_call()
                if isinstance(body, ApiError):
                    raise body
                status, payload = self._dispatch(request, division, path, body, validation)
                headers = self._limit_headers()
                if payload is None:
                    return Response(status_code=status, headers=headers)
                return self._json(status, payload, headers)
            except ODataError as exc:
                self._note_error(endpoint, 400)
                return self._json(400, error_body(str(exc)), self._limit_headers())
            except ApiError as exc:
                if exc.status != 429:
                    self._note_error(endpoint, exc.status)
                headers = exc.headers if exc.status in (429, 401) else self._limit_headers()
                if self.language == "nl":
                    body = error_body(_in_dutch(exc.message), lang="nl-NL")
                else:
                    body = error_body(exc.message)
                return self._json(exc.status, body, headers)

    def _dispatch(
        self,
        request: Request,
        division: int | None,
        path: str,
        body: Any,
        validation: int | str | None = None,
    ) -> tuple[int, Any]:
        base = str(request.base_url)
        query = request.query_params
        if path == "current/Me":
            me = {
                "__metadata": {
                    "uri": f"{base}api/v1/current/Me(guid'{self.user_id}')",
                    "type": "Exact.Web.Api.System.Me",
                },
                "UserID": self.user_id,
                "CurrentDivision": self.division,
                "FullName": "Sandbox User",
                "UserName": "sandbox@example.nl",
                "Email": "sandbox@example.nl",
                "LanguageCode": "nl-NL",
            }
            select = parse_select(query.get("$select"))
            if select:
                me = {k: v for k, v in me.items() if k in select or k == "__metadata"}
            return 200, {"d": {"results": [me]}}
        if division != self.division:
            raise ApiError(403, f"Forbidden: no access to division {division}")
        if path in SYNC or path == "sync/Deleted":
            if request.method != "GET":
                raise ApiError(405, "The Sync API is read-only")
            return 200, self._sync(request, base, path)
        match = _KEY.match(path)
        resource = match.group("resource") if match else path
        if resource == WEBHOOKS:
            key = _parse_key(match.group("key")) if match else None
            return self._webhooks(request, key, body, validation)
        if resource not in RESOURCES:
            raise ApiError(404, f"Resource not found: {resource}")
        spec = RESOURCES[resource]
        key = _parse_key(match.group("key")) if match else None
        method = request.method
        if spec.read_only and method != "GET":
            raise ApiError(405, f"{resource} is read-only")
        if method == "GET":
            select = parse_select(query.get("$select"))
            self._check_select(resource, select)
            expand = set(parse_select(query.get("$expand")) or [])
            if key is not None:
                record = self.tables[resource].get(key)
                if record is None:
                    raise ApiError(404, "Object not found")
                return 200, {"d": self._render(base, resource, record, select, expand)}
            self._check_mandatory_filter(resource, query.get("$filter", ""))
            return 200, self._collection(request, base, resource, select, expand)
        if method == "POST":
            if key is not None:
                raise ApiError(400, "POST goes to the collection, not to one record")
            if not isinstance(body, dict):
                raise ApiError(400, "The request body must be a JSON object")
            record = self._create(resource, dict(body))
            return 201, {"d": self._render(base, resource, record, None, {"SalesOrderLines"})}
        if key is None:
            raise ApiError(400, f"{method} needs a key: {resource}(guid'…')")
        if method == "PUT":
            if not isinstance(body, dict):
                raise ApiError(400, "The request body must be a JSON object")
            self._update(resource, key, body)
            return 204, None
        self._delete(resource, key)
        return 204, None

    def _sorted_keys(self, resource: str) -> list[tuple[int, str]]:
        """The table's keys in key order, cached until the table changes size or keys."""
        table = self.tables[resource]
        cached = self._key_cache.get(resource)
        if cached is None or cached[0] != len(table) or cached[1] != self._key_version:
            spec = RESOURCES[resource]
            keys = sorted(_sort_value(key, spec) for key in table)
            cached = self._key_cache[resource] = (len(table), self._key_version, keys)
        return cached[2]

    def _check_mandatory_filter(self, resource: str, text: str) -> None:
        """Exact's mandatory filtering: on an endpoint with a Sync API a collection GET
        must filter on one of the allowed fields, and on allowed fields only."""
        if not has_mandatory_filter(resource):
            return
        try:
            named = filter_fields(text)
        except ODataError as exc:
            raise ApiError(400, str(exc)) from None
        if not any(filterable(resource, name) for name in named):
            raise ApiError(400, mandatory_filter_message(resource))
        refused = sorted(name for name in named if not filterable(resource, name))
        if refused:
            raise ApiError(400, f"Filtering on these fields is not supported: {', '.join(refused)}")

    def _check_select(self, resource: str, select: list[str] | None) -> None:
        for name in select or ():
            if name not in FIELDS[resource]:
                raise ApiError(400, f"$select: no property '{name}' in {resource}")

    def _page(
        self, request: Request, rows: list[dict[str, Any]], page_size: int, token_of: Any
    ) -> tuple[list[dict[str, Any]], str | None]:
        query = request.query_params
        top_text = query.get("$top")
        try:
            top = int(top_text) if top_text is not None else None
        except ValueError:
            raise ApiError(400, f"$top must be a number, not {top_text!r}") from None
        limit = page_size if top is None else min(page_size, top)
        page = rows[:limit]
        more = len(rows) > limit and (top is None or top > limit)
        if not more or not page:
            return page, None
        params = dict(query)
        params["$skiptoken"] = token_of(page[-1])
        if top is not None:
            params["$top"] = str(top - limit)
        return page, f"{str(request.base_url).rstrip('/')}{request.url.path}?{urlencode(params)}"

    def _collection(
        self,
        request: Request,
        base: str,
        resource: str,
        select: list[str] | None,
        expand: set[str],
    ) -> dict[str, Any]:
        query = request.query_params
        spec = RESOURCES[resource]
        predicate = parse_filter(query.get("$filter", ""), set(FIELDS[resource]))
        table = self.tables[resource]
        order = parse_orderby(query.get("$orderby"))
        total: int | None = None
        if order or query.get("$inlinecount") == "allpages":
            rows = [r for r in table.values() if predicate(r)]
            total = len(rows)
        if order:
            for name, desc in reversed(order):
                rows.sort(key=partial(_field_sort_key, name), reverse=desc)
            skip = int(query.get("$skiptoken", "0") or 0) if query.get("$skiptoken") else 0
            rows = rows[skip : skip + self.page_size + 1]

            def token_of(row: dict[str, Any]) -> str:
                return str(skip + rows.index(row) + 1)
        else:
            # key order; a page needs only the rows after the skiptoken (bisect), so
            # reading a large table page by page stays linear
            keys = self._sorted_keys(resource)
            start = 0
            skiptoken = query.get("$skiptoken")
            if skiptoken:
                start = bisect.bisect_right(keys, _sort_value(_parse_key(skiptoken), spec))
            rows = []
            for sort_value in keys[start:]:
                row = table[_table_key(sort_value)]
                if predicate(row):
                    rows.append(row)
                    if len(rows) > self.page_size:
                        break

            def token_of(row: dict[str, Any]) -> str:
                return f"guid'{row[spec.key]}'" if spec.key != "Code" else str(row[spec.key])

        page, next_url = self._page(request, rows, self.page_size, token_of)
        data: dict[str, Any] = {
            "results": [self._render(base, resource, r, select, expand) for r in page]
        }
        if total is not None:
            data["__count"] = str(total)
        if next_url:
            data["__next"] = next_url
        return {"d": data}

    def _sync(self, request: Request, base: str, path: str) -> dict[str, Any]:
        query = request.query_params
        select = parse_select(query.get("$select"))
        if select is None:
            raise ApiError(400, "$select is mandatory on the Sync API")
        if path == "sync/Deleted":
            known = {
                "Timestamp",
                "DeletedBy",
                "DeletedDate",
                "Division",
                "EntityKey",
                "EntityType",
                "ID",
            }
            source: list[dict[str, Any]] = self.deleted
            resource = None
        else:
            resource = SYNC[path]
            known = sync_fields(path)
            source = sorted(self.tables[resource].values(), key=lambda r: r["Timestamp"])
        for name in select:
            if name not in known:
                raise ApiError(400, f"$select: no property '{name}' in {path}")
        text = query.get("$filter", "")
        if path == "sync/Deleted" and (
            len(re.findall(r"\bEntityType\b", text)) > 1 or re.search(r"\bor\b", text)
        ):
            # Exact answers one EntityType per call (as the public clients ask it)
            raise ApiError(400, "sync/Deleted: filter on one EntityType per call")
        predicate = parse_filter(text, known)
        skiptoken = query.get("$skiptoken")
        after = int(skiptoken.rstrip("L")) if skiptoken else 0
        rows = [r for r in source if r["Timestamp"] > after and predicate(r)]
        page, next_url = self._page(
            request, rows, self.sync_page_size, lambda r: f"{r['Timestamp']}L"
        )
        results: list[dict[str, Any]] = []
        for row in page:
            if resource is None:
                out: dict[str, Any] = {
                    "__metadata": {
                        "uri": f"{base}api/v1/{self.division}/sync/Deleted",
                        "type": "Exact.Web.Api.Models.Sync.Deleted",
                    }
                }
                for name in select:
                    value = row.get(name)
                    out[name] = to_wire(value) if isinstance(value, datetime) else value
                results.append(out)
            else:
                results.append(self._render(base, resource, row, select, set(), sync=True))
        data: dict[str, Any] = {"results": results}
        if next_url:
            data["__next"] = next_url
        return {"d": data}


def _callback_allowed(url: str) -> bool:
    """Exact sends webhooks over https only; the sandbox also to plain http on loopback."""
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and _loopback(parts.hostname))


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _sort_value(key: str, spec: Resource) -> tuple[int, str]:
    return (int(key), key) if spec.key == "Code" else (0, key)


def _table_key(sort_value: tuple[int, str]) -> str:
    return sort_value[1]


def _parse_key(text: str) -> str:
    text = text.strip()
    if text.lower().startswith("guid'") and text.endswith("'"):
        return text[5:-1].lower()
    return text.strip("'").lower()


def _field_sort_key(name: str, row: dict[str, Any]) -> tuple[int, Any]:
    value = row.get(name)
    if value is None:
        return (0, "")
    if isinstance(value, datetime):
        return (1, value.timestamp())
    if isinstance(value, bool | int | float):
        return (1, float(value))
    return (2, str(value))
