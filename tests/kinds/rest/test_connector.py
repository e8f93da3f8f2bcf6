"""``kind: rest`` against real servers in-process: the custom CRM sandbox, and small
Starlette apps for APIs that differ from the contract (other names, page/offset paging)
or break it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from samband.config.model import SystemConfig
from samband.connectors.registry import connector_class
from samband.errors import (
    AuthError,
    ConnectorError,
    ContractError,
    InUse,
    NotFound,
    RecordError,
    Stale,
    TransientError,
    UnreachableError,
)
from samband.kinds.rest.connector import RestConnector
from samband.kinds.rest.sandbox import DEFAULT_TOKEN, CustomCrmSandbox
from samband.sandbox._base import SandboxServer, free_port

CRM_TYPES: dict[str, dict[str, Any]] = {
    "Contact": {"path": "contacts", "external_ref": "external_ref"},
    "Customer": {"path": "customers", "external_ref": "external_ref"},
    "Order": {"path": "orders", "external_ref": "external_ref"},
    "Product": {"path": "products"},
}


def make_config(base_url: str, types: dict[str, dict[str, Any]], **settings: Any) -> SystemConfig:
    settings.setdefault("auth", "bearer")
    settings.setdefault("credentials", {"token": "${CRM_TOKEN}"})
    return SystemConfig.model_validate(
        {"kind": "rest", "base_url": base_url, "entity_types": types, **settings}
    )


def make_connector(
    base_url: str,
    types: dict[str, dict[str, Any]] | None = None,
    credentials: dict[str, str] | None = None,
    **settings: Any,
) -> tuple[RestConnector, list[float]]:
    config = make_config(base_url, types or CRM_TYPES, **settings)
    connector = RestConnector(
        "crm", config, {"token": DEFAULT_TOKEN} if credentials is None else credentials
    )
    waits: list[float] = []
    connector.sleep = waits.append  # retries wait on this instead of the wall clock
    return connector, waits


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[CustomCrmSandbox, SandboxServer]]:
    box = CustomCrmSandbox()
    server = box.serve()
    yield box, server
    server.stop()


@pytest.fixture
def box(served: tuple[CustomCrmSandbox, SandboxServer]) -> CustomCrmSandbox:
    sandbox = served[0]
    sandbox.reset()
    sandbox.faults.update(
        burst_429=0,
        error_rate=0.0,
        throttle_rate=0.0,
        truncate_rate=0.0,
        reset_rate=0.0,
        html_rate=0.0,
        non_json_rate=0.0,
    )
    return sandbox


@pytest.fixture
def url(served: tuple[CustomCrmSandbox, SandboxServer]) -> str:
    return served[1].url


@pytest.fixture
def crm(box: CustomCrmSandbox, url: str) -> Iterator[RestConnector]:
    connector, _ = make_connector(url)
    yield connector
    connector.close()


def test_the_registry_names_the_connector() -> None:
    assert connector_class("rest") is RestConnector


def test_describe_reads_the_schema_from_the_config() -> None:
    config = make_config(
        "http://127.0.0.1:1",
        {
            "Contact": {
                "path": "contacts",
                "external_ref": "external_ref",
                "properties": {
                    "email": "string",
                    "customer_id": {"references": "Customer"},
                    "address.city": {"type": "string", "max_length": 50},
                },
            },
            "Log": {"read_only": True, "incremental": False, "deleted": None},
        },
    )
    types = RestConnector.describe(config)
    contact = types["Contact"]
    assert contact.properties["customer_id"].references == "Customer"
    assert contact.properties["customer_id"].type == "reference"
    assert contact.properties["address.city"].max_length == 50
    assert contact.properties["id"].read_only and contact.properties["updated_at"].read_only
    assert (contact.incremental, contact.reports_deletes, contact.open_schema) == (
        True,
        True,
        False,
    )
    assert contact.external_ref_field == "external_ref"
    log = types["Log"]
    assert (log.read_only, log.incremental, log.reports_deletes, log.open_schema) == (
        True,
        False,
        False,
        True,
    )


def test_reads_every_page_and_keeps_the_last_cursor(box: CustomCrmSandbox, url: str) -> None:
    for number in range(25):
        box.insert("Customer", {"name": f"Firma {number}", "address": {"city": "Oslo"}})
    types = {**CRM_TYPES, "Customer": {**CRM_TYPES["Customer"], "page_size": 10}}
    connector, _ = make_connector(url, types)
    pages = list(connector.read("Customer", None))
    assert [len(page.records) for page in pages] == [10, 10, 5]
    records = [record for page in pages for record in page.records]
    assert [record.id for record in records] == [str(n) for n in range(1, 26)]
    assert records[0].data["address"]["city"] == "Oslo"
    assert records[0].modified is not None and records[0].modified.tzinfo is not None
    assert pages[-1].cursor == str(box.seq)
    assert connector.stats.api_calls == 3  # has_more: false ends the read without a 4th call


def test_incremental_reads_see_edits_creates_and_deletes(
    box: CustomCrmSandbox, crm: RestConnector
) -> None:
    for number in range(5):
        box.insert("Customer", {"name": f"Firma {number}"})
    cursor = [page.cursor for page in crm.read("Customer", None)][-1]
    box.edit("Customer", 2, {"email": "post@firma.no"})
    box.remove("Customer", 4)
    box.insert("Customer", {"name": "Ny AS"})
    pages = list(crm.read("Customer", cursor))
    changed = [(r.id, r.deleted, r.data.get("email")) for p in pages for r in p.records]
    assert changed == [("2", False, "post@firma.no"), ("4", True, None), ("6", False, None)]
    cursor = pages[-1].cursor
    calls = crm.stats.api_calls
    quiet = list(crm.read("Customer", cursor))
    assert [page.records for page in quiet] == [[]]
    assert quiet[-1].cursor == cursor
    assert crm.stats.api_calls == calls + 1


def test_update_with_expected_values_does_not_overwrite_an_edit(
    box: CustomCrmSandbox, crm: RestConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record is read and compared first; the patch then carries the read's ETag as
    If-Match, so an edit landing between that read and the patch is refused too."""
    created = crm.create("Customer", {"name": "Fjord AS", "address.city": "Bergen"})
    rid = int(created.id)
    crm.update("Customer", created.id, {"name": "Fjord Data AS"}, expected={"name": "Fjord AS"})
    assert box.records("Customer")[rid]["name"] == "Fjord Data AS"
    # edited before the update: the read tells
    box.edit("Customer", rid, {"address": {"city": "Oslo"}})
    with pytest.raises(Stale, match=r"address\.city changed since it was read"):
        crm.update(
            "Customer", created.id, {"address.city": "Bodø"}, expected={"address.city": "Bergen"}
        )
    assert box.records("Customer")[rid]["address"]["city"] == "Oslo"
    # edited between the read and the patch: the server refuses the If-Match
    check = crm._check_expected

    def read_then_user_edits(*args: Any) -> str | None:
        etag = check(*args)
        box.edit("Customer", rid, {"name": "Edited meanwhile AS"})
        return etag

    monkeypatch.setattr(crm, "_check_expected", read_then_user_edits)
    with pytest.raises(Stale, match="changed after it was read"):
        crm.update("Customer", created.id, {"name": "Late AS"}, expected={"name": "Fjord Data AS"})
    assert box.records("Customer")[rid]["name"] == "Edited meanwhile AS"


def test_create_update_delete(box: CustomCrmSandbox, crm: RestConnector) -> None:
    customer = crm.create(
        "Customer",
        {"name": "Fjord Data AS", "org_no": "923609016", "address.city": "Bergen"},
        external_ref="pog:Customers:1",
    )
    stored = box.records("Customer")[int(customer.id)]
    assert stored["external_ref"] == "pog:Customers:1"
    assert stored["address"]["city"] == "Bergen"
    assert customer.data == stored

    product = crm.create("Product", {"code": "P1", "name": "Time", "unit_price": Decimal("950.5")})
    order = crm.create(
        "Order",
        {
            "customer_id": customer.id and int(customer.id),
            "order_date": date(2024, 9, 10),
            "lines": [{"product_id": int(product.id), "quantity": 2, "unit_price": Decimal("10")}],
        },
    )
    assert box.records("Order")[int(order.id)]["order_date"] == "2024-09-10"
    assert box.records("Order")[int(order.id)]["lines"][0]["unit_price"] == 10

    updated = crm.update("Customer", customer.id, {"address.zip_code": "5003", "email": None})
    assert updated is not None
    after = box.records("Customer")[int(customer.id)]
    assert after["address"] == {
        "street": None,
        "zip_code": "5003",
        "city": "Bergen",
        "country": None,
    }
    assert after["name"] == "Fjord Data AS"  # untouched
    assert updated.data == after

    with pytest.raises(InUse, match="in use"):
        crm.delete("Customer", customer.id)
    crm.delete("Order", order.id)
    crm.delete("Customer", customer.id)
    assert int(customer.id) not in box.records("Customer")
    with pytest.raises(NotFound):
        crm.delete("Customer", customer.id)
    with pytest.raises(NotFound):
        crm.update("Customer", customer.id, {"name": "X"})
    assert crm.get("Customer", customer.id) is None  # deleted
    assert crm.get("Customer", "9999") is None
    got = crm.get("Product", product.id)
    assert got is not None and got.data["unit_price"] == 950.5


def test_references_are_sent_in_the_json_type_of_the_ids(box: CustomCrmSandbox, url: str) -> None:
    customer = box.insert("Customer", {"name": "Kunde AS"})
    contact_type = {
        "path": "contacts",
        "properties": {"last_name": "string", "customer_id": {"references": "Customer"}},
    }
    types = {"Contact": contact_type, "Customer": {"path": "customers"}}
    connector, _ = make_connector(url, types)
    created = connector.create("Contact", {"last_name": "Lie", "customer_id": str(customer["id"])})
    assert created.data["customer_id"] == customer["id"]  # an integer, as the API wants
    strict, _ = make_connector(
        url, {**types, "Customer": {"path": "customers", "id_type": "string"}}
    )
    with pytest.raises(RecordError, match="must be the integer id of a Customer"):
        strict.create("Contact", {"last_name": "Lie", "customer_id": str(customer["id"])})


def test_a_refused_record_is_a_record_error(box: CustomCrmSandbox, crm: RestConnector) -> None:
    with pytest.raises(RecordError, match="name: is required") as refused:
        crm.create("Customer", {"org_no": "923609016"})
    assert refused.value.details["status"] == 422
    assert "POST /customers" in str(refused.value)
    with pytest.raises(RecordError, match="not an e-mail address"):
        crm.create("Contact", {"last_name": "Lie", "email": "lie(at)firma.no"})
    assert box.records("Customer") == {} and box.records("Contact") == {}


def test_find_by_external_ref(box: CustomCrmSandbox, crm: RestConnector) -> None:
    box.insert("Contact", {"last_name": "Berg", "external_ref": "pog:Contactperson:1"})
    wanted = crm.create("Contact", {"last_name": "Dahl"}, external_ref="pog:Contactperson:2")
    found = crm.find_by_external_ref("Contact", "pog:Contactperson:2")
    assert found is not None and found.id == wanted.id
    assert crm.find_by_external_ref("Contact", "pog:Contactperson:3") is None
    calls = crm.stats.api_calls
    assert crm.find_by_external_ref("Product", "anything") is None  # no external_ref field
    assert crm.stats.api_calls == calls


def test_check_passes_on_a_good_config(box: CustomCrmSandbox, crm: RestConnector) -> None:
    crm.check()
    assert crm.stats.api_calls == len(CRM_TYPES)


def test_wrong_token_is_one_clear_error(box: CustomCrmSandbox, url: str) -> None:
    connector, _ = make_connector(url, credentials={"token": "expired-token"})
    with pytest.raises(AuthError) as refused:
        connector.check()
    message = str(refused.value)
    assert message.startswith("system 'crm':")
    assert "${CRM_TOKEN}" in message and url in message
    assert "expired-token" not in message


def test_missing_credentials_are_named(url: str) -> None:
    connector, _ = make_connector(url, credentials={})
    with pytest.raises(ConnectorError, match=r"credentials: \{token"):
        connector.check()
    basic, _ = make_connector(url, credentials={"username": "ola"}, auth="basic")
    with pytest.raises(ConnectorError, match="username and a password"):
        basic.check()


def test_basic_auth() -> None:
    box = CustomCrmSandbox(token="", basic=("ola", "hemmelig"))
    box.insert("Product", {"code": "P1", "name": "Vare"})
    server = box.serve()
    try:
        credentials = {"username": "${CRM_USER}", "password": "${CRM_PASSWORD}"}
        good, _ = make_connector(
            server.url, credentials={"username": "ola", "password": "hemmelig"}, auth="basic"
        )
        good.config.credentials.update(credentials)
        good.check()
        assert [r.data["code"] for p in good.read("Product", None) for r in p.records] == ["P1"]
        bad, _ = make_connector(
            server.url, credentials={"username": "ola", "password": "feil"}, auth="basic"
        )
        bad.config.credentials.update(credentials)
        with pytest.raises(AuthError, match=r"credentials.password \(\$\{CRM_PASSWORD\}\)"):
            bad.check()
    finally:
        server.stop()


def test_wrong_url_or_path_is_one_clear_error(box: CustomCrmSandbox, url: str) -> None:
    nowhere, waits = make_connector(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(UnreachableError, match="base_url") as unreachable:
        nowhere.check()
    assert "system 'crm'" in str(unreachable.value)
    assert len(waits) == 2  # two more tries, without sleeping in the test
    types = {"Contact": {"path": "kontakter"}}
    wrong_path, _ = make_connector(url, types)
    with pytest.raises(ConnectorError, match="path \\('kontakter'\\)"):
        wrong_path.check()


def test_429_is_retried_after_retry_after(box: CustomCrmSandbox, crm: RestConnector) -> None:
    box.insert("Customer", {"name": "Firma"})
    box.faults.update(burst_429=2)
    crm_waits: list[float] = []
    crm.sleep = crm_waits.append
    records = [r for page in crm.read("Customer", None) for r in page.records]
    assert [r.data["name"] for r in records] == ["Firma"]
    assert crm_waits == [1.0, 1.0]  # the sandbox says Retry-After: 1
    assert crm.stats.throttled == 2


def test_5xx_and_broken_answers_are_retried(box: CustomCrmSandbox, url: str) -> None:
    for number in range(30):
        box.insert("Product", {"code": f"P{number}", "name": f"Vare {number}"})
    types = {"Product": {"path": "products", "page_size": 4}}
    connector, waits = make_connector(url, types)
    box.faults.update(seed=11, error_rate=0.25, truncate_rate=0.15, reset_rate=0.1, html_rate=0.1)
    records = [r for page in connector.read("Product", None) for r in page.records]
    assert sorted(int(r.id) for r in records) == list(range(1, 31))
    assert connector.stats.retries >= 3 and waits
    assert {"503", "truncate"} <= set(box.faults.injected)


def test_a_system_that_keeps_failing_gives_up_with_the_request(
    box: CustomCrmSandbox, url: str
) -> None:
    connector, waits = make_connector(url, max_retries=2)
    box.faults.update(error_rate=1.0)
    with pytest.raises(TransientError, match=r"crm: GET /customers: 503.*gave up"):
        list(connector.read("Customer", None))
    assert len(waits) == 2
    with pytest.raises(ConnectorError, match="try again later"):
        connector.check()


# -- APIs that differ from the contract ----------------------------------------------------
class ShapedApi:
    """An existing API: /api/v2/people with page paging and a ``data`` envelope,
    /api/v2/staff with offset paging and a bare list, ``key`` ids, ``modified``
    timestamps and ``removed`` flags, and endpoints that break the contract."""

    def __init__(self, count: int) -> None:
        self.base = datetime(2024, 9, 1, tzinfo=UTC)
        self.rows = [
            {
                "key": f"P-{n:03d}",
                "name": f"Person {n}",
                "modified": (self.base + timedelta(minutes=n)).isoformat(),
                "removed": False,
                "meta": {"ref": None},
            }
            for n in range(count)
        ]
        self.seen: list[dict[str, str]] = []
        self.broken: dict[str, Any] = {}
        self.created: list[dict[str, Any]] = []

    def _filtered(self, request: Request) -> list[dict[str, Any]]:
        params = dict(request.query_params)
        self.seen.append(params)
        rows = self.rows
        if "changed_since" in params:
            since = datetime.fromisoformat(params["changed_since"].replace("Z", "+00:00"))
            rows = [r for r in rows if datetime.fromisoformat(r["modified"]) >= since]
        if "ref" in params:
            rows = [r for r in rows if r["meta"]["ref"] == params["ref"]]
        return rows

    async def people(self, request: Request) -> Response:
        rows = self._filtered(request)
        size = int(request.query_params.get("per_page", 10))
        page = int(request.query_params.get("p", 1))
        return JSONResponse({"data": rows[(page - 1) * size : page * size], "total": len(rows)})

    async def staff(self, request: Request) -> Response:
        if request.method == "POST":
            body = await request.json()
            row = {
                "key": f"S-{len(self.created)}",
                "modified": self.base.isoformat(),
                **body,
            }
            self.created.append(row)
            self.rows.append(row)
            return PlainTextResponse('{"key": "S-', status_code=201)  # cut off
        rows = self._filtered(request)
        offset = int(request.query_params.get("offset", 0))
        limit = int(request.query_params.get("limit", 10))
        return JSONResponse(rows[offset : offset + limit])

    async def broken_feed(self, request: Request) -> Response:
        self.seen.append(dict(request.query_params))
        kind = self.broken["kind"]
        if kind == "text":
            return PlainTextResponse("Service OK", media_type="text/plain")
        bodies: dict[str, Any] = {
            "no_id": {"items": [{"name": "Ola"}], "next": None},
            "bool_id": {"items": [{"id": True}], "next": None},
            "not_list": {"items": {"id": 1}, "next": None},
            "bad_updated": {"items": [{"id": 1, "updated_at": "yesterday"}], "next": None},
            "bad_next": {"items": [{"id": 1}], "next": {"page": 2}},
            "item_not_object": {"items": ["a"], "next": None},
        }
        return JSONResponse(bodies[kind])

    async def quiet(self, request: Request) -> Response:
        if request.method == "POST":
            self.created.append(await request.json())
            return Response(status_code=201, headers={"Location": "/api/v2/quiet/7"})
        return JSONResponse({"id": 7, **self.created[-1]})

    async def same_page(self, request: Request) -> Response:
        return JSONResponse({"items": [{"id": 1}, {"id": 2}]})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v2/people", self.people),
                Route("/api/v2/staff", self.staff, methods=["GET", "POST"]),
                Route("/api/v2/broken", self.broken_feed),
                Route("/api/v2/same", self.same_page),
                Route("/api/v2/quiet", self.quiet, methods=["POST"]),
                Route("/api/v2/quiet/7", self.quiet),
            ]
        )


@pytest.fixture
def shaped() -> Iterator[tuple[ShapedApi, str]]:
    api = ShapedApi(23)
    server = SandboxServer(api.app()).start()
    yield api, f"{server.url}/api/v2"
    server.stop()


PEOPLE = {
    "path": "people",
    "paging": "page",
    "page_param": "p",
    "limit_param": "per_page",
    "page_size": 5,
    "items": "data",
    "id": "key",
    "updated": "modified",
    "deleted": "removed",
    "since_param": "changed_since",
}


def test_page_paging_with_other_names_and_a_timestamp_cursor(
    shaped: tuple[ShapedApi, str],
) -> None:
    api, base_url = shaped
    connector, _ = make_connector(base_url, {"Person": PEOPLE}, auth="none", credentials={})
    connector.check()
    pages = list(connector.read("Person", None))
    records = [r for page in pages for r in page.records]
    assert [r.id for r in records] == [f"P-{n:03d}" for n in range(23)]
    assert [page.cursor for page in pages[:-1]] == [None] * (len(pages) - 1)
    newest = api.base + timedelta(minutes=22)
    assert pages[-1].cursor == newest.isoformat()
    assert [p.get("p") for p in api.seen[1:]] == ["1", "2", "3", "4", "5"]  # short 5th page

    api.rows[3].update(name="Endret", modified=(newest + timedelta(hours=1)).isoformat())
    api.rows[7].update(removed=True, modified=(newest + timedelta(hours=1)).isoformat())
    api.seen.clear()
    again = list(connector.read("Person", pages[-1].cursor))
    changed = [(r.id, r.deleted) for page in again for r in page.records]
    # the overlap window (5 s) brings the newest unchanged record back; hashes sort it out
    assert changed == [("P-003", False), ("P-007", True), ("P-022", False)]
    sent = api.seen[0]["changed_since"]
    assert sent == (newest - timedelta(seconds=5)).isoformat().replace("+00:00", "Z")
    assert again[-1].cursor == (newest + timedelta(hours=1)).isoformat()


def test_offset_paging_with_a_bare_list(shaped: tuple[ShapedApi, str]) -> None:
    api, base_url = shaped
    staff = {
        "path": "staff",
        "paging": "offset",
        "items": None,
        "id": "key",
        "updated": "modified",
        "page_size": 10,
        "incremental": False,
        "external_ref": "meta.ref",
        "external_ref_param": "ref",
    }
    connector, _ = make_connector(base_url, {"Staff": staff}, auth="none", credentials={})
    pages = list(connector.read("Staff", None))
    # a short page is not the end (an API may cap the page size): an empty page is
    assert [len(page.records) for page in pages] == [10, 10, 3, 0]
    assert all(page.cursor is None for page in pages)  # not incremental: full scans
    assert [p.get("offset") for p in api.seen] == ["0", "10", "20", "23"]
    assert "since" not in api.seen[0]

    # the answer to a create is cut off: the connector finds the record by its ref
    created = connector.create("Staff", {"name": "Kari"}, external_ref="crm:Contact:9")
    assert created.id == "S-0"
    assert api.created == [
        {
            "key": "S-0",
            "modified": api.base.isoformat(),
            "name": "Kari",
            "meta": {"ref": "crm:Contact:9"},
        }
    ]


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("text", "not JSON: 'Service OK'"),
        ("no_id", "no usable id in 'id' \\(missing\\)"),
        ("bool_id", "no usable id in 'id' \\(True\\)"),
        ("not_list", "'items' is not a list"),
        ("bad_updated", "updated_at 'yesterday' is not ISO 8601"),
        ("bad_next", "'next' is not a string or null"),
        ("item_not_object", "an item is not an object"),
    ],
)
def test_answers_that_break_the_contract_name_the_request(
    shaped: tuple[ShapedApi, str], kind: str, message: str
) -> None:
    api, base_url = shaped
    api.broken["kind"] = kind
    connector, _ = make_connector(base_url, {"Thing": {"path": "broken"}}, auth="none")
    with pytest.raises(ContractError, match=message) as broken:
        list(connector.read("Thing", "42"))
    assert "GET /broken?limit=100&since=42" in str(broken.value)
    assert "system 'crm'" in str(broken.value)
    if kind == "text":
        assert len(api.seen) == 3  # asked again twice: a cut answer passes, this one never


def test_a_create_answered_with_only_a_location_is_read_back(
    shaped: tuple[ShapedApi, str],
) -> None:
    _, base_url = shaped
    connector, _ = make_connector(base_url, {"Thing": {"path": "quiet"}}, auth="none")
    created = connector.create("Thing", {"name": "Ola", "size.cm": 180})
    assert created.id == "7"
    assert created.data == {"id": 7, "name": "Ola", "size": {"cm": 180}}


def test_a_page_parameter_the_api_ignores_is_reported(shaped: tuple[ShapedApi, str]) -> None:
    _, base_url = shaped
    same = {"path": "same", "paging": "page", "page_size": 2}
    connector, _ = make_connector(base_url, {"Thing": same}, auth="none")
    with pytest.raises(ContractError, match="same page came back twice"):
        list(connector.read("Thing", None))


def test_unknown_paging_style_is_a_config_error() -> None:
    with pytest.raises(ConnectorError, match="paging: 'cursors' is not known"):
        make_connector("http://127.0.0.1:1", {"Thing": {"paging": "cursors"}})


def test_unknown_property_type_is_named() -> None:
    config = make_config("http://127.0.0.1:1", {"Thing": {"properties": {"size": "strng"}}})
    # a config error that names the property, not a traceback
    with pytest.raises(ConnectorError, match=r"properties\.size\.type: 'strng' is not known"):
        RestConnector.describe(config)
