"""The Sync API as Exact serves it: fewer fields than the CRUD endpoints, one entity type
per ``sync/Deleted`` filter, error texts in the user's language."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from samband.kinds.exact_online.sandbox import ExactOnlineSandbox
from samband.sandbox._base import Clock, SandboxServer
from tests.support.exact import make_connector, read_all, serve


@pytest.fixture(autouse=True)
def _token_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMBAND_TOKEN_KEY", Fernet.generate_key().decode())


@pytest.fixture
def box() -> ExactOnlineSandbox:
    sandbox = ExactOnlineSandbox(
        clock=Clock(), sync_page_size=50, page_size=7, minutely_limit=100_000, daily_limit=100_000
    )
    sandbox.seed(40, 3)
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


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("sync/Logistics/Items", "StandardSalesPrice"),
        ("sync/Logistics/Items", "IsBatchNumberItem"),
        ("sync/Logistics/Items", "IsSerialNumberItem"),
        ("sync/SalesOrder/SalesOrderHeaders", "TaxSchedule"),
        ("sync/SalesOrder/SalesOrderLines", "TaxScheduleCode"),
        ("sync/SalesOrder/SalesOrderLines", "OrderStatus"),
    ],
)
def test_sandbox_sync_select_of_a_field_the_sync_entity_lacks_is_400(
    api: httpx.Client, path: str, field: str
) -> None:
    answer = api.get(path, params={"$select": f"Timestamp,{field}", "$filter": "Timestamp gt 1"})
    assert answer.status_code == 400
    assert field in answer.json()["error"]["message"]["value"]
    # the CRUD endpoint serves it
    crud = {"sync/Logistics/Items": "logistics/Items"}.get(path)
    if crud:
        assert api.get(crud, params={"$select": f"ID,{field}", "$filter": "ID ne null"}).is_success


@pytest.mark.parametrize("etype", ["Items", "SalesOrders", "SalesOrderLines"])
def test_connector_sync_reads_select_only_what_the_sync_endpoint_serves(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path, etype: str
) -> None:
    seen: list[str] = []

    class Recording(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if "/sync/" in request.url.path and "Deleted" not in request.url.path:
                seen.append(request.url.params.get("$select", ""))
            return super().handle_request(request)

    connector = make_connector(box, server, tmp_path, transport=Recording())
    _, records, _ = read_all(connector, etype)
    assert records
    assert seen
    lacking = {"StandardSalesPrice", "TaxSchedule", "OrderStatus", "IsSerialNumberItem"}
    assert not lacking & set(seen[0].split(","))


CONFIG = """\
systems:
  exact:
    kind: exact-online
    division: 1
    credentials: {client_id: "${EXACT_ID}", client_secret: "${EXACT_SECRET}"}
    entity_types:
      Items: {FULL_SCAN}
  mem:
    kind: memory
    entity_types:
      Product: {properties: {code: {type: string}, price: {type: decimal}}}
dataflows:
  - source: exact.Items
    target: mem.Product
    properties:
      - {from: Code, to: code, type: string}
      - {from: StandardSalesPrice, to: price, type: decimal}
"""


def test_validate_refuses_a_mapping_the_sync_endpoint_cannot_serve(tmp_path: Path) -> None:
    from samband.config.validate import validate_file

    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.replace("{FULL_SCAN}", "{}"), encoding="utf-8")
    errors = [p for p in validate_file(path) if p.severity == "error"]
    assert len(errors) == 1, errors
    assert errors[0].line == 17
    assert "StandardSalesPrice" in errors[0].message
    assert "sync/Logistics/Items" in errors[0].message
    assert "full_scan" in (errors[0].hint or "")
    assert "\n" not in str(errors[0])
    # read through logistics/Items instead, the field is served
    path.write_text(CONFIG.replace("{FULL_SCAN}", "{full_scan: true}"), encoding="utf-8")
    assert [p for p in validate_file(path) if p.severity == "error"] == []


def test_sandbox_sync_deleted_refuses_a_filter_joining_entity_types(api: httpx.Client) -> None:
    select = "EntityKey,EntityType,Timestamp"
    joined = "Timestamp gt 1 and (EntityType eq 2 or EntityType eq 5)"
    answer = api.get("sync/Deleted", params={"$select": select, "$filter": joined})
    assert answer.status_code == 400
    one = "Timestamp gt 1 and EntityType eq 2"
    assert api.get("sync/Deleted", params={"$select": select, "$filter": one}).is_success


def test_connector_reads_sync_deleted_one_entity_type_per_call(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    filters: list[str] = []

    class Recording(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/sync/Deleted"):
                filters.append(request.url.params.get("$filter", ""))
            return super().handle_request(request)

    connector = make_connector(box, server, tmp_path, transport=Recording())
    connector.wanted_fields.update({"Accounts": {"Name"}, "Contacts": {"FirstName"}})
    contact = next(iter(box.tables["crm/Contacts"]))
    box.remove("crm/Contacts", contact)
    _, accounts, _ = read_all(connector, "Accounts")
    _, contacts, _ = read_all(connector, "Contacts")
    assert [r.id for r in contacts if r.deleted] == [contact]
    assert not [r for r in accounts if r.deleted]
    assert filters == ["Timestamp gt 1 and EntityType eq 2", "Timestamp gt 1 and EntityType eq 5"]


def test_an_account_in_use_is_detected_by_status_not_by_english_text(
    server: SandboxServer, box: ExactOnlineSandbox, tmp_path: Path
) -> None:
    """Exact words error messages in the user's language: a Dutch refusal of a DELETE is
    still an account in use."""
    from samband.errors import InUse

    box.language = "nl"
    connector = make_connector(box, server, tmp_path)
    account = next(
        k
        for k, r in box.tables["crm/Accounts"].items()
        if any(c.get("Account") == k for c in box.tables["crm/Contacts"].values())
    )
    with pytest.raises(InUse, match="in gebruik"):
        connector.delete("Accounts", account)
    assert account in box.tables["crm/Accounts"]
