"""The custom CRM: a company's own CRM behind the Samband REST contract (``kind: rest``).

It implements ``docs/custom-system-api.yaml`` for four collections:

=========== ============ ================================================================
type        path         fields
=========== ============ ================================================================
Contact     /contacts    first_name, last_name, email, phone, title, customer_id
Customer    /customers   name, org_no, email, phone, website, address {street, zip_code,
                         city, country}
Order       /orders      order_no, customer_id, order_date, currency, status,
                         lines [{product_id, description, quantity, unit_price}]
Product     /products    code, name, description, unit_price, unit_cost
=========== ============ ================================================================

Every record also has ``id`` (integer), ``external_ref``, ``updated_at`` (ISO 8601 from the
sandbox clock) and ``deleted`` (false; true in the tombstones of the change feed).

The change feed ``GET /{path}?since=<cursor>&limit=<n>`` returns records in the order of a
monotonic change sequence; the cursor is that sequence as an opaque string, so two edits
in the same microsecond are never missed.  ``next`` is the position after the page,
``has_more`` says whether another page is waiting.

Bearer-token auth (``token``, default ``sandbox-token``; or HTTP basic when ``basic`` is
given), RFC 7807 problem bodies, 400/422 for bad input, 404 for unknown ids, 409 when a
record in use is deleted, and the fault injection of every sandbox.

The optional webhook of the contract: with a ``webhook_url`` and ``webhook_secret`` (given
to the constructor, or ``PUT /_sandbox/webhook {"url": ..., "secret": ...}``), every
change POSTs ``{"type", "id", "action", "occurred_at"}`` there from a background thread,
signed with ``X-Samband-Timestamp`` and ``X-Samband-Signature: sha256=HEX`` (HMAC-SHA256 of
``TIMESTAMP.BODY``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import random
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from samband import exactjson
from samband.sandbox._base import ADMIN_PREFIX, Clock, Faults, Sandbox
from samband.sandbox._push import Deliverer, Delivery

DEFAULT_TOKEN = "sandbox-token"
DEFAULT_LIMIT = 100
MAX_LIMIT = 500

#: URL path → entity type name
PATHS = {"contacts": "Contact", "customers": "Customer", "orders": "Order", "products": "Product"}
TYPE_PATHS = {name: path for path, name in PATHS.items()}

ORDER_STATUSES = ("draft", "confirmed", "invoiced", "cancelled")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_READ_ONLY = ("id", "updated_at", "deleted")


class Invalid(Exception):
    """A request body the sandbox refuses: 422 with one entry per field."""

    def __init__(self, errors: list[dict[str, str]], status: int = 422) -> None:
        self.errors, self.status = errors, status
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))


@dataclass
class _Row:
    data: dict[str, Any]
    seq: int
    deleted: bool = False


# -- field checks: each returns the stored value or raises ValueError(message) --------
def _string(max_length: int = 200) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError(f"must be a string, not {_json_type(value)}")
        if len(value) > max_length:
            raise ValueError(f"is {len(value)} characters long; at most {max_length}")
        return value

    return check


def _email(value: Any) -> Any:
    value = _string(254)(value)
    if value and not _EMAIL.match(value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


def _number(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"must be a number, not {_json_type(value)}")
    return value


def _date(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"must be a date string YYYY-MM-DD, not {_json_type(value)}")
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _currency(value: Any) -> Any:
    value = _string(3)(value)
    if value is not None and not _CURRENCY.match(value):
        raise ValueError(f"{value!r} is not an ISO 4217 currency code such as NOK")
    return value


def _status(value: Any) -> Any:
    if value not in ORDER_STATUSES:
        raise ValueError(f"{value!r} is not one of {', '.join(ORDER_STATUSES)}")
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


ADDRESS_FIELDS: dict[str, Callable[[Any], Any]] = {
    "street": _string(),
    "zip_code": _string(20),
    "city": _string(100),
    "country": _string(60),
}
LINE_FIELDS = ("product_id", "description", "quantity", "unit_price")

# Plain fields per type (references, addresses and lines are checked by the sandbox).
FIELDS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "Contact": {
        "first_name": _string(100),
        "last_name": _string(100),
        "email": _email,
        "phone": _string(40),
        "title": _string(100),
        "external_ref": _string(),
    },
    "Customer": {
        "name": _string(),
        "org_no": _string(30),
        "email": _email,
        "phone": _string(40),
        "website": _string(),
        "external_ref": _string(),
    },
    "Order": {
        "order_no": _string(40),
        "order_date": _date,
        "currency": _currency,
        "status": _status,
        "external_ref": _string(),
    },
    "Product": {
        "code": _string(40),
        "name": _string(),
        "description": _string(1000),
        "unit_price": _number,
        "unit_cost": _number,
        "external_ref": _string(),
    },
}
# field → entity type it references
REFERENCES: dict[str, dict[str, str]] = {
    "Contact": {"customer_id": "Customer"},
    "Order": {"customer_id": "Customer"},
    "Customer": {},
    "Product": {},
}


def _empty(type_name: str) -> dict[str, Any]:
    record: dict[str, Any] = {"id": None}
    record.update(dict.fromkeys(FIELDS[type_name]))
    record.update(dict.fromkeys(REFERENCES[type_name]))
    if type_name == "Customer":
        record["address"] = dict.fromkeys(ADDRESS_FIELDS)
    if type_name == "Order":
        record.update(currency="NOK", status="draft", lines=[])
    return record


class CustomCrmSandbox(Sandbox):
    """The custom CRM of the seeds, served on 127.0.0.1 (see the module docstring)."""

    kind = "rest"

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        basic: tuple[str, str] | None = None,
        clock: Clock | None = None,
        faults: Faults | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> None:
        super().__init__(clock=clock, faults=faults)
        self.token = token
        self.basic = basic
        self.webhook_url, self.webhook_secret = webhook_url, webhook_secret
        self.webhooks = Deliverer("custom-crm-sandbox")
        self.reset()

    # -- state --------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.tables: dict[str, dict[int, _Row]] = {name: {} for name in FIELDS}
            self.seq = 0
            self._next_id = dict.fromkeys(FIELDS, 1)

    def _stamp(self, data: dict[str, Any]) -> int:
        self.seq += 1
        data["updated_at"] = self.clock.now().isoformat()
        return self.seq

    def records(self, type_name: str) -> dict[int, dict[str, Any]]:
        """Live records of a type, by id (copies)."""
        with self.lock:
            return {
                rid: _copy(row.data)
                for rid, row in self.tables[type_name].items()
                if not row.deleted
            }

    # -- writes, used by the HTTP routes and by tests/demos as "outside edits" -------
    def insert(self, type_name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a record from a request body; raises :class:`Invalid`."""
        with self.lock:
            record = _empty(type_name)
            self._apply(type_name, record, body, creating=True)
            rid = self._next_id[type_name]
            self._next_id[type_name] = rid + 1
            record["id"] = rid
            if type_name == "Order" and not record.get("order_no"):
                record["order_no"] = f"SO-{rid:05d}"
            record["deleted"] = False
            seq = self._stamp(record)
            self.tables[type_name][rid] = _Row(record, seq)
            self._changed(type_name, rid, "created")
            return _copy(record)

    def edit(self, type_name: str, record_id: int, body: dict[str, Any]) -> dict[str, Any] | None:
        """Merge ``body`` into a record (JSON merge patch); None when it does not exist."""
        with self.lock:
            row = self.tables[type_name].get(record_id)
            if row is None or row.deleted:
                return None
            record = _copy(row.data)
            self._apply(type_name, record, body, creating=False)
            row.seq = self._stamp(record)
            row.data = record
            self._changed(type_name, record_id, "updated")
            return _copy(record)

    def remove(self, type_name: str, record_id: int) -> bool | str:
        """Delete a record: True, False when it does not exist, or why it is in use."""
        with self.lock:
            row = self.tables[type_name].get(record_id)
            if row is None or row.deleted:
                return False
            users = self._users(type_name, record_id)
            if users:
                return users
            row.deleted = True
            row.data = {**row.data, "deleted": True}
            row.seq = self._stamp(row.data)
            self._changed(type_name, record_id, "deleted")
            return True

    def _users(self, type_name: str, record_id: int) -> str:
        for other, refs in REFERENCES.items():
            for field_name, target in refs.items():
                if target != type_name:
                    continue
                for row in self.tables[other].values():
                    if not row.deleted and row.data.get(field_name) == record_id:
                        return f"{other} {row.data['id']} refers to it in {field_name}"
        if type_name == "Product":
            for row in self.tables["Order"].values():
                if not row.deleted and any(
                    line.get("product_id") == record_id for line in row.data.get("lines") or []
                ):
                    return f"a line of Order {row.data['id']} sells it"
        return ""

    def _exists(self, type_name: str, record_id: Any) -> bool:
        row = self.tables[type_name].get(record_id) if isinstance(record_id, int) else None
        return row is not None and not row.deleted

    def _apply(
        self, type_name: str, record: dict[str, Any], body: dict[str, Any], *, creating: bool
    ) -> None:
        errors: list[dict[str, str]] = []
        fields = FIELDS[type_name]
        refs = REFERENCES[type_name]
        for key, value in body.items():
            try:
                if key in _READ_ONLY:
                    continue
                if key in fields:
                    record[key] = fields[key](value)
                elif key in refs:
                    record[key] = self._reference(refs[key], value)
                elif key == "address" and type_name == "Customer":
                    record["address"] = self._address(record.get("address"), value)
                elif key == "lines" and type_name == "Order":
                    record["lines"] = self._lines(value)
                else:
                    raise ValueError(f"is not a field of {type_name}")
            except ValueError as exc:
                errors.append({"field": key, "message": str(exc)})
        errors.extend(self._required(type_name, record))
        if errors:
            raise Invalid(errors)

    def _reference(self, target: str, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be the integer id of a {target}, not {_json_type(value)}")
        if not self._exists(target, value):
            raise ValueError(f"{target} {value} does not exist")
        return value

    def _address(self, current: Any, value: Any) -> dict[str, Any]:
        address = dict(current or dict.fromkeys(ADDRESS_FIELDS))
        if value is None:
            return dict.fromkeys(ADDRESS_FIELDS)
        if not isinstance(value, dict):
            raise ValueError(f"must be an object, not {_json_type(value)}")
        for key, part in value.items():
            if key not in ADDRESS_FIELDS:
                raise ValueError(f"address has no field {key!r}")
            try:
                address[key] = ADDRESS_FIELDS[key](part)
            except ValueError as exc:
                raise ValueError(f"{key} {exc}") from None
        return address

    def _lines(self, value: Any) -> list[dict[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ValueError(f"must be an array of lines, not {_json_type(value)}")
        lines = []
        for index, line in enumerate(value):
            if not isinstance(line, dict):
                raise ValueError(f"line {index + 1} must be an object")
            unknown = set(line) - set(LINE_FIELDS)
            if unknown:
                raise ValueError(f"line {index + 1} has no field {sorted(unknown)[0]!r}")
            try:
                product_id = self._reference("Product", line.get("product_id"))
                quantity = _number(line.get("quantity", 1))
                unit_price = _number(line.get("unit_price"))
                description = _string(1000)(line.get("description"))
            except ValueError as exc:
                raise ValueError(f"line {index + 1}: {exc}") from None
            if quantity is None:
                raise ValueError(f"line {index + 1}: quantity is required")
            lines.append(
                {
                    "product_id": product_id,
                    "description": description,
                    "quantity": quantity,
                    "unit_price": unit_price,
                }
            )
        return lines

    @staticmethod
    def _required(type_name: str, record: dict[str, Any]) -> list[dict[str, str]]:
        def missing(key: str) -> bool:
            value = record.get(key)
            return value is None or (isinstance(value, str) and not value.strip())

        if type_name == "Contact" and missing("first_name") and missing("last_name"):
            return [{"field": "last_name", "message": "a contact needs a first or last name"}]
        required = {"Customer": ("name",), "Product": ("code", "name"), "Order": ("customer_id",)}
        return [
            {"field": key, "message": "is required"}
            for key in required.get(type_name, ())
            if missing(key)
        ]

    # -- the webhook -------------------------------------------------------------------
    def _changed(self, type_name: str, record_id: int, action: str) -> None:
        url, secret = self.webhook_url, self.webhook_secret
        if not url or not secret:
            return
        event = {
            "type": type_name,
            "id": str(record_id),
            "action": action,
            "occurred_at": self.clock.now().isoformat(),
        }
        body = json.dumps(event).encode()
        timestamp = str(int(self.clock.time()))
        digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        headers = (
            ("Content-Type", "application/json"),
            ("X-Samband-Timestamp", timestamp),
            ("X-Samband-Signature", "sha256=" + digest.hexdigest()),
        )
        self.webhooks.send(Delivery(url, body, headers))

    async def _webhook_settings(self, request: Request) -> Response:
        if request.method == "PUT":
            try:
                data = await request.json()
                url, secret = data.get("url"), data.get("secret")
            except (ValueError, AttributeError):
                return self._problem(400, "Bad Request", 'send {"url": ..., "secret": ...}')
            if url is not None and not (isinstance(url, str) and url.startswith("http")):
                return self._problem(400, "Bad Request", "url must be an http(s) address")
            if url and not secret:
                return self._problem(400, "Bad Request", "a webhook needs a secret")
            with self.lock:
                self.webhook_url, self.webhook_secret = url, secret
        return _json({"url": self.webhook_url, "signed": bool(self.webhook_secret)})

    # -- the change feed ---------------------------------------------------------------
    def feed(
        self,
        type_name: str,
        since: int,
        limit: int,
        external_ref: str | None = None,
    ) -> tuple[list[dict[str, Any]], int, bool]:
        """Records changed after ``since`` (tombstones included), the next cursor, and
        whether more are waiting."""
        with self.lock:
            rows = sorted(
                (r for r in self.tables[type_name].values() if r.seq > since),
                key=lambda r: r.seq,
            )
            if external_ref is not None:
                rows = [
                    r for r in rows if not r.deleted and r.data.get("external_ref") == external_ref
                ]
            page = rows[:limit]
            # an empty page may jump to the global sequence: any later change is above it
            next_seq = page[-1].seq if page else max(since, self.seq)
            return [_copy(r.data) for r in page], next_seq, len(rows) > limit

    # -- HTTP ---------------------------------------------------------------------------
    def problem(self, status: int, title: str) -> tuple[dict[str, Any], str]:
        return (
            {"type": "about:blank", "title": title, "status": status},
            "application/problem+json",
        )

    def _problem(
        self, status: int, title: str, detail: str | None = None, **extra: Any
    ) -> Response:
        body, ctype = self.problem(status, title)
        if detail:
            body["detail"] = detail
        body.update(extra)
        headers = {"WWW-Authenticate": 'Bearer realm="custom-crm"'} if status == 401 else None
        return Response(exactjson.dumps(body), status, headers=headers, media_type=ctype)

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and self.token:
            return secrets.compare_digest(value.strip().encode(), self.token.encode())
        if scheme.lower() == "basic" and self.basic is not None:
            try:
                user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return secrets.compare_digest(
                f"{user}:{password}".encode(), f"{self.basic[0]}:{self.basic[1]}".encode()
            )
        return False

    def routes(self) -> list[Route]:
        return [
            Route(f"{ADMIN_PREFIX}/webhook", self._webhook_settings, methods=["GET", "PUT"]),
            Route("/{path}", self._collection, methods=["GET", "POST"]),
            Route("/{path}/{record_id}", self._item, methods=["GET", "PATCH", "DELETE"]),
        ]

    def _type_of(self, request: Request) -> str | None:
        return PATHS.get(request.path_params["path"])

    async def _collection(self, request: Request) -> Response:
        self.requests += 1
        if not self._authorised(request):
            return self._problem(401, "Unauthorized", "send Authorization: Bearer <token>")
        type_name = self._type_of(request)
        if type_name is None:
            return self._problem(404, "Not Found", f"no collection {request.url.path}")
        if request.method == "POST":
            body = await self._body(request)
            if isinstance(body, Response):
                return body
            try:
                record = self.insert(type_name, body)
            except Invalid as exc:
                return self._invalid(exc)
            return _json(record, 201, {"Location": f"/{TYPE_PATHS[type_name]}/{record['id']}"})
        params = request.query_params
        try:
            since = _int_param(params.get("since"), "since", 0)
            limit = min(_int_param(params.get("limit"), "limit", DEFAULT_LIMIT), MAX_LIMIT)
        except ValueError as exc:
            return self._problem(400, "Bad Request", str(exc))
        if limit < 1:
            return self._problem(400, "Bad Request", "limit must be at least 1")
        items, next_seq, more = self.feed(type_name, since, limit, params.get("external_ref"))
        return _json({"items": items, "next": str(next_seq), "has_more": more})

    async def _item(self, request: Request) -> Response:
        self.requests += 1
        if not self._authorised(request):
            return self._problem(401, "Unauthorized", "send Authorization: Bearer <token>")
        type_name = self._type_of(request)
        if type_name is None:
            return self._problem(404, "Not Found", f"no collection {request.url.path}")
        raw_id = request.path_params["record_id"]
        record_id = int(raw_id) if raw_id.isdigit() else -1
        missing = self._problem(404, "Not Found", f"{type_name} {raw_id} does not exist")
        if request.method == "GET":
            with self.lock:
                row = self.tables[type_name].get(record_id)
                found = row if row is not None and not row.deleted else None
                data, etag = (_copy(found.data), _etag(found)) if found else (None, "")
            return missing if data is None else _json(data, headers={"ETag": etag})
        if request.method == "DELETE":
            outcome = self.remove(type_name, record_id)
            if outcome is False:
                return missing
            if isinstance(outcome, str):
                return self._problem(409, "Conflict", f"{type_name} {raw_id} is in use: {outcome}")
            return Response(status_code=204)
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        wanted = request.headers.get("if-match")
        with self.lock:  # the precondition and the edit at once (an RLock)
            row = self.tables[type_name].get(record_id)
            live = row if row is not None and not row.deleted else None
            if wanted not in (None, "*") and live is not None and wanted != _etag(live):
                return self._problem(
                    412, "Precondition Failed", f"{type_name} {raw_id} was changed meanwhile"
                )
            try:
                record = self.edit(type_name, record_id, body)
            except Invalid as exc:
                return self._invalid(exc)
            if record is None:
                return missing
            etag = _etag(self.tables[type_name][record_id])
        return _json(record, headers={"ETag": etag})

    async def _body(self, request: Request) -> dict[str, Any] | Response:
        raw = await request.body()
        try:
            body = exactjson.loads(raw)
        except orjson.JSONDecodeError:
            return self._problem(400, "Bad Request", "the body is not JSON")
        if not isinstance(body, dict):
            return self._problem(400, "Bad Request", "the body must be a JSON object")
        return body

    def _invalid(self, exc: Invalid) -> Response:
        return self._problem(exc.status, "Validation failed", str(exc), errors=exc.errors)

    # -- generated data ------------------------------------------------------------------
    def seed(self, count: int, rng_seed: int = 1) -> None:
        """``count`` customers, contacts, products and orders of realistic Norwegian data."""
        from samband import sampledata

        rng = random.Random(rng_seed)
        companies = sampledata.companies(count, rng, "NO")
        customer_ids = []
        for company in companies:
            record = self.insert(
                "Customer",
                {
                    "name": company["name"],
                    "org_no": company["org_no"],
                    "email": company["email"],
                    "phone": company["phone"],
                    "website": company["website"],
                    "address": {
                        "street": company["address"],
                        "zip_code": company["zip_code"],
                        "city": company["city"],
                        "country": company["country"],
                    },
                },
            )
            customer_ids.append(record["id"])
        for person in sampledata.persons(count, rng, "NO", companies):
            index = person["company_index"]
            self.insert(
                "Contact",
                {
                    "first_name": person["first_name"],
                    "last_name": person["last_name"],
                    "email": person["email"],
                    "phone": person["phone"],
                    "title": person["title"],
                    "customer_id": customer_ids[index] if index is not None else None,
                },
            )
        products = []
        for product in sampledata.products(count, rng):
            body = {k: _plain(v) for k, v in product.items()}
            products.append(self.insert("Product", body))
        if not customer_ids or not products:
            return
        start = self.clock.now().date()
        for _ in range(count):
            lines = []
            for product in rng.sample(products, min(len(products), rng.randint(1, 3))):
                lines.append(
                    {
                        "product_id": product["id"],
                        "description": product["name"],
                        "quantity": rng.randint(1, 20),
                        "unit_price": product["unit_price"],
                    }
                )
            self.insert(
                "Order",
                {
                    "customer_id": rng.choice(customer_ids),
                    "order_date": (start - timedelta(days=rng.randint(0, 365))).isoformat(),
                    "currency": "NOK",
                    "status": rng.choice(ORDER_STATUSES[:3]),
                    "lines": lines,
                },
            )

    def system_settings(self, base_url: str, token_variable: str = "CUSTOM_CRM_TOKEN") -> dict:
        """A ``kind: rest`` system block that fits this sandbox (for demos and tests)."""
        return {
            "kind": "rest",
            "label": "Custom CRM",
            "base_url": base_url,
            "auth": "bearer",
            "credentials": {"token": f"${{{token_variable}}}"},
            "entity_types": {
                name: {
                    "path": path,
                    "external_ref": "external_ref",
                    "properties": describe_properties(name),
                }
                for path, name in PATHS.items()
            },
        }


def describe_properties(type_name: str) -> dict[str, dict[str, Any]]:
    """The property schema of a type in the ``properties:`` form of a ``kind: rest`` config."""
    kinds: dict[Callable[[Any], Any], str] = {
        _email: "string",
        _number: "decimal",
        _date: "date",
        _currency: "string",
        _status: "string",
    }
    props: dict[str, dict[str, Any]] = {
        "id": {"type": "integer", "read_only": True},
        "updated_at": {"type": "datetime", "read_only": True},
    }
    for key, check in FIELDS[type_name].items():
        props[key] = {"type": kinds.get(check, "string")}
    for key, target in REFERENCES[type_name].items():
        props[key] = {"type": "reference", "references": target}
    if type_name == "Customer":
        for key in ADDRESS_FIELDS:
            props[f"address.{key}"] = {"type": "string"}
    if type_name == "Order":
        props["lines"] = {}
    return props


def _int_param(value: str | None, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise ValueError(f"{name} must be a cursor or number this API gave out, not {value!r}")
    return int(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


def _etag(row: _Row) -> str:
    """A record's entity tag (RFC 9110): its change sequence number, quoted."""
    return f'"{row.seq}"'


def _copy(data: dict[str, Any]) -> dict[str, Any]:
    # numbers are kept as the API holds them: a decimal with all its digits
    result: dict[str, Any] = exactjson.loads(exactjson.dumps(data))
    return result


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(exactjson.dumps(data), status, headers=headers, media_type="application/json")
