"""The custom CRM sandbox over real HTTP, with every answer checked against the contract.

Each response the test client receives is validated against ``docs/custom-system-api.yaml``
with openapi-core (an httpx event hook), so every operation exercised here — list, lookup,
get, create, patch, delete, and their error answers — is also a conformance check.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from samband import sampledata
from samband.kinds.rest.sandbox import DEFAULT_TOKEN, MAX_LIMIT, CustomCrmSandbox
from samband.sandbox._base import SandboxServer
from samband.sandbox.registry import create_sandbox

SPEC_FILE = Path(__file__).resolve().parents[3] / "docs" / "custom-system-api.yaml"


class _Request:
    """An httpx request in the shape openapi-core reads."""

    def __init__(self, request: httpx.Request) -> None:
        self.host_url = f"{request.url.scheme}://{request.url.netloc.decode()}"
        self.path = request.url.path
        self.method = request.method.lower()
        self.body = request.content or None
        self.content_type = request.headers.get("content-type", "")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(request.url.params.multi_items()),
            header=Headers(list(request.headers.items())),
            cookie=ImmutableMultiDict(),
        )


class _Response:
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.content_type = response.headers.get("content-type", "").split(";")[0]
        self.headers = Headers(list(response.headers.items()))
        self.data = response.content


class ContractClient:
    """An httpx client whose every answer must conform to the OpenAPI document."""

    def __init__(self, base_url: str, token: str | None = DEFAULT_TOKEN) -> None:
        spec = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
        spec["servers"] = [{"url": base_url}]
        problem_json = {"application/problem+json": json.loads}
        self.openapi = OpenAPI.from_dict(
            spec, config=Config(extra_media_type_deserializers=problem_json)
        )
        self.checked: list[str] = []
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(
            base_url=base_url, headers=headers, event_hooks={"response": [self._validate]}
        )

    def _validate(self, response: httpx.Response) -> None:
        response.read()
        if response.request.url.path.startswith("/_sandbox"):
            return
        self.openapi.validate_response(_Request(response.request), _Response(response))
        self.checked.append(f"{response.request.method} {response.status_code}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.http, name)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[CustomCrmSandbox, SandboxServer]]:
    box = CustomCrmSandbox()
    server = box.serve()
    yield box, server
    server.stop()


@pytest.fixture
def box(served: tuple[CustomCrmSandbox, SandboxServer]) -> CustomCrmSandbox:
    sandbox, _ = served
    sandbox.reset()
    sandbox.faults.update(burst_429=0, error_rate=0.0)
    sandbox.clock.set_speed(1.0)
    return sandbox


@pytest.fixture
def api(box: CustomCrmSandbox, served: tuple[CustomCrmSandbox, SandboxServer]) -> ContractClient:
    return ContractClient(served[1].url)


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def test_the_registry_names_the_sandbox() -> None:
    assert isinstance(create_sandbox("rest"), CustomCrmSandbox)


def test_requests_without_the_right_token_are_refused(
    box: CustomCrmSandbox, served: tuple[CustomCrmSandbox, SandboxServer]
) -> None:
    for token in (None, "wrong-token"):
        client = ContractClient(served[1].url, token=token)
        response = client.get("/customers")
        _problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        _problem(client.post("/customers", json={"name": "X"}), 401)
    assert box.records("Customer") == {}


def test_basic_auth_when_configured() -> None:
    box = CustomCrmSandbox(token="", basic=("ola", "hemmelig"))
    server = box.serve()
    try:
        good = base64.b64encode(b"ola:hemmelig").decode()
        bad = base64.b64encode(b"ola:feil").decode()
        client = ContractClient(server.url, token=None)
        ok = client.get("/contacts", headers={"Authorization": f"Basic {good}"})
        assert ok.status_code == 200
        _problem(client.get("/contacts", headers={"Authorization": f"Basic {bad}"}), 401)
        _problem(client.get("/contacts", headers={"Authorization": "Bearer anything"}), 401)
    finally:
        server.stop()


def test_create_get_patch_delete(api: ContractClient, box: CustomCrmSandbox) -> None:
    created = api.post(
        "/customers",
        json={
            "name": "Fjord Data AS",
            "org_no": "923609016",
            "address": {"street": "Storgata 1", "city": "Oslo"},
            "external_ref": "pog:Customers:7",
        },
    )
    assert created.status_code == 201
    customer = created.json()
    assert isinstance(customer["id"], int)
    assert created.headers["Location"] == f"/customers/{customer['id']}"
    assert customer["updated_at"].endswith("+00:00")
    assert customer["address"] == {
        "street": "Storgata 1",
        "zip_code": None,
        "city": "Oslo",
        "country": None,
    }
    assert api.get(f"/customers/{customer['id']}").json() == customer

    patched = api.patch(f"/customers/{customer['id']}", json={"address": {"zip_code": "0150"}})
    assert patched.status_code == 200
    after = patched.json()
    assert after["address"]["zip_code"] == "0150"
    assert after["address"]["street"] == "Storgata 1"  # merged, not replaced
    assert after["name"] == "Fjord Data AS"
    cleared = api.patch(f"/customers/{customer['id']}", json={"org_no": None}).json()
    assert cleared["org_no"] is None

    assert api.delete(f"/customers/{customer['id']}").status_code == 204
    _problem(api.get(f"/customers/{customer['id']}"), 404)
    _problem(api.delete(f"/customers/{customer['id']}"), 404)
    _problem(api.patch(f"/customers/{customer['id']}", json={"name": "Y"}), 404)
    feed = api.get("/customers").json()
    assert [(item["id"], item["deleted"]) for item in feed["items"]] == [(customer["id"], True)]
    assert {"POST 201", "GET 200", "PATCH 200", "DELETE 204", "GET 404"} <= set(api.checked)


def test_a_patch_with_a_stale_if_match_is_refused(api: ContractClient) -> None:
    customer = api.post("/customers", json={"name": "Fjord AS"}).json()
    read = api.get(f"/customers/{customer['id']}")
    etag = read.headers["ETag"]
    ok = api.patch(
        f"/customers/{customer['id']}", json={"name": "Fjord Data AS"}, headers={"If-Match": etag}
    )
    assert ok.status_code == 200 and ok.headers["ETag"] != etag
    late = api.patch(
        f"/customers/{customer['id']}", json={"name": "Late"}, headers={"If-Match": etag}
    )
    _problem(late, 412)
    assert api.get(f"/customers/{customer['id']}").json()["name"] == "Fjord Data AS"
    assert {"PATCH 200", "PATCH 412"} <= set(api.checked)


def test_orders_with_lines_and_references(api: ContractClient) -> None:
    customer = api.post("/customers", json={"name": "Kunde AS"}).json()
    product = api.post("/products", json={"code": "P1", "name": "Time", "unit_price": 950.5})
    product_id = product.json()["id"]
    contact = api.post(
        "/contacts", json={"first_name": "Kari", "customer_id": customer["id"], "email": "k@x.no"}
    )
    assert contact.status_code == 201
    order = api.post(
        "/orders",
        json={
            "customer_id": customer["id"],
            "order_date": "2024-09-10",
            "lines": [{"product_id": product_id, "quantity": 2, "unit_price": 950.5}],
        },
    ).json()
    assert order["order_no"] == f"SO-{order['id']:05d}"
    assert (order["currency"], order["status"]) == ("NOK", "draft")
    assert order["lines"] == [
        {"product_id": product_id, "description": None, "quantity": 2, "unit_price": 950.5}
    ]
    # in use: the contact and the order refer to the customer, the order line to the product
    body = _problem(api.delete(f"/customers/{customer['id']}"), 409)
    assert "in use" in body["detail"]
    _problem(api.delete(f"/products/{product_id}"), 409)
    assert api.delete(f"/orders/{order['id']}").status_code == 204
    assert api.delete(f"/products/{product_id}").status_code == 204


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/customers", {"org_no": "923609016"}, "name"),
        ("/customers", {"name": 42}, "name"),
        ("/customers", {"name": "A", "email": "not-an-address"}, "email"),
        ("/customers", {"name": "A", "address": "Storgata 1"}, "address"),
        ("/customers", {"name": "A", "colour": "blue"}, "colour"),
        ("/contacts", {"email": "a@b.no"}, "last_name"),
        ("/contacts", {"last_name": "Lie", "customer_id": 999}, "customer_id"),
        ("/contacts", {"last_name": "Lie", "customer_id": "1"}, "customer_id"),
        ("/products", {"code": "P1", "name": "X", "unit_price": "12,50"}, "unit_price"),
        ("/products", {"code": "P1", "name": "X", "unit_cost": True}, "unit_cost"),
        ("/orders", {"order_date": "2024-09-10"}, "customer_id"),
    ],
)
def test_validation_errors_are_422_problems(
    api: ContractClient, box: CustomCrmSandbox, path: str, body: dict[str, Any], field: str
) -> None:
    problem = _problem(api.post(path, json=body), 422)
    assert field in [error["field"] for error in problem["errors"]]
    assert field in problem["detail"]
    assert all(not box.records(name) for name in ("Customer", "Contact", "Product", "Order"))


def test_order_fields_are_checked(api: ContractClient) -> None:
    customer = api.post("/customers", json={"name": "Kunde AS"}).json()["id"]
    for body, field in [
        ({"order_date": "10.09.2024"}, "order_date"),
        ({"currency": "kroner"}, "currency"),
        ({"status": "shipped"}, "status"),
        ({"lines": [{"product_id": 77, "quantity": 1}]}, "lines"),
        ({"lines": [{"quantity": "two"}]}, "lines"),
    ]:
        problem = _problem(api.post("/orders", json={"customer_id": customer, **body}), 422)
        assert [error["field"] for error in problem["errors"]] == [field]


def test_bad_bodies_and_parameters_are_400(api: ContractClient) -> None:
    _problem(api.post("/customers", content=b"{not json", headers={"content-type": "x"}), 400)
    _problem(api.post("/customers", json=[{"name": "A"}]), 400)
    _problem(api.get("/customers", params={"since": "yesterday"}), 400)
    _problem(api.get("/customers", params={"limit": "0"}), 400)
    _problem(api.get("/invoices"), 404)
    _problem(api.get("/customers/abc"), 404)


def test_change_feed_pages_in_change_order(api: ContractClient, box: CustomCrmSandbox) -> None:
    for number in range(25):
        box.insert("Customer", {"name": f"Firma {number}"})
    seen: list[int] = []
    since: str | None = None
    pages = 0
    while True:
        params = {"limit": 10, **({"since": since} if since else {})}
        page = api.get("/customers", params=params).json()
        pages += 1
        seen.extend(item["id"] for item in page["items"])
        since = page["next"]
        if not page["has_more"]:
            break
    assert pages == 3
    assert seen == list(range(1, 26))
    # nothing new: an empty page that keeps the position
    quiet = api.get("/customers", params={"since": since}).json()
    assert quiet == {"items": [], "next": since, "has_more": False}
    # an edit and a delete after the cursor show up, once each, in change order
    box.edit("Customer", 3, {"name": "Firma tre"})
    box.remove("Customer", 20)
    changed = api.get("/customers", params={"since": since}).json()
    assert [(i["id"], i["deleted"], i["name"]) for i in changed["items"]] == [
        (3, False, "Firma tre"),
        (20, True, "Firma 19"),
    ]
    assert int(changed["next"]) > int(since or 0)


def test_no_change_is_missed_when_timestamps_tie(
    api: ContractClient, box: CustomCrmSandbox
) -> None:
    box.clock.set_speed(0.0)  # the clock stands still: every updated_at is the same
    first = api.post("/contacts", json={"last_name": "Berg"}).json()
    cursor = api.get("/contacts").json()["next"]
    second = api.post("/contacts", json={"last_name": "Dahl"}).json()
    api.patch(f"/contacts/{first['id']}", json={"title": "CEO"})
    assert first["updated_at"] == second["updated_at"]
    changed = api.get("/contacts", params={"since": cursor}).json()["items"]
    assert [(item["id"], item["title"]) for item in changed] == [
        (second["id"], None),
        (first["id"], "CEO"),
    ]


def test_limit_is_capped(api: ContractClient, box: CustomCrmSandbox) -> None:
    for number in range(MAX_LIMIT + 5):
        box.insert("Product", {"code": f"P{number}", "name": f"Vare {number}"})
    page = api.get("/products", params={"limit": 5000}).json()
    assert len(page["items"]) == MAX_LIMIT
    assert page["has_more"] is True
    assert len(api.get("/products").json()["items"]) == 100


def test_lookup_by_external_ref(api: ContractClient, box: CustomCrmSandbox) -> None:
    box.insert("Product", {"code": "A", "name": "A", "external_ref": "pog:Product:1"})
    wanted = box.insert("Product", {"code": "B", "name": "B", "external_ref": "pog:Product:2"})
    gone = box.insert("Product", {"code": "C", "name": "C", "external_ref": "pog:Product:3"})
    box.remove("Product", gone["id"])
    found = api.get("/products", params={"external_ref": "pog:Product:2"}).json()["items"]
    assert [item["id"] for item in found] == [wanted["id"]]
    assert api.get("/products", params={"external_ref": "pog:Product:3"}).json()["items"] == []


def test_injected_faults_are_problems_with_retry_after(
    api: ContractClient, box: CustomCrmSandbox
) -> None:
    box.faults.update(burst_429=1)
    throttled = api.get("/customers")
    _problem(throttled, 429)
    assert throttled.headers["Retry-After"] == "1"
    assert api.get("/customers").status_code == 200
    box.faults.update(error_rate=1.0)
    _problem(api.get("/customers"), 503)


def test_seeded_data_is_realistic_and_repeatable() -> None:
    box, twin = CustomCrmSandbox(), CustomCrmSandbox()
    box.seed(12, rng_seed=7)
    twin.seed(12, rng_seed=7)

    def without_times(sandbox: CustomCrmSandbox, name: str) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in record.items() if k != "updated_at"}
            for record in sandbox.records(name).values()
        ]

    for name in ("Customer", "Contact", "Product", "Order"):
        assert len(box.records(name)) == 12
        assert without_times(box, name) == without_times(twin, name)
    customers = box.records("Customer")
    assert all(sampledata.valid_no_org_no(c["org_no"]) for c in customers.values())
    assert all(c["address"]["city"] and c["email"] for c in customers.values())
    for contact in box.records("Contact").values():
        assert contact["customer_id"] in customers
        domain = customers[contact["customer_id"]]["email"].split("@")[1]
        assert contact["email"].endswith("@" + domain)
    products = box.records("Product")
    for order in box.records("Order").values():
        assert order["customer_id"] in customers
        assert order["lines"]
        assert all(line["product_id"] in products for line in order["lines"])
    other = CustomCrmSandbox()
    other.seed(12, rng_seed=8)
    assert without_times(other, "Customer") != without_times(box, "Customer")


def test_seeded_answers_conform(
    served: tuple[CustomCrmSandbox, SandboxServer], box: CustomCrmSandbox
) -> None:
    box.seed(5, rng_seed=random.Random(3).randrange(100))
    api = ContractClient(served[1].url)
    for path in ("/contacts", "/customers", "/orders", "/products"):
        items = api.get(path).json()["items"]
        assert len(items) == 5
        assert api.get(f"{path}/{items[0]['id']}").json() == items[0]
    assert api.checked.count("GET 200") == 8
