"""``samband sandbox crmoffice`` — a local emulator of the CRMOffice API.

What is public about CRMOffice is followed exactly: an IdentityServer with
``/connect/authorize`` and ``/connect/token`` (authorization code, scopes ``crmoffice
offline_access``, refresh tokens), bearer JWTs that last an hour, ``GET /companies``
answering an object with ``items``, ``GET /users`` answering a bare array, and the
properties seen per type (Companies ``orgNr``, ``visitAddress``/``postAddress``;
Contacts ``givenName``, ``familyName``, ``directPhone``, ``mobilePhone``, ``email``,
``company.id``; Activities ``subject``, ``startsAt``, ``endsAt``, ``ownerId``,
``address``).

The rest is an assumption, the same one the connector makes (see
:mod:`samband.kinds.crmoffice.connector`):

* paging: ``limit`` (1–100, default 50) and an opaque ``continuationToken``; an answer is
  ``{"items": [...], "continuationToken": "..." | null}``, ordered by
  (``updatedAt``, ``id``), so records edited during a read come again at its end;
* changes: ``updatedSince`` (ISO date-time, inclusive) and ``includeDeleted=true``, which
  adds tombstones ``{"id": 7, "isDeleted": true, "updatedAt": ...}`` of deleted records;
* ``externalId`` on Companies, Contacts and Activities, filterable with ``?externalId=``;
* writes: ``POST`` answers 201 with the record, ``PATCH`` takes a JSON merge patch
  (RFC 7396) and answers 200 with the record, ``DELETE`` answers 204, or 409 when other
  records still point at the record;
* errors: RFC 7807 ``application/problem+json`` with ``type``, ``title``, ``status``,
  ``detail``, ``traceId`` and, for validation, ``errors`` by field (ASP.NET style);
* a property the collection does not have (also a key of a nested object such as
  ``visitAddress``) is refused with 400 rather than dropped, so that a misnamed property
  shows in tests (an ASP.NET API may instead ignore it: see ``FIELDS``);
* rate limit: 300 requests per sliding minute per OAuth client (configurable); over
  it 429 with ``Retry-After`` (seconds) and ``X-RateLimit-*`` headers.

Clients known to the sandbox: ``sandbox-client`` / ``sandbox-secret`` unless others
are passed as ``clients``.  The authorize endpoint logs the user in at once and
redirects with a code (there is no login page).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import math
import random
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from samband import exactjson
from samband.sandbox._base import Clock, ExactJSONResponse, Faults, Sandbox

TOKEN_LIFETIME = 3600.0
CODE_LIFETIME = 300.0
DEFAULT_PAGE = 50
MAX_PAGE = 100
DEFAULT_RATE_LIMIT = (300, 60.0)
SCOPES = {"crmoffice", "offline_access", "openid", "profile"}
DEFAULT_CLIENTS = {"sandbox-client": "sandbox-secret"}
# API collections by URL segment; users are read-only and answer a bare array.
COLLECTIONS = ("companies", "contacts", "activities", "users")
WRITABLE = ("companies", "contacts", "activities")
FIRST_ID = {"companies": 1001, "contacts": 5001, "activities": 20001, "users": 11}

_ORG_NR = re.compile(r"^\d{9}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class _Invalid(Exception):
    """Validation findings: field → messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


def iso(moment: datetime) -> str:
    """``2024-05-01T10:00:00.123Z`` — what the API writes."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse_datetime(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- validation ------------------------------------------------------------------------
def _required(errors: dict[str, list[str]], body: dict[str, Any], name: str) -> None:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        errors.setdefault(name, []).append(f"The {name} field is required.")


def _text(errors: dict[str, list[str]], body: dict[str, Any], name: str, limit: int) -> None:
    if name not in body or body[name] is None:
        return
    value = body[name]
    if not isinstance(value, str):
        errors.setdefault(name, []).append(f"The field {name} must be a string.")
    elif len(value) > limit:
        errors.setdefault(name, []).append(
            f"The field {name} must be a string with a maximum length of {limit}."
        )


def _address(errors: dict[str, list[str]], body: dict[str, Any], name: str) -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, dict):
        errors.setdefault(name, []).append(f"The field {name} must be an object.")
        return
    for key, limit in (("streetAddress", 200), ("postCode", 20), ("postalArea", 100)):
        sub: dict[str, list[str]] = {}
        _text(sub, value, key, limit)
        for message in sub.get(key, []):
            errors.setdefault(f"{name}.{key}", []).append(message)
    country = value.get("country")
    if country is not None and not (
        isinstance(country, str) and re.fullmatch(r"[A-Z]{2}", country)
    ):
        errors.setdefault(f"{name}.country", []).append(
            "The field country must be an ISO 3166-1 alpha-2 code such as NO."
        )


# The properties of each collection (nested objects by their keys): what CRMOffice is
# known to have (crm-systems.md, the field's documents) and what the connector assumes.
# Anything else in a write is refused (400, ``errors`` by field).
_ADDRESS_KEYS = frozenset({"streetAddress", "postCode", "postalArea", "country"})
_STAMP_KEYS = frozenset({"id", "createdAt", "updatedAt"})
FIELDS: dict[str, dict[str, frozenset[str] | None]] = {
    "companies": {
        **dict.fromkeys(_STAMP_KEYS),
        **dict.fromkeys(("name", "orgNr", "phone", "email", "website", "externalId")),
        "visitAddress": _ADDRESS_KEYS,
        "postAddress": _ADDRESS_KEYS,
    },
    "contacts": {
        **dict.fromkeys(_STAMP_KEYS),
        **dict.fromkeys(
            ("givenName", "familyName", "title", "directPhone", "mobilePhone", "email")
        ),
        "externalId": None,
        "company": frozenset({"id", "name"}),
    },
    "activities": {
        **dict.fromkeys(_STAMP_KEYS),
        **dict.fromkeys(("subject", "description", "startsAt", "endsAt", "ownerId")),
        "externalId": None,
        "address": frozenset({"country", "postalArea"}),
    },
}


def _unknown_fields(errors: dict[str, list[str]], collection: str, body: dict[str, Any]) -> None:
    known = FIELDS.get(collection)
    if known is None:
        return
    for name, value in body.items():
        if name not in known:
            errors.setdefault(name, []).append(f"Could not find member '{name}'.")
            continue
        keys = known[name]
        if keys is not None and isinstance(value, dict):
            for key in value:
                if key not in keys:
                    errors.setdefault(f"{name}.{key}", []).append(
                        f"Could not find member '{key}' on {name}."
                    )


class CrmOfficeSandbox(Sandbox):
    """CRMOffice on 127.0.0.1: OAuth2, companies, contacts, activities, users."""

    kind = "crmoffice"

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        faults: Faults | None = None,
        clients: dict[str, str] | None = None,
        rate_limit: tuple[int, float] | None = DEFAULT_RATE_LIMIT,
        token_lifetime: float = TOKEN_LIFETIME,
    ) -> None:
        super().__init__(clock=clock, faults=faults)
        self.clients = dict(clients or DEFAULT_CLIENTS)
        self.rate_limit = rate_limit
        self.token_lifetime = token_lifetime
        self._signing_key = secrets.token_bytes(32)
        self._state_lock = threading.RLock()
        #: tokens issued, by grant type (for tests)
        self.token_grants: dict[str, int] = {}
        self.reset()

    # -- state ----------------------------------------------------------------------
    def reset(self) -> None:
        with self._state_lock:
            self.tables: dict[str, dict[int, dict[str, Any]]] = {c: {} for c in COLLECTIONS}
            self.tombstones: dict[str, dict[int, dict[str, Any]]] = {c: {} for c in COLLECTIONS}
            self._next_id = dict(FIRST_ID)
            self.codes: dict[str, dict[str, Any]] = {}
            self.access_tokens: dict[str, dict[str, Any]] = {}
            self.refresh_tokens: dict[str, dict[str, Any]] = {}
            self._calls: dict[str, deque[float]] = {}
            self._last_stamp: datetime | None = None

    def _stamp(self) -> str:
        """A modification time: the clock, strictly after the previous stamp."""
        now = self.clock.now()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self._last_stamp is not None and now <= self._last_stamp:
            now = self._last_stamp + timedelta(milliseconds=1)
        self._last_stamp = now
        return iso(now)

    def _new_id(self, collection: str) -> int:
        value = self._next_id[collection]
        self._next_id[collection] = value + 1
        return value

    # -- direct access for tests and seeding (what a user does in CRMOffice itself) -------
    def add(self, collection: str, record: dict[str, Any]) -> dict[str, Any]:
        """Store a record as if a user created it in CRMOffice; returns it with its id."""
        with self._state_lock:
            if collection != "users":
                self._validate(collection, record)
            stamp = self._stamp()
            row = {k: copy.deepcopy(v) for k, v in record.items() if k not in ("id",)}
            row = {"id": self._new_id(collection), **row, "createdAt": stamp, "updatedAt": stamp}
            self._decorate(collection, row)
            self.tables[collection][row["id"]] = row
            return copy.deepcopy(row)

    def edit(self, collection: str, record_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a record as a user would (a merge patch); returns the new record."""
        with self._state_lock:
            row = self.tables[collection][record_id]
            merged = _merge_patch(copy.deepcopy(row), changes)
            self._validate(collection, merged)
            merged["updatedAt"] = self._stamp()
            self._decorate(collection, merged)
            self.tables[collection][record_id] = merged
            return copy.deepcopy(merged)

    def remove(self, collection: str, record_id: int) -> None:
        """Delete a record as a user would (leaves a tombstone for change reads)."""
        with self._state_lock:
            self.tables[collection].pop(record_id)
            self.tombstones[collection][record_id] = {
                "id": record_id,
                "isDeleted": True,
                "updatedAt": self._stamp(),
            }

    def record(self, collection: str, record_id: int) -> dict[str, Any] | None:
        with self._state_lock:
            row = self.tables[collection].get(record_id)
            return copy.deepcopy(row) if row is not None else None

    def records(self, collection: str) -> list[dict[str, Any]]:
        with self._state_lock:
            return [copy.deepcopy(r) for r in self.tables[collection].values()]

    # -- seeding ----------------------------------------------------------------------
    def seed(self, count: int, rng_seed: int = 1) -> None:
        """``count`` users, companies, contacts and activities of Norwegian sample data."""
        from samband.sampledata import companies, persons

        rng = random.Random(rng_seed)
        staff = persons(max(count, 1), rng, "NO")
        firms = companies(count, rng, "NO")
        people = persons(count, rng, "NO", firms)
        with self._state_lock:
            user_ids = []
            for person in staff:
                user = self.add(
                    "users",
                    {
                        "name": f"{person['first_name']} {person['last_name']}",
                        "givenName": person["first_name"],
                        "familyName": person["last_name"],
                        "email": person["email"].split("@")[0] + "@crmoffice-sandbox.no",
                        "isActive": True,
                    },
                )
                user_ids.append(user["id"])
            company_ids = []
            for firm in firms:
                address = {
                    "streetAddress": firm["address"],
                    "postCode": firm["zip_code"],
                    "postalArea": firm["city"],
                    "country": firm["country"],
                }
                company = self.add(
                    "companies",
                    {
                        "name": firm["name"],
                        "orgNr": firm["org_no"],
                        "phone": firm["phone"],
                        "email": firm["email"],
                        "website": firm["website"],
                        "visitAddress": address,
                        "postAddress": dict(address),
                    },
                )
                company_ids.append((company["id"], firm))
            for person in people:
                index = person["company_index"]
                self.add(
                    "contacts",
                    {
                        "givenName": person["first_name"],
                        "familyName": person["last_name"],
                        "title": person["title"],
                        "directPhone": person["phone"],
                        "mobilePhone": person["mobile"],
                        "email": person["email"],
                        "company": {"id": company_ids[index][0]} if index is not None else None,
                    },
                )
            subjects = ("Kundemøte", "Oppfølging", "Tilbudsgjennomgang", "Workshop", "Demo")
            base = datetime(2024, 1, 8, 8, 0, tzinfo=UTC)
            for number in range(count):
                _, firm = company_ids[rng.randrange(len(company_ids))] if company_ids else (0, {})
                starts = base + timedelta(days=rng.randrange(0, 300), hours=rng.randrange(0, 8))
                ends = starts + timedelta(minutes=rng.choice((30, 45, 60, 90, 120)))
                self.add(
                    "activities",
                    {
                        "subject": f"{rng.choice(subjects)} {number + 1}",
                        "startsAt": iso(starts),
                        "endsAt": iso(ends),
                        "ownerId": rng.choice(user_ids),
                        "address": {
                            "country": firm.get("country", "NO"),
                            "postalArea": firm.get("city", "Oslo"),
                        },
                    },
                )

    # -- validation and derived fields -----------------------------------------------------
    def _validate(self, collection: str, body: dict[str, Any]) -> None:
        """Check a whole record (after a merge patch, too); raise :class:`_Invalid`."""
        errors: dict[str, list[str]] = {}
        _unknown_fields(errors, collection, body)
        if collection == "companies":
            _required(errors, body, "name")
            _text(errors, body, "name", 200)
            org_nr = body.get("orgNr")
            if org_nr is not None and not (isinstance(org_nr, str) and _ORG_NR.match(org_nr)):
                errors.setdefault("orgNr", []).append(
                    "The field orgNr must be a Norwegian organisation number of 9 digits."
                )
            for name, limit in (("phone", 50), ("website", 200), ("externalId", 200)):
                _text(errors, body, name, limit)
            _address(errors, body, "visitAddress")
            _address(errors, body, "postAddress")
        elif collection == "contacts":
            _required(errors, body, "familyName")
            for name, limit in (
                ("givenName", 100),
                ("familyName", 100),
                ("title", 100),
                ("directPhone", 50),
                ("mobilePhone", 50),
                ("externalId", 200),
            ):
                _text(errors, body, name, limit)
            company = body.get("company")
            if company is not None:
                company_id = company.get("id") if isinstance(company, dict) else None
                if not isinstance(company_id, int) or isinstance(company_id, bool):
                    errors.setdefault("company.id", []).append("The field id must be a number.")
                elif company_id not in self.tables["companies"]:
                    errors.setdefault("company.id", []).append(
                        f"Company {company_id} does not exist."
                    )
        elif collection == "activities":
            _required(errors, body, "subject")
            _text(errors, body, "subject", 250)
            _text(errors, body, "description", 4000)
            _text(errors, body, "externalId", 200)
            moments: dict[str, datetime] = {}
            for name in ("startsAt", "endsAt"):
                value = body.get(name)
                if value is None:
                    continue
                try:
                    moments[name] = _parse_datetime(str(value))
                except ValueError:
                    errors.setdefault(name, []).append(
                        f"The field {name} must be an ISO 8601 date-time."
                    )
            if (
                "startsAt" in moments
                and "endsAt" in moments
                and moments["endsAt"] < moments["startsAt"]
            ):
                errors.setdefault("endsAt", []).append("endsAt must not be before startsAt.")
            owner = body.get("ownerId")
            if owner is not None:
                if not isinstance(owner, int) or isinstance(owner, bool):
                    errors.setdefault("ownerId", []).append("The field ownerId must be a number.")
                elif owner not in self.tables["users"]:
                    errors.setdefault("ownerId", []).append(f"User {owner} does not exist.")
            address = body.get("address")
            if address is not None and not isinstance(address, dict):
                errors.setdefault("address", []).append("The field address must be an object.")
            elif address is not None:
                _text(errors, address, "postalArea", 100)
                _address(errors, {"address": {"country": address.get("country")}}, "address")
        email = body.get("email")
        if email is not None and not (isinstance(email, str) and _EMAIL.match(email)):
            errors.setdefault("email", []).append("The email field is not a valid e-mail address.")
        if errors:
            raise _Invalid(errors)

    def _decorate(self, collection: str, row: dict[str, Any]) -> None:
        """Server-side fields: the company name next to a contact's company id."""
        if collection == "contacts" and isinstance(row.get("company"), dict):
            company = self.tables["companies"].get(row["company"].get("id"))
            row["company"] = {
                "id": row["company"].get("id"),
                "name": company.get("name") if company else None,
            }

    # -- HTTP helpers -------------------------------------------------------------------
    def problem(self, status: int, title: str) -> tuple[dict[str, Any], str]:
        return self._problem_body(status, title), "application/problem+json"

    def _problem_body(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        errors: dict[str, list[str]] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://httpstatuses.io/{status}",
            "title": title,
            "status": status,
        }
        if detail:
            body["detail"] = detail
        if errors:
            body["type"] = "https://tools.ietf.org/html/rfc9110#section-15.5.1"
            body["errors"] = errors
        body["traceId"] = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"
        return body

    def _error(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        return ExactJSONResponse(
            self._problem_body(status, title, detail, errors),
            status_code=status,
            media_type="application/problem+json",
            headers=headers,
        )

    def _authorise(self, request: Request) -> tuple[str | None, Response | None]:
        """The client id of a valid bearer token, or the 401/429 answer."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        info = self.access_tokens.get(token) if scheme.lower() == "bearer" else None
        if info is None or self.clock.time() >= info["exp"]:
            error = "invalid_token" if token else "invalid_request"
            description = "The access token expired" if info is not None else "No valid token"
            return None, self._error(
                401,
                "Unauthorized",
                description,
                headers={
                    "WWW-Authenticate": f'Bearer error="{error}", error_description="{description}"'
                },
            )
        client = str(info["client_id"])
        if self.rate_limit is not None:
            limit, period = self.rate_limit
            now = self.clock.time()
            calls = self._calls.setdefault(client, deque())
            while calls and now - calls[0] >= period:
                calls.popleft()
            if len(calls) >= limit:
                wait = max(1, math.ceil(calls[0] + period - now))
                return None, self._error(
                    429,
                    "Too Many Requests",
                    f"The rate limit of {limit} requests per {period:g} seconds is used up.",
                    headers={
                        "Retry-After": str(wait),
                        "X-RateLimit-Limit": str(limit),
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": str(wait),
                    },
                )
            calls.append(now)
        return client, None

    # -- OAuth2 -----------------------------------------------------------------------------
    async def _authorize(self, request: Request) -> Response:
        query = request.query_params
        client_id = query.get("client_id", "")
        redirect_uri = query.get("redirect_uri", "")
        split = urlsplit(redirect_uri)
        if client_id not in self.clients:
            return _oauth_page(400, "unauthorized_client", "Unknown client_id.")
        if split.scheme not in ("http", "https") or not split.netloc:
            return _oauth_page(400, "invalid_request", "redirect_uri is missing or invalid.")
        state = query.get("state")

        def back(**params: str) -> Response:
            if state is not None:
                params["state"] = state
            sep = "&" if split.query else "?"
            return RedirectResponse(f"{redirect_uri}{sep}{urlencode(params)}", status_code=302)

        if query.get("response_type") != "code":
            return back(error="unsupported_response_type")
        scopes = set((query.get("scope") or "").split())
        if "crmoffice" not in scopes or not scopes <= SCOPES:
            return back(error="invalid_scope", error_description="Ask for scope crmoffice.")
        challenge = query.get("code_challenge")
        method = query.get("code_challenge_method", "plain")
        code = secrets.token_urlsafe(24)
        with self._state_lock:
            self.codes[code] = {
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(sorted(scopes)),
                "expires": self.clock.time() + CODE_LIFETIME,
                "challenge": challenge,
                "method": method,
            }
        return back(code=code, scope=" ".join(sorted(scopes)))

    async def _token(self, request: Request) -> Response:
        # application/x-www-form-urlencoded, parsed here (no python-multipart needed)
        raw = (await request.body()).decode("utf-8", "replace")
        fields = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        client_id, client_secret = fields.get("client_id"), fields.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(basic[6:]).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            client_id, _, client_secret = decoded.partition(":")
        if not client_id or self.clients.get(client_id) != client_secret:
            return _oauth_error(401, "invalid_client", "Client authentication failed.")
        grant = fields.get("grant_type", "")
        with self._state_lock:
            if grant == "authorization_code":
                code = self.codes.pop(fields.get("code", ""), None)
                if (
                    code is None
                    or code["client_id"] != client_id
                    or code["expires"] < self.clock.time()
                ):
                    return _oauth_error(400, "invalid_grant", "The code is invalid or expired.")
                if code["redirect_uri"] != fields.get("redirect_uri"):
                    return _oauth_error(400, "invalid_grant", "redirect_uri does not match.")
                if code["challenge"] and not _pkce_ok(
                    code["challenge"], code["method"], fields.get("code_verifier", "")
                ):
                    return _oauth_error(400, "invalid_grant", "code_verifier does not match.")
                return self._issue(client_id, code["scope"], grant)
            if grant == "refresh_token":
                info = self.refresh_tokens.pop(fields.get("refresh_token", ""), None)
                if info is None or info["client_id"] != client_id:
                    return _oauth_error(400, "invalid_grant", "The refresh token is invalid.")
                scope = info["scope"]
                wanted = set((fields.get("scope") or scope).split())
                if not wanted <= set(scope.split()):
                    return _oauth_error(400, "invalid_scope", "More scope than was granted.")
                return self._issue(client_id, scope, grant)
        return _oauth_error(400, "unsupported_grant_type", f"grant_type {grant!r}")

    def _issue(self, client_id: str, scope: str, grant: str) -> Response:
        self.token_grants[grant] = self.token_grants.get(grant, 0) + 1
        now = self.clock.time()
        exp = now + self.token_lifetime
        header = _b64(json.dumps({"alg": "HS256", "typ": "at+jwt"}).encode())
        payload = _b64(
            json.dumps(
                {
                    "iss": "https://sandbox.crmoffice.no",
                    "sub": "sandbox-user",
                    "client_id": client_id,
                    "scope": scope.split(),
                    "iat": int(now),
                    "exp": int(exp),
                    "jti": secrets.token_hex(8),
                }
            ).encode()
        )
        signature = _b64(
            hmac.new(self._signing_key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        )
        access = f"{header}.{payload}.{signature}"
        self.access_tokens[access] = {"client_id": client_id, "exp": exp}
        body: dict[str, Any] = {
            "access_token": access,
            "expires_in": int(self.token_lifetime),
            "token_type": "Bearer",
            "scope": scope,
        }
        if "offline_access" in scope.split():
            refresh = secrets.token_hex(32).upper()
            self.refresh_tokens[refresh] = {"client_id": client_id, "scope": scope}
            body["refresh_token"] = refresh
        return ExactJSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    # -- the API ----------------------------------------------------------------------------
    def _guarded(self, handler: Callable[[Request, str], Response]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            collection = request.url.path.strip("/").split("/")[0]
            with self._state_lock:
                _, refusal = self._authorise(request)
                if refusal is not None:
                    return refusal
                self.requests += 1
            if request.method in ("POST", "PATCH"):
                raw = await request.body()
                try:
                    request.state.body = exactjson.loads(raw) if raw else None
                except ValueError:
                    return self._error(400, "Bad Request", "The body is not valid JSON.")
                if not isinstance(request.state.body, dict):
                    return self._error(400, "Bad Request", "The body must be a JSON object.")
            with self._state_lock:
                return handler(request, collection)

        return endpoint

    def _list(self, request: Request, collection: str) -> Response:
        query = request.query_params
        if collection == "users":
            rows = sorted(self.tables["users"].values(), key=lambda r: int(r["id"]))
            return ExactJSONResponse(rows)
        try:
            limit = int(query.get("limit", DEFAULT_PAGE))
        except ValueError:
            limit = -1
        if not 1 <= limit <= MAX_PAGE:
            return self._error(
                400, "Bad Request", errors={"limit": [f"limit must be 1–{MAX_PAGE}."]}
            )
        filters: dict[str, Any] = {
            "updatedSince": query.get("updatedSince"),
            "includeDeleted": query.get("includeDeleted", "false").lower() == "true",
            "externalId": query.get("externalId"),
            "orgNr": query.get("orgNr") if collection == "companies" else None,
        }
        after: tuple[str, int] | None = None
        token = query.get("continuationToken")
        if token:
            try:
                state = json.loads(_unb64(token))
                after = (str(state["u"]), int(state["i"]))
                filters = state["f"]
            except (ValueError, KeyError, TypeError, binascii.Error):
                return self._error(
                    400, "Bad Request", errors={"continuationToken": ["Invalid token."]}
                )
        since: str | None = None
        if filters["updatedSince"]:
            try:
                since = iso(_parse_datetime(filters["updatedSince"]))
            except ValueError:
                return self._error(
                    400,
                    "Bad Request",
                    errors={"updatedSince": ["updatedSince must be an ISO 8601 date-time."]},
                )
        rows = list(self.tables[collection].values())
        if filters["includeDeleted"]:
            rows += list(self.tombstones[collection].values())
        selected = [
            r
            for r in rows
            if (since is None or r["updatedAt"] >= since)
            and (filters["externalId"] is None or r.get("externalId") == filters["externalId"])
            and (filters["orgNr"] is None or r.get("orgNr") == filters["orgNr"])
        ]
        selected.sort(key=lambda r: (r["updatedAt"], r.get("id") or 0))
        if after is not None:
            selected = [r for r in selected if (r["updatedAt"], r.get("id") or 0) > after]
        page = selected[:limit]
        next_token = None
        if len(selected) > limit:
            last = page[-1]
            next_token = _b64(
                json.dumps({"u": last["updatedAt"], "i": last["id"], "f": filters}).encode()
            )
        return ExactJSONResponse({"items": page, "continuationToken": next_token})

    def _get(self, request: Request, collection: str) -> Response:
        record_id = _record_id(request)
        row = self.tables[collection].get(record_id) if record_id is not None else None
        if row is None:
            return self._not_found(collection, request)
        return ExactJSONResponse(row)

    def _create(self, request: Request, collection: str) -> Response:
        body = {
            k: v
            for k, v in request.state.body.items()
            if k not in ("id", "createdAt", "updatedAt", "isDeleted")
        }
        try:
            row = self.add(collection, body)
        except _Invalid as exc:
            return self._validation(exc)
        return ExactJSONResponse(
            row, status_code=201, headers={"Location": f"/{collection}/{row['id']}"}
        )

    def _patch(self, request: Request, collection: str) -> Response:
        record_id = _record_id(request)
        if record_id is None or record_id not in self.tables[collection]:
            return self._not_found(collection, request)
        changes = {
            k: v
            for k, v in request.state.body.items()
            if k not in ("id", "createdAt", "updatedAt", "isDeleted")
        }
        try:
            row = self.edit(collection, record_id, changes)
        except _Invalid as exc:
            return self._validation(exc)
        return ExactJSONResponse(row)

    def _delete(self, request: Request, collection: str) -> Response:
        record_id = _record_id(request)
        if record_id is None or record_id not in self.tables[collection]:
            return self._not_found(collection, request)
        if collection == "companies":
            users = [
                c["id"]
                for c in self.tables["contacts"].values()
                if isinstance(c.get("company"), dict) and c["company"].get("id") == record_id
            ]
            if users:
                return self._error(
                    409,
                    "Conflict",
                    f"Company {record_id} has {len(users)} contact(s); move or delete them first.",
                )
        self.remove(collection, record_id)
        return Response(status_code=204)

    def _not_found(self, collection: str, request: Request) -> Response:
        name = request.path_params.get("record_id", "?")
        return self._error(404, "Not Found", f"No {collection[:-1]} with id {name}.")

    def _validation(self, exc: _Invalid) -> Response:
        return self._error(400, "One or more validation errors occurred.", errors=exc.errors)

    def routes(self) -> list[Route]:
        routes = [
            Route("/connect/authorize", self._authorize, methods=["GET"]),
            Route("/connect/token", self._token, methods=["POST"]),
        ]
        for collection in COLLECTIONS:
            routes.append(Route(f"/{collection}", self._guarded(self._list), methods=["GET"]))
            routes.append(
                Route(f"/{collection}/{{record_id}}", self._guarded(self._get), methods=["GET"])
            )
            if collection in WRITABLE:
                routes.append(
                    Route(f"/{collection}", self._guarded(self._create), methods=["POST"])
                )
                routes.append(
                    Route(
                        f"/{collection}/{{record_id}}",
                        self._guarded(self._patch),
                        methods=["PATCH"],
                    )
                )
                routes.append(
                    Route(
                        f"/{collection}/{{record_id}}",
                        self._guarded(self._delete),
                        methods=["DELETE"],
                    )
                )
        return routes


def _record_id(request: Request) -> int | None:
    text = str(request.path_params.get("record_id", ""))
    return int(text) if text.isdigit() else None


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge, ``null`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge_patch(target.get(key), value)
    return target


def _pkce_ok(challenge: str, method: str, verifier: str) -> bool:
    if method == "S256":
        return _b64(hashlib.sha256(verifier.encode()).digest()) == challenge
    return verifier == challenge


def _oauth_error(status: int, error: str, description: str) -> Response:
    return ExactJSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def _oauth_page(status: int, error: str, description: str) -> Response:
    """IdentityServer shows an error page when it cannot redirect back."""
    page = f"<html><body><h1>Error</h1><p>{error}: {description}</p></body></html>"
    return Response(page, status_code=status, media_type="text/html")
