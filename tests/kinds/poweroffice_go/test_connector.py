"""PowerOffice GO connector against its sandbox: reads, changes, writes, errors."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from samband.config.model import SystemConfig
from samband.errors import AuthError, InUse, NotFound, RecordError, TransientError
from samband.kinds.poweroffice_go.connector import (
    PowerOfficeConnector,
    derive_token_url,
    external_value,
)
from samband.kinds.poweroffice_go.connector._auth import PowerOfficeAuth
from samband.kinds.poweroffice_go.connector._types import API_TYPES
from samband.kinds.poweroffice_go.sandbox import PatchError, PowerOfficeSandbox, apply_patch
from samband.sandbox._base import SandboxServer
from tests.support.poweroffice import KEYS, serve

FAST = 1000  # requests/second for tests that are not about the limit


@pytest.fixture
def box() -> PowerOfficeSandbox:
    sandbox = PowerOfficeSandbox(rate_limit=FAST)
    sandbox.seed(6, 7)
    # everything seeded is a minute old, out of the read overlap
    sandbox.clock.advance(60)
    sandbox.recording = True
    return sandbox


def make(
    server: SandboxServer,
    credentials: dict[str, str] | None = None,
    overlap: float = 5.0,
    **settings: Any,
) -> PowerOfficeConnector:
    settings.setdefault("rate_limit", FAST)
    config = SystemConfig.model_validate(
        {"kind": "poweroffice-go", "base_url": f"{server.url}/v2", **settings}
    )
    return PowerOfficeConnector("po", config, credentials or KEYS, overlap_seconds=overlap)


@pytest.fixture
def po(server: SandboxServer) -> Iterator[PowerOfficeConnector]:
    connector = make(server)
    yield connector
    connector.close()


def read_all(connector: PowerOfficeConnector, name: str, cursor: str | None = None):
    pages = list(connector.read(name, cursor))
    records = [r for page in pages for r in page.records]
    cursors = [page.cursor for page in pages if page.cursor]
    return records, (cursors[-1] if cursors else cursor)


def api_log(box: PowerOfficeSandbox, method: str = "GET", path: str = ""):
    return [e for e in box.log if e.method == method and e.path.startswith("/v2" + path)]


# -- reading ------------------------------------------------------------------------------
def test_first_read_takes_one_call_per_page_plus_the_token(server: SandboxServer) -> None:
    box = PowerOfficeSandbox(rate_limit=FAST)
    box.seed(250, 3, only=("Customers",))
    box.recording = True
    running = serve(box)
    try:
        connector = make(running, page_size=100)
        records, cursor = read_all(connector, "Customers")
        assert len(records) == 250 == len({r.id for r in records})
        assert connector.stats.api_calls <= math.ceil(250 / 100) + 1
        calls = api_log(box, path="/Customers")
        assert len(calls) == 3  # no call for a page after the last
        # keyset paging: each next page starts at the last timestamp read
        assert "lastChangedDateTimeOffsetGreaterThan" not in calls[0].params
        assert all("lastChangedDateTimeOffsetGreaterThan" in c.params for c in calls[1:])
        assert all(c.params["OrderBy"] == "LastChangedDateTimeOffset" for c in calls)
        assert cursor is not None and cursor.startswith("20")
    finally:
        running.stop()


def test_records_edited_or_deleted_during_a_read_shift_nothing_out_of_sight() -> None:
    box = PowerOfficeSandbox(rate_limit=FAST)
    box.seed(12, 3, only=("Customers",))
    running = serve(box)
    try:
        connector = make(running, page_size=4)
        ids = list(box.records("Customers"))
        pages = connector.read("Customers", None)
        first = next(pages)
        assert [r.id for r in first.records] == [str(i) for i in ids[:4]]
        # while the read goes on, a user edits a record already read and deletes one
        box.edit("Customers", ids[1], {"Name": "Endret underveis AS"})
        box.remove("Customers", ids[2])
        rest = [r.id for page in pages for r in page.records]
        seen = {r.id for r in first.records} | set(rest)
        assert {str(i) for i in ids[3:]} <= seen  # with offset paging one would be lost
        assert rest[-1] == str(ids[1])  # the edited one comes again, at the end
    finally:
        running.stop()


def test_fields_lists_only_what_the_dataflows_use(
    po: PowerOfficeConnector, box: PowerOfficeSandbox
) -> None:
    po.wanted_fields["Customers"] = {"name", "PhoneNumber"}  # camelCase is accepted
    records, _ = read_all(po, "Customers")
    fields = api_log(box, path="/Customers")[-1].params["Fields"].split(",")
    assert set(fields) == {
        "Id",
        "LastChangedDateTimeOffset",
        "Name",
        "PhoneNumber",
        "ExternalImportReference",
    }
    assert records and all(set(r.data) == set(fields) for r in records)


def test_every_declared_field_is_asked_for_without_wanted_fields(
    po: PowerOfficeConnector, box: PowerOfficeSandbox
) -> None:
    records, _ = read_all(po, "Projects")
    fields = set(api_log(box, path="/Projects")[-1].params["Fields"].split(","))
    assert {"CustomerId", "Name", "Code", "ExternalNumber", "StartDate"} <= fields
    assert records[0].data["CustomerId"] in box.records("Customers")


def test_an_empty_list_is_204_and_an_empty_page(server: SandboxServer) -> None:
    box = PowerOfficeSandbox(rate_limit=FAST)
    box.recording = True
    running = serve(box)
    try:
        connector = make(running)
        pages = list(connector.read("Departments", None))
        assert [p.records for p in pages] == [[]]
        assert api_log(box, path="/Departments")[0].status == 204
    finally:
        running.stop()


def test_change_filter_returns_only_what_changed(
    server: SandboxServer, box: PowerOfficeSandbox
) -> None:
    po = make(server, overlap=0)
    po.wanted_fields["Customers"] = {"Name"}
    first, cursor = read_all(po, "Customers")
    assert len(first) == 6
    box.clock.advance(30)
    changed = next(iter(box.records("Customers")))
    box.edit("Customers", changed, {"Name": "Endret AS"})
    again, new_cursor = read_all(po, "Customers", cursor)
    assert [(r.id, r.data["Name"]) for r in again] == [(str(changed), "Endret AS")]
    last = api_log(box, path="/Customers")[-1].params
    assert "lastChangedDateTimeOffsetGreaterThan" in last
    assert last["OrderBy"] == "LastChangedDateTimeOffset"
    assert new_cursor is not None and new_cursor > cursor
    # nothing changed since: the next read is empty
    assert read_all(po, "Customers", new_cursor)[0] == []
    # with the usual overlap, the read window reaches back a little (hashes keep it exact)
    overlapping = make(server, overlap=5)
    overlapping.wanted_fields["Customers"] = {"Name"}
    assert [r.id for r in read_all(overlapping, "Customers", new_cursor)[0]] == [str(changed)]


def test_address_edits_do_not_move_the_contact_so_addresses_are_scanned(
    po: PowerOfficeConnector, box: PowerOfficeSandbox
) -> None:
    po.wanted_fields["Customers"] = {"Name", "MailAddress.City"}
    _, cursor = read_all(po, "Customers")
    box.clock.advance(30)
    customer_id = next(iter(box.records("Customers")))
    before = box.records("Customers")[customer_id]["LastChangedDateTimeOffset"]
    box.edit("Customers", customer_id, {"MailAddress.City": "Tromsø"})
    # as in PowerOffice GO: the customer's own timestamp did not move
    assert box.records("Customers")[customer_id]["LastChangedDateTimeOffset"] == before
    again, _ = read_all(po, "Customers", cursor)
    assert "lastChangedDateTimeOffsetGreaterThan" not in api_log(box, path="/Customers")[-1].params
    seen = {r.id: r for r in again}
    assert seen[str(customer_id)].data["MailAddress"]["City"] == "Tromsø"
    assert seen[str(customer_id)].modified is not None
    assert seen[str(customer_id)].modified.isoformat() > before[:19]


def test_an_edited_contact_person_is_seen_through_its_own_change_filter(
    server: SandboxServer, box: PowerOfficeSandbox
) -> None:
    po = make(server, overlap=0)
    first, cursor = read_all(po, "Contactperson")
    assert len(first) == 6 and all(r.data["ContactId"] for r in first)
    box.clock.advance(30)
    person_id = next(iter(box.records("ContactPersons")))
    parent = box.records("ContactPersons")[person_id]["ContactId"]
    owner = box.records("Customers").get(parent) or box.records("Suppliers")[parent]
    parent_stamp = owner["LastChangedDateTimeOffset"]
    box.edit("ContactPersons", person_id, {"PhoneNumber": "+47 900 00 000"})
    again, _ = read_all(po, "Contactperson", cursor)
    assert [(r.id, r.data["PhoneNumber"]) for r in again] == [(str(person_id), "+47 900 00 000")]
    assert "lastChangedDateTimeOffsetGreaterThan" in api_log(box, path="/ContactPersons")[-1].params
    assert owner["LastChangedDateTimeOffset"] == parent_stamp  # the parent did not move


def test_suppliers_person_are_the_suppliers_that_are_persons(
    po: PowerOfficeConnector, box: PowerOfficeSandbox
) -> None:
    records, _ = read_all(po, "Suppliers person")
    persons = [s for s in box.records("Suppliers").values() if s["IsPerson"]]
    assert len(records) == len(persons) == 2
    assert all(r.data["IsPerson"] is True and r.data["FirstName"] for r in records)
    created = po.create(
        "Suppliers person",
        {"firstName": "Kari", "lastName": "Nordmann", "EmailAddress": "kari@example.no"},
        "crm:Person:9",
    )
    stored = box.records("Suppliers")[int(created.id)]
    assert stored["IsPerson"] is True and stored["FirstName"] == "Kari"
    assert stored["ExternalImportReference"] == "crm:Person:9"
    # a supplier that is a company is not a "Suppliers person"
    company = next(s for s in box.records("Suppliers").values() if not s["IsPerson"])
    assert po.get("Suppliers person", str(company["Id"])) is None
    assert po.get("Suppliers", str(company["Id"])) is not None


def test_activity_paths_come_from_the_type_settings(
    server: SandboxServer, box: PowerOfficeSandbox
) -> None:
    connector = make(
        server, entity_types={"Timetrackingactivity": {"path": "TimeTracking/ActivityTime/"}}
    )
    records, _ = read_all(connector, "Timetrackingactivity")
    assert len(records) == 6 and records[0].data["Name"]
    assert api_log(box, path="/TimeTracking/ActivityTime")
    wrong = make(server, entity_types={"Projectactivity": {"path": "/Nowhere"}})
    with pytest.raises(NotFound):
        read_all(wrong, "Projectactivity")


def test_entity_types_declare_schemas_refs_and_archive_flags() -> None:
    types = PowerOfficeConnector.describe(SystemConfig(kind="poweroffice-go"))
    assert set(types) == set(API_TYPES)
    customers = types["Customers"]
    assert customers.modified_field == "LastChangedDateTimeOffset"
    assert customers.external_ref_field == "ExternalImportReference"
    assert customers.archive == ("IsArchived", True)
    assert customers.canonical("mailaddress.City") == "MailAddress.City"
    assert customers.property("MailAddress.City") is not None
    assert types["Contactperson"].external_ref_field == "ExternalCode"
    assert types["Contactperson"].canonical("firstName") == "FirstName"
    assert types["Projects"].external_ref_field == "ExternalNumber"
    assert types["Product"].external_ref_field is None
    assert types["Departments"].external_ref_field is None
    assert types["Timetrackingactivity"].archive == ("IsActive", False)
    full = PowerOfficeConnector.describe(
        SystemConfig.model_validate(
            {"kind": "poweroffice-go", "entity_types": {"Customers": {"full_scan": True}}}
        )
    )
    assert full["Customers"].incremental is False


# -- writing ------------------------------------------------------------------------------
def test_update_sends_a_json_patch_of_the_changed_properties_only(
    po: PowerOfficeConnector, box: PowerOfficeSandbox
) -> None:
    customer_id = next(iter(box.records("Customers")))
    result = po.update(
        "Customers", str(customer_id), {"Name": "Nytt Navn AS", "mailAddress.City": "Bodø"}
    )
    patch = api_log(box, "PATCH")[-1]
    assert patch.request_headers["content-type"] == "application/json-patch+json"
    import orjson

    assert orjson.loads(patch.request_body) == [
        {"op": "replace", "path": "/Name", "value": "Nytt Navn AS"},
        {"op": "add", "path": "/MailAddress/City", "value": "Bodø"},
    ]
    assert result is not None and result.data["MailAddress"]["City"] == "Bodø"
    assert box.records("Customers")[customer_id]["Name"] == "Nytt Navn AS"


def test_delete_in_use_raises_in_use_and_archive_flags_it(
    po: PowerOfficeConnector, box: PowerOfficeSandbox
) -> None:
    used = next(p["CustomerId"] for p in box.records("Projects").values())
    with pytest.raises(InUse) as caught:
        po.delete("Customers", str(used))
    assert "in use" in str(caught.value) and "project" in str(caught.value)
    archived = po.archive("Customers", str(used))
    assert archived is not None and archived.data["IsArchived"] is True
    assert box.records("Customers")[used]["IsActive"] is False
    fresh = po.create("Customers", {"Name": "Kortvarig AS"}, "crm:Customer:77")
    po.delete("Customers", fresh.id)
    assert po.get("Customers", fresh.id) is None
    with pytest.raises(NotFound):
        po.delete("Customers", fresh.id)
    department = po.create("Departments", {"Name": "Ny", "Code": "900"})
    assert po.archive("Departments", department.id).data["IsActive"] is False  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "values", "ref"),
    [
        ("Customers", {"Name": "Avbrutt AS"}, "crm:Customer:41"),
        ("Contactperson", {"FirstName": "Ola", "LastName": "Avbrutt"}, "crm:Contact:41"),
        ("Projects", {"Name": "Avbrutt prosjekt"}, "pms:Project:41"),
        ("Salesorders", {"SalesOrderDate": "2025-03-01"}, "crm:Order:41"),
        ("Employees", {"FirstName": "Eva", "LastName": "Avbrutt"}, "hr:Employee:41-" + "x" * 60),
    ],
)
def test_an_interrupted_create_is_found_by_its_external_reference(
    po: PowerOfficeConnector, box: PowerOfficeSandbox, name: str, values: dict[str, Any], ref: str
) -> None:
    customer = next(iter(box.records("Customers")))
    if name in ("Contactperson", "Projects", "Salesorders"):
        values = {
            ("ContactId" if name == "Contactperson" else "CustomerId"): str(customer),
            **values,
        }
    assert po.find_by_external_ref(name, ref) is None
    box.faults.update(reset_rate=1.0)
    with pytest.raises(TransientError):
        po.create(name, values, ref)
    box.faults.update(reset_rate=0.0)
    found = po.find_by_external_ref(name, ref)
    assert found is not None
    field = API_TYPES[name].external_ref_field
    assert found.data[field] == external_value(API_TYPES[name], ref)
    if isinstance(found.data[field], str):
        assert len(found.data[field]) <= 50
    collection = {"Contactperson": "ContactPersons", "Salesorders": "SalesOrders"}.get(name, name)
    key = found.id if name == "Salesorders" else int(found.id)
    assert key in box.records(collection)


def test_sales_orders_are_created_complete_and_their_lines_read_when_mapped(
    po: PowerOfficeConnector, box: PowerOfficeSandbox
) -> None:
    customer = next(iter(box.records("Customers")))
    product = next(iter(box.records("Products").values()))
    order = po.create(
        "Salesorders",
        {
            "CustomerId": str(customer),
            "SalesOrderLines": [{"ProductId": str(product["Id"]), "Quantity": 3}],
        },
        "crm:Order:5",
    )
    assert api_log(box, "POST", "/SalesOrders/Complete")
    assert order.data["LineCount"] == 1
    po.wanted_fields["Salesorders"] = {"CustomerId", "SalesOrderLines"}
    got = po.get("Salesorders", order.id)
    assert got is not None and got.data["SalesOrderLines"][0]["Quantity"] == 3
    po.update(
        "Salesorders", order.id, {"SalesOrderLines": [{"ProductId": product["Id"], "Quantity": 5}]}
    )
    lines = list(box.lines[order.id].values())
    assert [line["Quantity"] for line in lines] == [5]


def test_contact_person_of_an_unknown_contact_needs_a_contact_id(po: PowerOfficeConnector) -> None:
    with pytest.raises(RecordError, match="ContactId"):
        po.create("Contactperson", {"FirstName": "A", "LastName": "B"}, "x")


def test_contact_person_update_after_restart_finds_its_contact(
    server: SandboxServer, box: PowerOfficeSandbox
) -> None:
    person_id = next(iter(box.records("ContactPersons")))
    connector = make(server)  # a new process: it has read nothing
    connector.update("Contactperson", str(person_id), {"Title": "Daglig leder"})
    assert box.records("ContactPersons")[person_id]["Title"] == "Daglig leder"
    with pytest.raises(NotFound):
        connector.update("Contactperson", "999999", {"Title": "x"})
    owner = box.records("ContactPersons")[person_id]["ContactId"]
    connector.update("Contactperson", str(person_id), {"ContactId": str(owner), "Title": "CEO"})
    other = next(c for c in box.records("Customers") if c != owner)
    with pytest.raises(RecordError, match="cannot move it"):
        connector.update("Contactperson", str(person_id), {"ContactId": str(other)})


# -- errors, auth, limits ---------------------------------------------------------------------
@pytest.mark.parametrize("case", ["pascal", "camel"])
def test_problem_details_are_surfaced_with_title_and_detail(case: str) -> None:
    box = PowerOfficeSandbox(rate_limit=FAST, problem_case=case)
    running = serve(box)
    try:
        connector = make(running)
        connector.create("Customers", {"Name": "En AS"}, "crm:Customer:1")
        with pytest.raises(RecordError) as caught:
            connector.create("Customers", {"Name": "To AS"}, "crm:Customer:1")
        message = str(caught.value)
        assert "Customer validation error(s)" in message
        assert "ExternalImportReference is already in use" in message
        assert "POST /Customers: 400" in message
        with pytest.raises(NotFound, match="Customer with id = 123 not found"):
            connector.create("Projects", {"Name": "P", "CustomerId": "123"})
    finally:
        running.stop()


@pytest.mark.parametrize("wrong", ["client_key", "subscription_key"])
def test_wrong_keys_raise_auth_error_without_the_keys(server: SandboxServer, wrong: str) -> None:
    credentials = {**KEYS, wrong: "not-the-right-secret-4711"}
    connector = make(server, credentials=credentials)
    with pytest.raises(AuthError) as caught:
        connector.check()
    message = str(caught.value)
    assert "po" in message
    for secret in credentials.values():
        assert secret not in message


def test_missing_credentials_are_named() -> None:
    with pytest.raises(AuthError, match="client_key"):
        PowerOfficeConnector(
            "po",
            SystemConfig(kind="poweroffice-go"),
            {"application_key": "a", "subscription_key": "s"},
        )


def test_token_urls_are_derived_from_the_base_url() -> None:
    assert derive_token_url("https://goapi.poweroffice.net/v2") == (
        "https://goapi.poweroffice.net/OAuth/Token"
    )
    assert derive_token_url("https://goapi.poweroffice.net/Demo/v2/") == (
        "https://goapi.poweroffice.net/Demo/OAuth/Token"
    )


def test_one_token_per_process_and_key_set_even_under_concurrency(
    server: SandboxServer, box: PowerOfficeSandbox
) -> None:
    connectors = [make(server) for _ in range(2)]
    barrier = threading.Barrier(8)
    tokens: list[str] = []

    def take(index: int) -> None:
        barrier.wait()
        tokens.append(connectors[index % 2].auth.token())

    threads = [threading.Thread(target=take, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(tokens)) == 1 and box.tokens_issued == 1


def test_the_token_is_renewed_a_minute_before_it_expires(server: SandboxServer) -> None:
    now = [1000.0]
    auth = PowerOfficeAuth(
        "po",
        f"{server.url}/OAuth/Token",
        KEYS["application_key"],
        KEYS["client_key"],
        KEYS["subscription_key"],
        clock=lambda: now[0],
    )
    first = auth.token()
    now[0] += 1200 - 61
    assert auth.token() == first
    now[0] += 2  # 59 s left: renew
    assert auth.token() != first and auth.renewals == 2
    auth.close()


def test_the_client_limiter_keeps_calls_under_ten_a_second(server: SandboxServer) -> None:
    box = PowerOfficeSandbox()  # the real limit: 10/s
    box.seed(3, 1, only=("Departments",))
    running = serve(box)
    try:
        connector = make(running, rate_limit=10)
        for _ in range(14):
            connector.get("Departments", str(next(iter(box.records("Departments")))))
        assert box.throttled == 0
        assert connector.stats.throttled == 0
    finally:
        running.stop()


def test_a_burst_over_the_limit_is_retried_after_retry_after(server: SandboxServer) -> None:
    box = PowerOfficeSandbox(rate_limit=4)
    box.seed(2, 1, only=("Departments",))
    running = serve(box)
    try:
        connector = make(running, rate_limit=FAST)  # no client pacing: the server refuses
        for _ in range(6):
            assert connector.get("Departments", str(next(iter(box.records("Departments")))))
        assert box.throttled >= 1 and connector.stats.throttled >= 1
    finally:
        running.stop()


# -- the sandbox's JSON Patch --------------------------------------------------------------
def test_json_patch_has_all_six_operations() -> None:
    doc = {"Name": "A", "MailAddress": {"City": "Oslo"}, "Tags": ["x"]}
    out = apply_patch(
        doc,
        [
            {"op": "test", "path": "/Name", "value": "A"},
            {"op": "replace", "path": "/name", "value": "B"},
            {"op": "add", "path": "/MailAddress/ZipCode", "value": "0150"},
            {"op": "copy", "from": "/MailAddress/City", "path": "/Tags/-"},
            {"op": "move", "from": "/Tags/0", "path": "/Tags/1"},
            {"op": "remove", "path": "/MailAddress/City"},
        ],
    )
    assert out == {"Name": "B", "MailAddress": {"ZipCode": "0150"}, "Tags": ["Oslo", "x"]}
    assert doc["Name"] == "A"  # the original is untouched
    for bad in (
        [{"op": "test", "path": "/Name", "value": "Z"}],
        [{"op": "remove", "path": "/Nope"}],
        [{"op": "replace", "path": "/Nope/X", "value": 1}],
        [{"op": "move", "from": "/MailAddress", "path": "/MailAddress/Inner"}],
        [{"op": "jump", "path": "/Name"}],
        {"op": "add"},
    ):
        with pytest.raises(PatchError):
            apply_patch(doc, bad)


def test_sandbox_refuses_read_only_and_unknown_properties(
    server: SandboxServer, box: PowerOfficeSandbox, po: PowerOfficeConnector
) -> None:
    customer_id = next(iter(box.records("Customers")))
    headers = {
        **po.auth.headers(),
        "Ocp-Apim-Subscription-Key": KEYS["subscription_key"],
        "Content-Type": "application/json-patch+json",
    }
    url = f"{server.url}/v2/Customers/{customer_id}"
    for patch, detail in (
        ([{"op": "replace", "path": "/Id", "value": 1}], "Id is read-only"),
        ([{"op": "add", "path": "/Bogus", "value": 1}], "Unknown property"),
        ([{"op": "test", "path": "/Name", "value": "nope"}], "test failed"),
    ):
        answer = httpx.patch(url, json=patch, headers=headers)
        assert answer.status_code == 400 and detail in answer.json()["Detail"]
    answer = httpx.patch(
        url,
        json=[{"op": "replace", "path": "/Name", "value": "x"}],
        headers={**headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 415


def test_reads_and_writes_get_through_injected_faults() -> None:
    box = PowerOfficeSandbox(rate_limit=FAST)
    box.seed(60, 2, only=("Customers",))
    running = serve(box)
    try:
        connector = make(running, page_size=5)
        connector.http.backoff_base = connector.http.backoff_cap = 0.01
        connector.auth._http.backoff_base = connector.auth._http.backoff_cap = 0.01
        box.faults.update(
            error_rate=0.15, truncate_rate=0.2, html_rate=0.1, throttle_rate=0.1, seed=4
        )
        records, _ = read_all(connector, "Customers")
        assert len({r.id for r in records}) == 60
        customer = records[0].id
        updated = connector.update("Customers", customer, {"Name": "Tålmodig AS"})
        assert updated is None or updated.data["Name"] == "Tålmodig AS"
        assert box.records("Customers")[int(customer)]["Name"] == "Tålmodig AS"
        injected = box.faults.injected
        assert injected.get("truncate") and injected.get("503") and injected.get("429")
        assert connector.stats.retries >= sum(injected.values()) - injected.get("latency", 0)
    finally:
        running.stop()
