"""The Exact Online connector against its sandbox over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from samband.config.model import EntityTypeConfig
from samband.errors import ConnectorError, InUse, NotFound, RecordError
from samband.kinds.exact_online.connector._dates import VENDOR_TZ, format_ms_date, parse_ms_date
from samband.kinds.exact_online.sandbox import ExactOnlineSandbox
from samband.sandbox._base import Clock, SandboxServer
from samband.secrets import TokenStore
from samband.types import DataType, coerce
from tests.support.exact import make_connector, read_all, serve


@pytest.fixture(autouse=True)
def _token_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMBAND_TOKEN_KEY", Fernet.generate_key().decode())


@pytest.fixture
def box() -> ExactOnlineSandbox:
    sandbox = ExactOnlineSandbox(
        clock=Clock(), sync_page_size=50, page_size=7, minutely_limit=100_000, daily_limit=100_000
    )
    sandbox.seed(130, 3)
    return sandbox


@pytest.fixture
def server(box: ExactOnlineSandbox) -> Iterator[SandboxServer]:
    running = serve(box)
    yield running
    running.stop()


def test_division_from_current_me(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    connector = make_connector(box, server, tmp_path, division=False)
    connector.check()
    assert connector.division == box.division


def test_sync_read_pages_via_next_then_incremental_with_deletes(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    connector = make_connector(box, server, tmp_path)
    pages, records, cursor = read_all(connector, "Accounts")
    assert len([p for p in pages if p.records and not p.records[0].deleted]) == 3  # 50+50+30
    assert len({r.id for r in records if not r.deleted}) == 130
    assert all(r.modified is not None and r.modified.tzinfo for r in records if not r.deleted)

    edited = next(iter(box.tables["crm/Accounts"]))
    box.edit("crm/Accounts", edited, {"City": "Zwolle"})
    gone = list(box.tables["crm/Accounts"])[5]
    for other in ("crm/Contacts", "project/Projects", "salesorder/SalesOrders"):
        for key, row in list(box.tables[other].items()):
            if gone in (row.get("Account"), row.get("OrderedBy")):
                box.remove(other, key)
    box.remove("crm/Accounts", gone)
    created = box.insert("crm/Accounts", {"Name": "Nieuw B.V."})

    _, changes, next_cursor = read_all(connector, "Accounts", cursor)
    assert {r.id for r in changes if not r.deleted} == {edited, created["ID"]}
    assert [r.id for r in changes if r.deleted] == [gone]
    assert next(r for r in changes if r.id == edited).data["City"] == "Zwolle"
    # nothing changed since: no records, the cursor stays put
    _, again, same_cursor = read_all(connector, "Accounts", next_cursor)
    assert again == []
    assert json.loads(same_cursor) == json.loads(next_cursor)


def test_select_asks_only_for_wanted_fields(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    seen: list[str] = []

    class Recording(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request.url.params.get("$select", ""))
            return super().handle_request(request)

    connector = make_connector(box, server, tmp_path, transport=Recording())
    connector.wanted_fields["Accounts"] = {"Name", "City"}
    _, records, _ = read_all(connector, "Accounts")
    first = next(r for r in records if not r.deleted)
    assert set(first.data) == {"ID", "Name", "City", "Modified"}
    assert seen[0] == "ID,City,Modified,Name,Timestamp"


def test_modified_filter_pages_and_overlap_for_departments(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    connector = make_connector(box, server, tmp_path)
    pages, records, cursor = read_all(connector, "Departments")
    assert len(pages) == 3 and len(records) == 20  # pages of 7 on CRUD endpoints
    assert cursor is not None
    keys = list(box.tables["hrm/Departments"])
    box.clock.advance(60)
    box.edit("hrm/Departments", keys[0], {"Description": "Inkoop"})
    _, changed, cursor = read_all(connector, "Departments", cursor)
    # the window overlaps the cursor by overlap_seconds: records of the same moment
    # come again (the engine's hashes drop them), the edit is there
    assert next(r for r in changed if r.id == keys[0]).data["Description"] == "Inkoop"
    box.clock.advance(60)
    box.edit("hrm/Departments", keys[1], {"Description": "Verkoop"})
    _, changed, _ = read_all(connector, "Departments", cursor)
    assert {r.id for r in changed} == {keys[0], keys[1]}  # 60 s apart: only the overlap
    box.clock.advance(60)
    _, changed, _ = read_all(connector, "Departments", cursor)
    assert keys[1] in {r.id for r in changed} and len(changed) <= 2
    divisions = connector.describe(connector.config)["Divisions"]
    assert divisions.read_only and connector.entity_type("Departments").read_only
    with pytest.raises(RecordError, match="read-only"):
        connector.update("Departments", keys[0], {"Description": "x"})


def test_full_scan_setting(box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path) -> None:
    connector = make_connector(
        box,
        server,
        tmp_path,
        entity_types={"Divisions": EntityTypeConfig(full_scan=True)},
    )
    assert not connector.entity_type("Divisions").incremental
    _, records, cursor = read_all(connector, "Divisions")
    assert cursor is None
    assert sorted(r.id for r in records) == sorted(box.tables["hrm/Divisions"])
    assert records[0].data["Code"] == int(records[0].id)


def test_dates_are_vendor_wall_clock_time(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    # the wire value is the Amsterdam wall-clock time counted as if it were UTC
    winter = datetime(2024, 1, 15, 9, 0, tzinfo=UTC)  # 10:00 in Amsterdam
    assert format_ms_date(winter) == "/Date(1705312800000)/"
    parsed = parse_ms_date("/Date(1705312800000)/")
    assert parsed is not None and parsed.astimezone(UTC) == winter
    summer = datetime(2024, 7, 1, 8, 30, tzinfo=UTC)  # 10:30 CEST
    wire = format_ms_date(summer)
    again = parse_ms_date(wire)
    assert again is not None and again.astimezone(UTC) == summer

    connector = make_connector(box, server, tmp_path)
    account = connector.create("Accounts", {"Name": "Datum B.V.", "StartDate": date(2024, 7, 1)})
    stored = box.tables["crm/Accounts"][account.id]
    assert stored["StartDate"] == datetime(2024, 7, 1, tzinfo=VENDOR_TZ)
    assert account.data["StartDate"] == "2024-07-01T00:00:00+02:00"
    assert coerce(account.data["StartDate"], DataType.DATE) == date(2024, 7, 1)
    assert account.modified is not None
    assert abs((account.modified - stored["Modified"]).total_seconds()) < 0.001  # ms on the wire
    modified = coerce(account.data["Modified"], DataType.DATETIME)
    assert abs((modified - stored["Modified"]).total_seconds()) < 0.001
    connector.update("Accounts", account.id, {"StartDate": date(2025, 1, 2)})
    fetched = connector.get("Accounts", account.id)
    assert fetched is not None
    assert coerce(fetched.data["StartDate"], DataType.DATE) == date(2025, 1, 2)


def test_account_codes_are_padded_on_write_and_trimmed_on_read(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    connector = make_connector(box, server, tmp_path)
    account = connector.create("Accounts", {"Name": "Code B.V.", "Code": "4711"})
    assert box.tables["crm/Accounts"][account.id]["Code"] == " " * 14 + "4711"
    assert account.data["Code"] == "4711"
    connector.update("Accounts", account.id, {"Code": "4712"})
    assert box.tables["crm/Accounts"][account.id]["Code"] == " " * 14 + "4712"
    fetched = connector.get("Accounts", account.id)
    assert fetched is not None and fetched.data["Code"] == "4712"
    with pytest.raises(RecordError, match="18"):
        connector.create("Accounts", {"Name": "Long", "Code": "x" * 19})


def test_writes_post_put_delete(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    methods: list[tuple[str, str, int]] = []

    class Recording(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = super().handle_request(request)
            if request.method != "GET":
                body = request.content.decode()
                methods.append(
                    (request.method, request.headers.get("Prefer", ""), response.status_code)
                )
                if request.method == "PUT":
                    assert json.loads(body) == {"City": "Delft"}
            return response

    connector = make_connector(box, server, tmp_path, transport=Recording())
    created = connector.create(
        "Accounts", {"Name": "Schrijf B.V.", "City": "Leiden", "Email": "info@schrijf.nl"}
    )
    assert created.data["Name"] == "Schrijf B.V." and created.data["City"] == "Leiden"
    assert connector.update("Accounts", created.id, {"City": "Delft"}) is None
    assert box.tables["crm/Accounts"][created.id]["City"] == "Delft"
    assert box.tables["crm/Accounts"][created.id]["Email"] == "info@schrijf.nl"
    connector.delete("Accounts", created.id)
    assert created.id not in box.tables["crm/Accounts"]
    assert connector.get("Accounts", created.id) is None
    assert methods == [
        ("POST", "return=representation", 201),
        ("PUT", "", 204),
        ("DELETE", "", 204),
    ]


def test_items_stamp_and_find_the_external_ref(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    connector = make_connector(box, server, tmp_path)
    assert connector.entity_type("Items").external_ref_field == "FreeTextField_10"
    item = connector.create(
        "Items", {"Code": "X-1", "Description": "Schroef"}, external_ref="crm:Product:9"
    )
    found = connector.find_by_external_ref("Items", "crm:Product:9")
    assert found is not None and found.id == item.id
    assert connector.find_by_external_ref("Items", "crm:Product:it's") is None
    assert connector.find_by_external_ref("Accounts", "x") is None


def test_sales_orders_with_lines(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    connector = make_connector(box, server, tmp_path)
    account = next(iter(box.tables["crm/Accounts"]))
    item = next(iter(box.tables["logistics/Items"]))
    order = connector.create(
        "SalesOrders",
        {"OrderedBy": account, "SalesOrderLines": [{"Item": item, "Quantity": 3}]},
    )
    lines = [
        r for r in box.tables["salesorder/SalesOrderLines"].values() if r["OrderID"] == order.id
    ]
    assert len(lines) == 1 and lines[0]["Quantity"] == 3.0
    assert [line["Item"] for line in order.data["SalesOrderLines"]] == [item]
    assert "__metadata" not in order.data["SalesOrderLines"][0]
    with pytest.raises(RecordError, match="Mandatory: SalesOrderLines"):
        connector.create("SalesOrders", {"OrderedBy": account})
    _, line_records, _ = read_all(connector, "SalesOrderLines")
    assert order.id in {r.data.get("OrderID") for r in line_records}


def test_error_messages_carry_exacts_text_and_no_secrets(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    connector = make_connector(box, server, tmp_path)
    with pytest.raises(RecordError) as caught:
        connector.create("Accounts", {"City": "Zonder naam"})
    message = str(caught.value)
    assert f"POST {box.division}/crm/Accounts: 400" in message and "Mandatory: Name" in message
    token = TokenStore("exact", tmp_path).load()
    assert token is not None and token["access_token"] not in message
    account = next(
        k
        for k, r in box.tables["crm/Accounts"].items()
        if any(c.get("Account") == k for c in box.tables["crm/Contacts"].values())
    )
    with pytest.raises(InUse, match="in use"):
        connector.delete("Accounts", account)
    with pytest.raises(NotFound):
        connector.delete("Accounts", "00000000-0000-4000-8000-000000000000")


def test_breaker_stops_before_exact_blocks_the_endpoint(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    connector = make_connector(box, server, tmp_path)
    missing = "00000000-0000-4000-8000-00000000dead"
    for _ in range(8):
        with pytest.raises(NotFound):
            connector.update("Accounts", missing, {"City": "X"})
    calls = box.api_calls
    with pytest.raises(ConnectorError) as caught:
        connector.update("Accounts", missing, {"City": "X"})
    assert "crm/Accounts" in str(caught.value) and "10 an hour" in str(caught.value)
    assert box.api_calls == calls  # the refused call was not sent
    assert len(box.endpoint_errors["crm/Accounts"]) == 8
    assert "crm/Accounts" not in box.blocked_until
    # other endpoints go on; after an hour the endpoint is usable again
    assert connector.get("Contacts", missing) is None
    box.clock.advance(3601)
    assert connector.get("Accounts", missing) is None


def test_every_api_call_uses_a_token_already_on_disk(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    """Rotation: the access token in each request is the one stored — so the refresh
    token stored beside it is the newest, whatever crash follows the request."""
    checked: list[bool] = []

    class Checking(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if "/api/v1/" in request.url.path:
                stored = TokenStore("exact", tmp_path).load() or {}
                bearer = request.headers["Authorization"].removeprefix("Bearer ")
                checked.append(stored.get("access_token") == bearer)
                assert stored.get("refresh_token") in box.refresh_tokens
            return super().handle_request(request)

    connector = make_connector(box, server, tmp_path, transport=Checking())
    key = next(iter(box.tables["crm/Accounts"]))
    for _ in range(3):
        assert connector.get("Accounts", key) is not None
        box.clock.advance(600)  # the access token expires: the next call refreshes
    assert box.token_requests == 2
    assert checked == [True, True, True]


def test_reads_survive_injected_faults(tmp_path: Path) -> None:
    box = ExactOnlineSandbox(
        clock=Clock(speed=50.0), sync_page_size=10, minutely_limit=100_000, daily_limit=100_000
    )
    box.seed(60, 4)
    running = serve(box)
    try:
        connector = make_connector(box, running, tmp_path)
        box.faults.update(
            error_rate=0.2,
            truncate_rate=0.1,
            html_rate=0.1,
            throttle_rate=0.1,
            reset_rate=0.05,
            seed=3,
        )
        records = [r for page in connector.read("Accounts", None) for r in page.records]
        assert len({r.id for r in records if not r.deleted}) == 60
        assert connector.stats.retries > 0
        assert sum(box.faults.injected.values()) == connector.stats.retries
    finally:
        running.stop()


class _Recording(httpx.HTTPTransport):
    """A transport that keeps the path of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


def test_deletions_are_read_once_a_run_per_sync_type(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    """``sync/Deleted`` is read with one ``EntityType eq N`` per call (Exact refuses a
    filter joining types with ``or``): once a run per Sync API type, and no deletion is
    missed."""
    transport = _Recording()
    connector = make_connector(box, server, tmp_path, transport=transport)
    connector.wanted_fields.update({"Accounts": {"Name"}, "Contacts": {"FirstName"}})

    def run(cursors: dict[str, str | None]) -> dict[str, set[str]]:
        """One run's reads of both types: the ids each reported deleted."""
        transport.paths.clear()
        deleted: dict[str, set[str]] = {}
        for etype in ("Accounts", "Contacts"):
            _, records, cursors[etype] = read_all(connector, etype, cursors[etype])
            deleted[etype] = {r.id for r in records if r.deleted}
        return deleted

    account = box.insert("crm/Accounts", {"Name": "Weg B.V."})["ID"]
    cursors: dict[str, str | None] = {"Accounts": None, "Contacts": None}
    run(cursors)
    assert sum(path.endswith("/sync/Deleted") for path in transport.paths) == 2

    contact = next(iter(box.tables["crm/Contacts"]))
    box.remove("crm/Accounts", account)
    box.remove("crm/Contacts", contact)
    assert run(cursors) == {"Accounts": {account}, "Contacts": {contact}}
    assert sum(path.endswith("/sync/Deleted") for path in transport.paths) == 2

    # the next run reads the feed again: a deletion after the last run is seen
    second = next(key for key in box.tables["crm/Contacts"] if key != contact)
    box.remove("crm/Contacts", second)
    assert run(cursors) == {"Accounts": set(), "Contacts": {second}}
    assert sum(path.endswith("/sync/Deleted") for path in transport.paths) == 2

    # a type whose cursor is behind the feed reads it again, from its own cursor
    _, records, _ = read_all(connector, "Accounts", None)
    assert account in {r.id for r in records if r.deleted}
    assert run(cursors) == {"Accounts": set(), "Contacts": set()}
