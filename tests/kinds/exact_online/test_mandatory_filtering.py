"""Mandatory filtering: every CRUD endpoint with a Sync API refuses a collection GET whose
``$filter`` names none of its allowed fields, or names a field not allowed.  The connector
filters only on allowed fields, finds external refs in other fields through the Sync API,
and validate refuses a ref field no allowed way can find."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from samband.config.model import EntityTypeConfig
from samband.errors import ContractError
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
    sandbox.seed(30, 5)
    return sandbox


@pytest.fixture
def server(box: ExactOnlineSandbox) -> Iterator[SandboxServer]:
    running = serve(box)
    yield running
    running.stop()


def _refused(box: ExactOnlineSandbox) -> dict[str, int]:
    return {endpoint: len(times) for endpoint, times in box.endpoint_errors.items() if times}


@pytest.mark.parametrize(
    ("etype", "resource"),
    [
        ("Contacts", "crm/Contacts"),
        ("Projects", "project/Projects"),
        ("SalesOrders", "salesorder/SalesOrders"),
        ("SalesOrderLines", "salesorder/SalesOrderLines"),
        ("Accounts", "crm/Accounts"),
        ("Items", "logistics/Items"),
    ],
)
def test_a_full_scan_filters_on_an_allowed_field(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path, etype: str, resource: str
) -> None:
    connector = make_connector(
        box, server, tmp_path, entity_types={etype: EntityTypeConfig(full_scan=True)}
    )
    _, records, _ = read_all(connector, etype)
    assert {r.id for r in records} == set(box.tables[resource])
    assert _refused(box) == {}


def test_the_items_ref_is_found_through_the_sync_api_not_a_refused_filter(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    writer = make_connector(box, server, tmp_path / "w")
    item = writer.create(
        "Items", {"Code": "X-1", "Description": "Schroef"}, external_ref="crm:Product:9"
    )
    # a later run (a new connector) looks for the interrupted create
    finder = make_connector(box, server, tmp_path / "f")
    found = finder.find_by_external_ref("Items", "crm:Product:9")
    assert found is not None and found.id == item.id
    # a ref differing only in case is another ref (Exact's own comparison ignores case)
    assert finder.find_by_external_ref("Items", "CRM:product:9") is None
    assert _refused(box) == {}


def test_a_ref_seen_by_the_runs_sync_read_costs_no_further_call(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    writer = make_connector(box, server, tmp_path / "w")
    item = writer.create(
        "Items", {"Code": "X-2", "Description": "Moer"}, external_ref="crm:Product:10"
    )
    reader = make_connector(box, server, tmp_path / "r")
    read_all(reader, "Items")
    calls = box.api_calls
    found = reader.find_by_external_ref("Items", "crm:Product:10")
    assert found is not None and found.id == item.id
    assert box.api_calls == calls


def test_an_account_ref_in_remarks_is_found_through_the_sync_api(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    """Remarks is not on crm/Accounts' list of filter fields: filtering on it is a 400
    that counts toward Exact's hourly error block."""
    settings = {"entity_types": {"Accounts": EntityTypeConfig(external_ref_field="Remarks")}}
    writer = make_connector(box, server, tmp_path / "w", **settings)
    account = writer.create("Accounts", {"Name": "Bakkerij Jansen"}, external_ref="pms:7")
    assert box.tables["crm/Accounts"][account.id]["Remarks"] == "pms:7"
    finder = make_connector(box, server, tmp_path / "f", **settings)
    found = finder.find_by_external_ref("Accounts", "pms:7")
    assert found is not None and found.id == account.id
    assert finder.find_by_external_ref("Accounts", "pms:8") is None
    assert _refused(box) == {}


@pytest.mark.parametrize(
    ("etype", "field", "why"),
    [
        ("Accounts", "Nope", "is not a field"),
        ("Items", "StandardSalesPrice", "not a writable text field"),
        ("Contacts", "FullName", "not a writable text field"),
    ],
)
def test_the_connector_refuses_a_ref_field_it_cannot_find_again(
    box: ExactOnlineSandbox,
    server: SandboxServer,
    tmp_path: Path,
    etype: str,
    field: str,
    why: str,
) -> None:
    with pytest.raises(ContractError, match=why):
        make_connector(
            box,
            server,
            tmp_path,
            entity_types={etype: EntityTypeConfig(external_ref_field=field)},
        )


CONFIG = """\
systems:
  exact:
    kind: exact-online
    division: 1
    credentials: {client_id: "${EXACT_ID}", client_secret: "${EXACT_SECRET}"}
    entity_types:
      Accounts: {external_ref_field: REF}
  mem:
    kind: memory
    entity_types:
      Customer: {properties: {name: {type: string}}}
dataflows:
  - source: mem.Customer
    target: exact.Accounts
    properties:
      - {from: name, to: Name, type: string}
"""


def test_validate_refuses_a_ref_field_with_what_to_do(tmp_path: Path) -> None:
    from samband.config.validate import validate_file

    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.replace("REF", "Remark"), encoding="utf-8")
    errors = [p for p in validate_file(path) if p.severity == "error"]
    assert len(errors) == 1, errors
    assert "Remark" in errors[0].message and "crm/Accounts" in errors[0].message
    assert "merge criteria" in (errors[0].hint or "")
    path.write_text(CONFIG.replace("REF", "Remarks"), encoding="utf-8")
    assert [p for p in validate_file(path) if p.severity == "error"] == []
