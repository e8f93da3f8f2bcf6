"""``kind: crmoffice`` — CRMOffice (Norwegian CRM) over its REST API.

Known facts (public): OAuth2 through an IdentityServer at the tenant's address
(``https://<tenant>.crmoffice.no/connect/authorize`` and ``/connect/token``), scopes
``crmoffice offline_access`` (so refresh tokens), bearer JWTs valid about an hour;
``GET /companies`` answers an object with the records under ``items``; ``GET /users``
answers a bare array; the property names of Companies, Contacts, Activities.

Assumptions (not public; every name below can be changed per entity type in the
config, so the connector can follow the real API once it is at hand):

* **Paging** — ``limit`` (``page_size``, default 100) and an opaque continuation token:
  the answer is ``{"items": [...], "continuationToken": "..."}``, the token is sent back
  as ``?continuationToken=``; an absent/null token ends the read.  A token that is a URL
  (``next`` links) is followed as it is.  A bare array is one complete page.
* **Changes** — every record has ``updatedAt`` (ISO 8601); ``?updatedSince=`` returns the
  records changed at or after that moment, and ``includeDeleted=true`` adds tombstones
  ``{"id": ..., "isDeleted": true, "updatedAt": ...}``.  The cursor is the newest
  ``updatedAt`` seen; reads start ``overlap_seconds`` earlier and the engine's content
  hashes drop what it has seen.  Users have no change filter: full reads.
* **External reference** — Companies, Contacts and Activities carry ``externalId``
  (filterable with ``?externalId=``); creates stamp the source ref there so an
  interrupted create is found again instead of repeated.  Set ``external_ref: null`` to
  switch it off.
* **Writes** — ``POST`` answers the new record (or at least a ``Location``), ``PATCH``
  takes a JSON merge patch (RFC 7396), ``DELETE`` answers 204 or 409 when other records
  use the record.  Numeric ids are sent as JSON numbers.
* **Errors** — RFC 7807 problem details (``title``, ``detail``, ``errors`` by field);
  429 carries ``Retry-After``.  The client keeps under 250 calls per minute
  (``rate_limit``) so a normal run never meets the limit.

Config::

    crm:
      kind: crmoffice
      label: CRMOffice
      base_url: https://api.crmoffice.no          # the API
      auth_url: https://mytenant.crmoffice.no     # the IdentityServer of the tenant
      credentials: {client_id: ${CRMOFFICE_CLIENT_ID}, client_secret: ${CRMOFFICE_SECRET}}
      entity_types:                               # all optional
        Companies: {path: companies, items: items, next: continuationToken,
                    updated: updatedAt, since_param: updatedSince, page_size: 100}

Tokens come from ``samband auth crmoffice -c FILE SYSTEM`` and are stored encrypted
(:class:`~samband.secrets.TokenStore`); refresh tokens rotate and are saved before use.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from samband.config.model import Config, SystemConfig
from samband.connectors._http import (
    HttpClient,
    RateLimiter,
    conflict_is_in_use,
    is_loopback,
    limiter_for,
)
from samband.connectors._oauth import (
    OAuthAuth,
    OAuthTokens,
    browser_login,
    exchange_once,
    login_context,
    state_folder,
)
from samband.connectors.base import Connector, EntityType, Page, Property, RecordData
from samband.errors import (
    AuthError,
    ConnectorError,
    ContractError,
    NotFound,
    RecordError,
    UnreachableError,
)
from samband.kinds.crmoffice.settings import CrmOfficeSettings, CrmOfficeTypeSettings
from samband.mapping import get_path, set_path
from samband.secrets import TokenStore
from samband.types import DataType, id_value, to_wire, utc_moment

DEFAULT_BASE_URL = "https://api.crmoffice.no"
SCOPE = "crmoffice offline_access"
S, INT, B, DT, R = (
    DataType.STRING,
    DataType.INTEGER,
    DataType.BOOLEAN,
    DataType.DATETIME,
    DataType.REFERENCE,
)


@dataclass(frozen=True)
class Endpoint:
    """Where and how one entity type is read and written (all names configurable)."""

    path: str
    items: str = "items"
    next: str = "continuationToken"
    continuation_param: str = "continuationToken"
    limit_param: str | None = "limit"
    page_size: int = 100
    updated: str | None = "updatedAt"
    since_param: str | None = "updatedSince"
    deleted: str | None = "isDeleted"
    deleted_param: str | None = "includeDeleted"
    external_ref: str | None = "externalId"
    external_ref_param: str | None = "externalId"
    incremental: bool = True
    read_only: bool = False


def _props(*specs: tuple[Any, ...]) -> dict[str, Property]:
    result = {}
    for spec in specs:
        name, dtype, *flags = spec
        options = dict(flags[0]) if flags else {}
        result[name] = Property(name, dtype, **options)
    return result


_RO = {"read_only": True}
_ADDRESS = ("streetAddress", "postCode", "postalArea", "country")
_STAMPS = (("createdAt", DT, _RO), ("updatedAt", DT, _RO))

SCHEMAS: dict[str, dict[str, Property]] = {
    "Companies": _props(
        ("id", INT, _RO),
        ("name", S, {"required": True, "max_length": 200}),
        ("orgNr", S, {"max_length": 9}),
        ("phone", S, {"max_length": 50}),
        ("email", S),
        ("website", S, {"max_length": 200}),
        *((f"visitAddress.{part}", S) for part in _ADDRESS),
        *((f"postAddress.{part}", S) for part in _ADDRESS),
        ("externalId", S, {"max_length": 200}),
        *_STAMPS,
    ),
    "Contacts": _props(
        ("id", INT, _RO),
        ("givenName", S, {"max_length": 100}),
        ("familyName", S, {"required": True, "max_length": 100}),
        ("title", S, {"max_length": 100}),
        ("directPhone", S, {"max_length": 50}),
        ("mobilePhone", S, {"max_length": 50}),
        ("email", S),
        ("company.id", R, {"references": "Companies"}),
        ("company.name", S, _RO),
        ("externalId", S, {"max_length": 200}),
        *_STAMPS,
    ),
    "Activities": _props(
        ("id", INT, _RO),
        ("subject", S, {"required": True, "max_length": 250}),
        ("description", S, {"max_length": 4000}),
        ("startsAt", DT),
        ("endsAt", DT),
        ("ownerId", R, {"references": "Users"}),
        ("address.country", S),
        ("address.postalArea", S, {"max_length": 100}),
        ("externalId", S, {"max_length": 200}),
        *_STAMPS,
    ),
    "Users": _props(
        ("id", INT, _RO),
        ("name", S, _RO),
        ("givenName", S, _RO),
        ("familyName", S, _RO),
        ("email", S, _RO),
        ("isActive", B, _RO),
        *_STAMPS,
    ),
}

# What the field's documents (../shared/reference/field-properties.tsv) name for
# CRMOffice and this connector leaves out, or reads but does not write although documents
# write it, with the reason; docs/systems/crmoffice.md lists the same.
FIELD_DOCUMENTS_READ_ONLY: dict[tuple[str, str], str] = {
    ("Companies", "id"): "CRMOffice gives the id; documents use it as a key",
}
FIELD_DOCUMENTS_ABSENT: dict[tuple[str, str], str] = {}

ENDPOINTS: dict[str, Endpoint] = {
    "Companies": Endpoint("companies"),
    "Contacts": Endpoint("contacts"),
    "Activities": Endpoint("activities"),
    # known: a bare array; assumed: no change filter, read-only through the API
    "Users": Endpoint(
        "users",
        since_param=None,
        deleted_param=None,
        external_ref=None,
        external_ref_param=None,
        limit_param=None,
        incremental=False,
        read_only=True,
    ),
}

_ENDPOINT_KEYS = {
    "path",
    "items",
    "next",
    "continuation_param",
    "limit_param",
    "page_size",
    "updated",
    "since_param",
    "deleted",
    "deleted_param",
    "external_ref",
    "external_ref_param",
    "incremental",
    "read_only",
}


def endpoints(config: SystemConfig) -> dict[str, Endpoint]:
    """The endpoints of a system: the defaults above, changed by per-type settings.

    A configured type that is not one of the four known ones becomes an open-schema type
    at ``path`` (default: its name in lower case)."""
    result = dict(ENDPOINTS)
    for name, type_config in config.entity_types.items():
        typed = CrmOfficeTypeSettings.of(type_config, type_name=name)
        settings = typed.model_dump(exclude_unset=True, include=_ENDPOINT_KEYS)
        base = result.get(name) or Endpoint(name.lower())
        if settings:
            if "external_ref" in settings and "external_ref_param" not in settings:
                settings["external_ref_param"] = settings["external_ref"]
            base = replace(base, **settings)
        result[name] = base
    # one spelling of paths ("/companies"), so errors name requests the same way
    return {n: replace(e, path="/" + e.path.strip("/")) for n, e in result.items()}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _auth_url(system_id: str, settings: CrmOfficeSettings) -> str:
    url = settings.auth_url
    if not url:
        raise ConnectorError(
            system_id,
            "auth_url is not set",
            "set auth_url to the tenant's address, e.g. https://mytenant.crmoffice.no",
        )
    return str(url).rstrip("/")


def _credential(system_id: str, credentials: dict[str, str], name: str) -> str:
    value = credentials.get(name)
    if not value:
        raise AuthError(
            system_id,
            f"the credential {name!r} is missing",
            f"add credentials: {{{name}: ${{CRMOFFICE_{name.upper()}}}}} and set the variable",
        )
    return value


class CrmOfficeConnector(Connector):
    """Companies, Contacts, Activities and Users of one CRMOffice tenant."""

    kind = "crmoffice"

    def __init__(
        self,
        system_id: str,
        config: SystemConfig,
        credentials: Any,
        *,
        state_dir: str | None = None,
        overlap_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        limiter: RateLimiter | None = None,
    ) -> None:
        """``clock``/``sleep`` drive token expiry and waits (tests pass a sandbox's clock);
        ``limiter`` replaces the process-wide pacing of this client id."""
        settings = CrmOfficeSettings.of(config, system_id)
        super().__init__(
            system_id,
            config,
            credentials,
            state_dir=state_dir or state_folder(settings.base_dir),
            overlap_seconds=overlap_seconds,
        )
        self.settings = settings
        self.base_url = str(settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.endpoints = endpoints(config)
        self._clock, self._sleep = clock, sleep
        self._limiter = limiter
        self._http: HttpClient | None = None
        self._tokens: OAuthTokens | None = None

    # -- schema -----------------------------------------------------------------------
    @classmethod
    def describe(cls, config: SystemConfig) -> dict[str, EntityType]:
        types: dict[str, EntityType] = {}
        for name, endpoint in endpoints(config).items():
            properties = dict(SCHEMAS.get(name, {}))
            if endpoint.external_ref and properties and endpoint.external_ref not in properties:
                properties[endpoint.external_ref] = Property(endpoint.external_ref, S)
            types[name] = EntityType(
                name=name,
                id_field="id",
                modified_field=endpoint.updated,
                properties=properties,
                incremental=endpoint.incremental and endpoint.since_param is not None,
                reports_deletes=bool(endpoint.incremental and endpoint.deleted_param),
                read_only=endpoint.read_only,
                can_delete=not endpoint.read_only,
                external_ref_field=endpoint.external_ref,
                open_schema=not properties,
            )
        return types

    # -- plumbing -----------------------------------------------------------------------
    def _token_source(self) -> OAuthTokens:
        if self._tokens is None:
            self._tokens = OAuthTokens(
                self.system_id,
                token_url=str(
                    self.settings.token_url
                    or _auth_url(self.system_id, self.settings) + "/connect/token"
                ),
                client_id=_credential(self.system_id, self.credentials, "client_id"),
                client_secret=_credential(self.system_id, self.credentials, "client_secret"),
                store=TokenStore(self.system_id, str(self.state_dir)),
                clock=self._clock,
                scope=str(self.settings.scope or SCOPE),
                expires_in_default=3600.0,
                kind=self.kind,
                sleep=self._sleep,
            )
        return self._tokens

    @property
    def http(self) -> HttpClient:
        if self._http is None:
            tokens = self._token_source()
            key = f"{tokens.client_id}@{self.base_url}"
            limiter = self._limiter or limiter_for("crmoffice", key, self.settings.rate_limit)
            self._http = HttpClient(
                self.system_id,
                self.base_url,
                auth=OAuthAuth(tokens),
                headers={"Accept": "application/json"},
                limiter=limiter,
                stats=self.stats,
                max_retries=self.settings.max_retries,
                sleep=self._sleep,
            )
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._tokens is not None:
            self._tokens.close()
            self._tokens = None

    def check(self) -> None:
        """One cheap authenticated call: the token works and the API answers."""
        self._get_json(self.endpoints["Users"].path)

    def _endpoint(self, entity_type: str) -> tuple[EntityType, Endpoint]:
        etype = self.entity_type(entity_type)
        return etype, self.endpoints[entity_type]

    def _get_json(self, url: str, params: dict[str, Any] | None = None) -> Any:
        """GET and parse; a body cut short (not JSON) is asked for again twice."""
        for attempt in range(3):
            response = self.http.request("GET", url, params=params)
            try:
                return self.http.json(response, "GET", url)
            except ContractError:
                if attempt == 2:
                    raise
                self.stats.retries += 1
        raise AssertionError("unreachable")

    def _where(self, method: str, url: str) -> str:
        return f"{method} {urlsplit(url).path or url}"

    # -- answers -> records ---------------------------------------------------------------
    def _page(self, body: Any, endpoint: Endpoint, where: str) -> tuple[list[Any], str | None]:
        if isinstance(body, list):
            return body, None
        if not isinstance(body, dict):
            raise ContractError(
                self.system_id,
                f"{where} answered {type(body).__name__} instead of a list or an object "
                f"with {endpoint.items!r}",
                "set the entity type's 'items' setting to the key that holds the records",
            )
        items = body.get(endpoint.items)
        if not isinstance(items, list):
            keys = ", ".join(sorted(str(k) for k in body)) or "none"
            raise ContractError(
                self.system_id,
                f"{where} answered an object without a list under {endpoint.items!r} "
                f"(keys: {keys})",
                "set the entity type's 'items' setting to the key that holds the records",
            )
        token = body.get(endpoint.next)
        return items, str(token) if token not in (None, "") else None

    def _record(self, etype: EntityType, endpoint: Endpoint, item: Any, where: str) -> RecordData:
        if not isinstance(item, dict):
            raise ContractError(
                self.system_id, f"{where} answered a {type(item).__name__} where a record belongs"
            )
        record_id = item.get(etype.id_field)
        if record_id is None or str(record_id).strip() == "" or isinstance(record_id, dict | list):
            keys = ", ".join(sorted(str(k) for k in item)) or "none"
            raise ContractError(
                self.system_id,
                f"{where} answered a {etype.name} record without {etype.id_field!r} "
                f"(keys: {keys}); nothing of this read is stored, the next run reads it again",
                "report this answer to CRMOffice or set the right id field",
            )
        modified = utc_moment(get_path(item, endpoint.updated)) if endpoint.updated else None
        deleted = bool(endpoint.deleted and item.get(endpoint.deleted) is True)
        return RecordData(str(record_id), item, modified, deleted)

    # -- reading ---------------------------------------------------------------------------
    def read(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        etype, endpoint = self._endpoint(entity_type)
        params: dict[str, Any] = {}
        if endpoint.limit_param:
            params[endpoint.limit_param] = endpoint.page_size
        newest = utc_moment(cursor) if etype.incremental else None
        if etype.incremental and newest is not None and endpoint.since_param:
            since = newest - timedelta(seconds=self.overlap_seconds)
            params[endpoint.since_param] = _iso(since)
            if endpoint.deleted_param:
                params[endpoint.deleted_param] = "true"
        url: str = endpoint.path
        seen_tokens: set[str] = set()
        while True:
            where = self._where("GET", url)
            body = self._get_json(url, params)
            items, token = self._page(body, endpoint, where)
            records = [self._record(etype, endpoint, item, where) for item in items]
            self.stats.reads += len(records)
            for record in records:
                if record.modified is not None and (newest is None or record.modified > newest):
                    newest = record.modified
            if token is not None and token in seen_tokens:
                raise ContractError(
                    self.system_id,
                    f"{where} answered the same continuation token twice (an endless read)",
                )
            last = token is None
            out = _iso_cursor(newest) if last and etype.incremental and newest else None
            yield Page(records, out)
            if last:
                return
            assert token is not None
            seen_tokens.add(token)
            if token.startswith(("http://", "https://", "/")):
                url, params = token, {}
            else:
                params = {**params, endpoint.continuation_param: token}

    def get(self, entity_type: str, record_id: str) -> RecordData | None:
        etype, endpoint = self._endpoint(entity_type)
        url = f"{endpoint.path}/{quote(str(record_id), safe='')}"
        try:
            body = self._get_json(url)
        except NotFound:
            return None
        self.stats.reads += 1
        return self._record(etype, endpoint, body, self._where("GET", url))

    def find_by_external_ref(self, entity_type: str, external_ref: str) -> RecordData | None:
        etype, endpoint = self._endpoint(entity_type)
        field = etype.external_ref_field
        if field is None:
            return None
        params: dict[str, Any] = {}
        if endpoint.external_ref_param:
            params[endpoint.external_ref_param] = external_ref
        if endpoint.limit_param:
            params[endpoint.limit_param] = endpoint.page_size
        url: str = endpoint.path
        seen: set[str] = set()
        while True:
            where = self._where("GET", url)
            items, token = self._page(self._get_json(url, params), endpoint, where)
            for item in items:
                # the filter may be ignored by the API: check the field itself
                if isinstance(item, dict) and get_path(item, field) == external_ref:
                    return self._record(etype, endpoint, item, where)
            if token is None or token in seen:
                return None
            seen.add(token)
            if token.startswith(("http://", "https://", "/")):
                url, params = token, {}
            else:
                params = {**params, endpoint.continuation_param: token}

    # -- writing ---------------------------------------------------------------------------
    def _body(self, etype: EntityType, values: dict[str, Any]) -> dict[str, Any]:
        """Dotted canonical values → the API's nested JSON (numeric ids as numbers)."""
        body: dict[str, Any] = {}
        for path, value in values.items():
            path = etype.canonical(path)
            prop = etype.property(path)
            wire = to_wire(value)
            if prop is not None and prop.type is DataType.REFERENCE:
                if isinstance(wire, str):
                    wire = id_value(wire)
                if wire is None and path.endswith(".id"):
                    # clearing a reference object clears the object, not its id inside
                    set_path(body, path.rsplit(".", 1)[0], None)
                    continue
            set_path(body, path, wire)
        return body

    def create(
        self, entity_type: str, values: dict[str, Any], external_ref: str | None = None
    ) -> RecordData:
        etype, endpoint = self._endpoint(entity_type)
        self._writable(etype)
        body = self._body(etype, values)
        body.pop(etype.id_field, None)
        if external_ref and etype.external_ref_field:
            set_path(body, etype.external_ref_field, external_ref)
        url = endpoint.path
        response = self.http.request("POST", url, json=body)
        self.stats.writes += 1
        answer = self.http.json(response, "POST", url)
        if isinstance(answer, dict) and answer.get(etype.id_field) not in (None, ""):
            return self._record(etype, endpoint, answer, self._where("POST", url))
        location = response.headers.get("Location")
        if location:
            new_id = urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1]
            found = self.get(entity_type, new_id) if new_id else None
            if found is not None:
                return found
        hint = (
            "the record may exist now; the next run finds it by its external reference"
            if external_ref and etype.external_ref_field
            else "the record may exist now; check CRMOffice before running again"
        )
        raise ContractError(
            self.system_id,
            f"POST /{url.lstrip('/')} answered {response.status_code} without the new "
            f"record's {etype.id_field!r}",
            hint,
        )

    def update(
        self, entity_type: str, record_id: str, changes: dict[str, Any]
    ) -> RecordData | None:
        etype, endpoint = self._endpoint(entity_type)
        self._writable(etype)
        body = self._body(etype, changes)
        body.pop(etype.id_field, None)
        url = f"{endpoint.path}/{quote(str(record_id), safe='')}"
        response = self.http.request(
            "PATCH",
            url,
            json=body,
            headers={"Content-Type": "application/merge-patch+json"},
            idempotent=True,  # a merge patch sets values; sending it twice is harmless
        )
        self.stats.writes += 1
        answer = self.http.json(response, "PATCH", url)
        if isinstance(answer, dict) and answer.get(etype.id_field) not in (None, ""):
            return self._record(etype, endpoint, answer, self._where("PATCH", url))
        return None

    def delete(self, entity_type: str, record_id: str) -> None:
        etype, endpoint = self._endpoint(entity_type)
        self._writable(etype)
        url = f"{endpoint.path}/{quote(str(record_id), safe='')}"
        with conflict_is_in_use():
            self.http.request("DELETE", url)
        self.stats.writes += 1

    def _writable(self, etype: EntityType) -> None:
        if etype.read_only:
            raise RecordError(f"{etype.name} cannot be written through the CRMOffice API")

    # -- first login -------------------------------------------------------------------------
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
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """``samband auth crmoffice -c FILE SYSTEM``: authorize in a browser, store tokens."""
        login = _Login(system_id, config, state_dir, environ)
        browser_login(
            system_id,
            authorize_url=login.authorize_url,
            params=login.params(),
            tokens=login.tokens,
            port=port,
            open_browser=open_browser,
            echo=echo,
            timeout=timeout,
        )

    @classmethod
    def sandbox_login(
        cls,
        system_id: str,
        config: Config,
        *,
        state_dir: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """Log in without a browser, for servers that approve at once (the sandbox, in
        ``samband demo`` and tests): the code is taken from the authorize redirect."""
        login = _Login(system_id, config, state_dir, environ)
        redirect_uri = login.settings.redirect_uri or "http://127.0.0.1/callback"
        params = {**login.params(), "redirect_uri": str(redirect_uri), "response_type": "code"}
        params["state"] = "samband-sandbox-login"
        where = f"GET {urlsplit(login.authorize_url).path}"
        verify = not is_loopback(login.authorize_url)
        try:
            answer = httpx.get(login.authorize_url, params=params, timeout=30, verify=verify)
        except httpx.TransportError as exc:
            raise UnreachableError(
                system_id, f"{where}: {exc.__class__.__name__}", "is the sandbox running?"
            ) from None
        query = parse_qs(urlsplit(answer.headers.get("location", "")).query)
        if answer.status_code not in (301, 302, 303, 307) or "code" not in query:
            reason = (query.get("error") or [f"{answer.status_code} without a code"])[0]
            raise AuthError(
                system_id,
                f"{where}: the login was not approved at once ({reason})",
                f"use `samband auth crmoffice -c FILE {system_id}`",
            )
        exchange_once(login.tokens(), query["code"][0], str(redirect_uri))


class _Login:
    """What a first login needs from the config: URLs, client, scope, token store."""

    def __init__(
        self,
        system_id: str,
        config: Config,
        state_dir: str | None,
        environ: Mapping[str, str] | None,
    ) -> None:
        self.system_id = system_id
        self.settings, self.credentials = login_context(
            system_id, config, CrmOfficeSettings, environ
        )
        auth_url = _auth_url(system_id, self.settings)
        self.authorize_url = str(self.settings.authorize_url or f"{auth_url}/connect/authorize")
        self.token_url = str(self.settings.token_url or f"{auth_url}/connect/token")
        self.client_id = _credential(system_id, self.credentials, "client_id")
        self.scope = str(self.settings.scope or SCOPE)
        self.folder = state_dir or state_folder(self.settings.base_dir)

    def params(self) -> dict[str, str]:
        params = {"client_id": self.client_id, "scope": self.scope}
        if self.settings.redirect_uri:
            params["redirect_uri"] = str(self.settings.redirect_uri)
        return params

    def tokens(self) -> OAuthTokens:
        return OAuthTokens(
            self.system_id,
            token_url=self.token_url,
            client_id=self.client_id,
            client_secret=_credential(self.system_id, self.credentials, "client_secret"),
            store=TokenStore(self.system_id, self.folder),
            scope=self.scope,
            expires_in_default=3600.0,
            kind=CrmOfficeConnector.kind,
        )


def _iso_cursor(moment: datetime) -> str:
    """A cursor keeps full precision (microseconds), unlike the wire format."""
    return moment.astimezone(UTC).isoformat()
