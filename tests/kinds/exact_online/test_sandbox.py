"""The Exact Online sandbox: OData subset, envelopes, mandatory filtering, faults, and a
real public client (PyPI ``exactonline``) pointed at it unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from samband.kinds.exact_online.connector._dates import VENDOR_TZ
from samband.kinds.exact_online.sandbox import ExactOnlineSandbox
from samband.kinds.exact_online.sandbox._odata import ODataError, parse_filter
from samband.sandbox._base import Clock, SandboxServer
from tests.support.exact import serve


@pytest.fixture
def box() -> ExactOnlineSandbox:
    sandbox = ExactOnlineSandbox(clock=Clock(), minutely_limit=10_000)
    sandbox.seed(70, 2)
    return sandbox


@pytest.fixture
def server(box: ExactOnlineSandbox) -> Iterator[SandboxServer]:
    running = serve(box)
    yield running
    running.stop()


@pytest.fixture
def api(box: ExactOnlineSandbox, server: SandboxServer) -> Iterator[httpx.Client]:
    token = box.issue_tokens()["access_token"]
    with httpx.Client(
        base_url=f"{server.url}/api/v1/{box.division}/",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    ) as client:
        yield client


RECORD = {
    "Name": "De Bakker B.V.",
    "Code": "            000042",
    "City": None,
    "Blocked": False,
    "Type": 2,
    "ID": "0f3a6c2e-1b1c-4a44-9d1e-0c2b33a1d0aa",
    "Modified": datetime(2024, 3, 1, 12, 0, tzinfo=VENDOR_TZ),
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("Name eq 'De Bakker B.V.'", True),
        ("Name ne 'De Bakker B.V.'", False),
        ("trim(Code) eq '000042'", True),
        ("Code eq '000042'", False),
        ("Type gt 1 and Type le 2", True),
        ("Type lt 1 or Blocked eq false", True),
        ("not (Type ge 2)", False),
        ("City eq null", True),
        ("ID eq guid'0F3A6C2E-1B1C-4A44-9D1E-0C2B33A1D0AA'", True),
        ("Modified ge datetime'2024-03-01T12:00:00'", True),
        ("Modified gt datetime'2024-03-01T12:00:00'", False),
        ("startswith(Name, 'De ') and substringof('Bakker', Name)", True),
        ("tolower(Name) eq 'de bakker b.v.'", True),
        ("Name eq 'It''s'", False),
    ],
)
def test_filter_subset(expression: str, expected: bool) -> None:
    assert parse_filter(expression, set(RECORD))(RECORD) is expected


@pytest.mark.parametrize("expression", ["Name eq", "Nope eq 1", "Name eq 'x' and", "(Type eq 1"])
def test_filter_errors(expression: str) -> None:
    with pytest.raises(ODataError):
        parse_filter(expression, set(RECORD))


def test_envelope_paging_select_inlinecount(api: httpx.Client, box: ExactOnlineSandbox) -> None:
    first = api.get(
        "crm/Accounts",
        params={"$filter": "Blocked eq false", "$select": "ID,Name", "$inlinecount": "allpages"},
    )
    assert first.status_code == 200
    data = first.json()["d"]
    assert data["__count"] == "70" and len(data["results"]) == 60
    assert set(data["results"][0]) == {"__metadata", "ID", "Name"}
    assert data["results"][0]["__metadata"]["uri"].endswith(f"(guid'{data['results'][0]['ID']}')")
    assert "$skiptoken" in httpx.URL(data["__next"]).params
    second = api.get(data["__next"]).json()["d"]
    assert len(second["results"]) == 10 and "__next" not in second
    ids = {r["ID"] for r in data["results"]} | {r["ID"] for r in second["results"]}
    assert ids == set(box.tables["crm/Accounts"])
    top = api.get(
        "crm/Contacts", params={"$top": "5", "$select": "ID", "$filter": "ID ne null"}
    ).json()["d"]
    assert len(top["results"]) == 5 and "__next" not in top


def test_mandatory_filter_and_error_body(api: httpx.Client) -> None:
    refused = api.get("logistics/Items", params={"$select": "ID"})
    assert refused.status_code == 400
    body = refused.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    message = body["error"]["message"]["value"]
    assert message.startswith("This endpoint has mandatory filtering applied.")
    assert ":Barcode,Class_01," in message  # the allowed fields, as Exact lists them
    assert api.get("crm/Accounts", params={"$filter": "Nope eq 1"}).status_code == 400
    assert api.get("hrm/Departments", params={"$select": "ID"}).status_code == 200


@pytest.mark.parametrize(
    "resource",
    [
        "crm/Accounts",
        "crm/Contacts",
        "logistics/Items",
        "project/Projects",
        "salesorder/SalesOrders",
        "salesorder/SalesOrderLines",
    ],
)
def test_every_endpoint_with_a_sync_api_has_mandatory_filtering(
    api: httpx.Client, resource: str
) -> None:
    key = "OrderID" if resource == "salesorder/SalesOrders" else "ID"
    bare = api.get(resource, params={"$select": key})
    assert bare.status_code == 400
    assert "mandatory filtering" in bare.json()["error"]["message"]["value"]
    allowed = api.get(resource, params={"$select": key, "$filter": f"{key} ne null"})
    assert allowed.status_code == 200


def test_mandatory_filtering_refuses_a_field_not_on_the_list(api: httpx.Client) -> None:
    # Remarks is not among the fields Exact lets crm/Accounts filter on, alone or with one
    alone = api.get("crm/Accounts", params={"$filter": "Remarks eq 'x'"})
    assert alone.status_code == 400
    assert "mandatory filtering" in alone.json()["error"]["message"]["value"]
    joined = api.get("crm/Accounts", params={"$filter": "ID ne null and Remarks eq 'x'"})
    assert joined.status_code == 400
    assert "Remarks" in joined.json()["error"]["message"]["value"]
    free = api.get("logistics/Items", params={"$filter": "FreeTextField_10 eq 'x'"})
    assert free.status_code == 400
    assert api.get("crm/Accounts", params={"$filter": "Code eq '1'"}).status_code == 200


def test_single_record_expand_and_read_only(api: httpx.Client, box: ExactOnlineSandbox) -> None:
    order_id = next(iter(box.tables["salesorder/SalesOrders"]))
    one = api.get(f"salesorder/SalesOrders(guid'{order_id}')").json()["d"]
    assert "__deferred" in one["SalesOrderLines"]
    expanded = api.get(
        f"salesorder/SalesOrders(guid'{order_id}')", params={"$expand": "SalesOrderLines"}
    ).json()["d"]
    assert len(expanded["SalesOrderLines"]["results"]) >= 1
    department = next(iter(box.tables["hrm/Departments"]))
    refused = api.put(f"hrm/Departments(guid'{department}')", json={"Description": "x"})
    assert refused.status_code == 405


def test_errors_on_one_endpoint_block_it_for_an_hour(
    api: httpx.Client, box: ExactOnlineSandbox
) -> None:
    for _ in range(11):
        api.get("crm/Contacts(guid'00000000-0000-4000-8000-000000000000')")
    blocked = api.get("crm/Contacts", params={"$select": "ID", "$filter": "ID ne null"})
    assert blocked.status_code == 403
    assert api.get("hrm/Departments", params={"$select": "ID"}).status_code == 200
    box.clock.advance(3601)
    api.headers["Authorization"] = f"Bearer {box.issue_tokens()['access_token']}"
    assert (
        api.get("crm/Contacts", params={"$select": "ID", "$filter": "ID ne null"}).status_code
        == 200
    )


def test_fault_injection_uses_the_exact_error_body(
    api: httpx.Client, box: ExactOnlineSandbox
) -> None:
    box.faults.update(burst_429=1)
    answer = api.get("hrm/Departments", params={"$select": "ID"})
    assert answer.status_code == 429
    assert "error" in answer.json()


def test_the_exactonline_client_lists_and_creates_accounts(
    box: ExactOnlineSandbox, server: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PyPI package ``exactonline``, unchanged, against the sandbox.

    Its only setting that does not fit a sandbox is that it insists on https; on the
    loopback address it is allowed plain http (its own ``Options`` object).
    """
    from exactonline import rawapi
    from exactonline.api import ExactApi
    from exactonline.http import Options
    from exactonline.storage.base import ExactOnlineConfig, MissingSetting

    monkeypatch.setattr(rawapi, "opt_secure", Options())

    class Storage(ExactOnlineConfig):
        def __init__(self) -> None:
            self.data: dict[tuple[str, str], Any] = {}

        def get(self, section: str, option: str) -> Any:
            try:
                return self.data[(section, option)]
            except KeyError:
                raise MissingSetting(option) from None

        def set(self, section: str, option: str, value: Any) -> None:
            self.data[(section, option)] = value

    storage = Storage()
    storage.set("server", "auth_url", f"{server.url}/api/oauth2/auth")
    storage.set("server", "rest_url", f"{server.url}/api")
    storage.set("server", "token_url", f"{server.url}/api/oauth2/token")
    storage.set("application", "base_url", "http://127.0.0.1:1/callback")
    storage.set("application", "client_id", box.client_id)
    storage.set("application", "client_secret", box.client_secret)
    client = ExactApi(storage=storage)

    # first login the client's way: the auth page's redirect carries the code
    answer = httpx.get(client.create_auth_request_url(), follow_redirects=False)
    assert answer.status_code == 302
    code = httpx.URL(answer.headers["location"]).params["code"]
    client.request_token(code)
    assert storage.get("transient", "refresh_token")

    choices, current = client.get_divisions()
    assert current == box.division and box.division in choices
    client.set_division(current)

    relations = client.relations.filter(filter="Name ne ''")
    assert len(relations) == 70  # both pages, through __next
    assert {r["ID"] for r in relations} == set(box.tables["crm/Accounts"])

    created = client.relations.create({"Name": "Klant Via Client B.V.", "Code": "9001"})
    assert created["Name"] == "Klant Via Client B.V."
    assert box.tables["crm/Accounts"][created["ID"]]["Code"] == "9001".rjust(18)
    found = client.relations.get(relation_code="9001")
    assert found["ID"] == created["ID"]


def test_an_inserted_division_is_found_by_its_code() -> None:
    from samband.kinds.exact_online.sandbox import ExactOnlineSandbox

    box = ExactOnlineSandbox()
    box.insert("hrm/Divisions", {"Code": 777, "Description": "Extra"})
    record = box.tables["hrm/Divisions"]["777"]
    assert record["Code"] == 777 and isinstance(record["Code"], int)
