"""CRMOffice connector against its sandbox, in-process: login, tokens, reads, writes, faults."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from samband.config import parse_config
from samband.config.model import Config
from samband.connectors._http import RateLimiter
from samband.connectors.base import RecordData
from samband.errors import (
    AuthError,
    ContractError,
    InUse,
    NotFound,
    RecordError,
    SambandError,
)
from samband.kinds.crmoffice.connector import CrmOfficeConnector
from samband.kinds.crmoffice.sandbox import CrmOfficeSandbox
from samband.sandbox._base import SandboxServer
from samband.sandbox.registry import create_sandbox
from tests.support.crmoffice import browser_login

CLIENT_ID, CLIENT_SECRET = "sandbox-client", "sandbox-secret"


@pytest.fixture(autouse=True)
def _token_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMBAND_TOKEN_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("CRMO_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("CRMO_CLIENT_SECRET", CLIENT_SECRET)


@pytest.fixture
def box() -> CrmOfficeSandbox:
    sandbox = CrmOfficeSandbox()
    sandbox.seed(12, 3)
    return sandbox


@pytest.fixture
def server(box: CrmOfficeSandbox) -> Iterator[SandboxServer]:
    running = box.serve()
    yield running
    running.stop()


def make_config(url: str, types: str = "") -> Config:
    text = f"""
systems:
  crm:
    kind: crmoffice
    label: CRMOffice
    base_url: {url}
    auth_url: {url}
    credentials: {{client_id: "${{CRMO_CLIENT_ID}}", client_secret: "${{CRMO_CLIENT_SECRET}}"}}
{types}
"""
    return parse_config(text).config


def connect(
    config: Config, state_dir: Path, box: CrmOfficeSandbox, **options: Any
) -> CrmOfficeConnector:
    system = config.systems["crm"]
    return CrmOfficeConnector(
        "crm",
        system,
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        state_dir=str(state_dir),
        clock=box.clock.time,
        sleep=box.clock.advance,  # waiting moves the sandbox's clock, not the test's
        limiter=RateLimiter(250, 60.0, clock=box.clock.time, sleep=box.clock.advance),
        **options,
    )


@pytest.fixture
def crm(
    server: SandboxServer, box: CrmOfficeSandbox, tmp_path: Path
) -> Iterator[CrmOfficeConnector]:
    config = make_config(server.url)
    browser_login(config, "crm", tmp_path)
    connector = connect(config, tmp_path, box)
    yield connector
    connector.close()


def read_all(
    connector: CrmOfficeConnector, entity_type: str, cursor: str | None = None
) -> tuple[list[RecordData], str | None, int]:
    records: list[RecordData] = []
    out, pages = cursor, 0
    for page in connector.read(entity_type, cursor):
        pages += 1
        records.extend(page.records)
        out = page.cursor or out
    return records, out, pages


# -- login and tokens ----------------------------------------------------------------------
def test_login_stores_encrypted_tokens_that_work(
    server: SandboxServer, box: CrmOfficeSandbox, tmp_path: Path
) -> None:
    config = make_config(server.url)
    browser_login(config, "crm", tmp_path)
    token_file = tmp_path / "tokens" / "crm.json.enc"
    assert token_file.exists()
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    (refresh,) = box.refresh_tokens
    assert refresh.encode() not in token_file.read_bytes()
    assert box.token_grants == {"authorization_code": 1}

    connector = connect(config, tmp_path, box)
    try:
        records, _, _ = read_all(connector, "Companies")
    finally:
        connector.close()
    assert len(records) == 12


def test_without_login_the_error_says_to_run_auth(
    server: SandboxServer, box: CrmOfficeSandbox, tmp_path: Path
) -> None:
    connector = connect(make_config(server.url), tmp_path, box)
    with pytest.raises(AuthError, match="samband auth crmoffice"):
        list(connector.read("Companies", None))


def test_login_refused_scope_is_reported(
    server: SandboxServer, box: CrmOfficeSandbox, tmp_path: Path
) -> None:
    config = make_config(server.url)
    config.systems["crm"].model_extra["scope"] = "openid"  # type: ignore[index]
    with pytest.raises(AuthError, match=r"refused.*scope"):
        browser_login(config, "crm", tmp_path)


def test_sandbox_login_needs_no_browser(
    server: SandboxServer, box: CrmOfficeSandbox, tmp_path: Path
) -> None:
    config = make_config(server.url)
    CrmOfficeConnector.sandbox_login("crm", config, state_dir=str(tmp_path))
    assert box.token_grants == {"authorization_code": 1}
    connector = connect(config, tmp_path, box)
    try:
        assert len(read_all(connector, "Users")[0]) == 12
    finally:
        connector.close()
    box.clients = {"another-client": "x"}
    with pytest.raises(AuthError, match="not approved"):
        CrmOfficeConnector.sandbox_login("crm", config, state_dir=str(tmp_path))


def test_expired_token_is_refreshed_and_the_rotated_token_persisted(
    crm: CrmOfficeConnector, box: CrmOfficeSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    read_all(crm, "Users")
    (first_refresh,) = box.refresh_tokens
    box.clock.advance(3700)  # the hour-long access token has expired
    users, _, _ = read_all(crm, "Users")
    assert len(users) == 12
    assert box.token_grants.get("refresh_token") == 1
    (second_refresh,) = box.refresh_tokens
    assert second_refresh != first_refresh
    # the old refresh token is dead at the server
    refused = httpx.post(
        f"{server.url}/connect/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first_refresh,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    # a new process (new connector on the same state dir) goes on without a new login
    crm.close()
    box.clock.advance(3700)
    again = connect(make_config(server.url), tmp_path, box)
    try:
        assert len(read_all(again, "Users")[0]) == 12
    finally:
        again.close()
    assert box.token_grants.get("refresh_token") == 2
    assert box.token_grants.get("authorization_code") == 1


def test_revoked_access_token_gets_a_401_then_a_refresh(
    crm: CrmOfficeConnector, box: CrmOfficeSandbox
) -> None:
    read_all(crm, "Users")
    box.access_tokens.clear()  # the server forgets every access token
    assert len(read_all(crm, "Users")[0]) == 12
    assert box.token_grants.get("refresh_token") == 1


# -- reading -------------------------------------------------------------------------------
def test_paging_follows_the_continuation_token(
    server: SandboxServer, box: CrmOfficeSandbox, tmp_path: Path
) -> None:
    for number in range(13):
        box.add("companies", {"name": f"Extra {number} AS"})
    config = make_config(server.url, "    entity_types:\n      Companies: {page_size: 10}\n")
    browser_login(config, "crm", tmp_path)
    connector = connect(config, tmp_path, box)
    try:
        records, cursor, pages = read_all(connector, "Companies")
    finally:
        connector.close()
    assert pages == 3
    ids = [r.id for r in records]
    assert len(ids) == len(set(ids)) == 25
    assert set(ids) == {str(r["id"]) for r in box.records("companies")}
    assert cursor is not None


def test_incremental_read_sees_edits_creates_and_deletes(
    crm: CrmOfficeConnector, box: CrmOfficeSandbox
) -> None:
    records, cursor, _ = read_all(crm, "Contacts")
    assert len(records) == 12 and cursor is not None
    box.clock.advance(120)  # well past the read overlap
    contacts = sorted(r["id"] for r in box.records("contacts"))
    box.edit("contacts", contacts[0], {"directPhone": "+47 22 00 00 00"})
    box.remove("contacts", contacts[1])
    new = box.add("contacts", {"givenName": "Kari", "familyName": "Nordmann"})

    changed, cursor2, _ = read_all(crm, "Contacts", cursor)
    by_id = {r.id: r for r in changed}
    touched = {str(contacts[0]), str(contacts[1]), str(new["id"])}
    assert touched <= set(by_id)
    before = {r.id: r.data for r in records}
    # anything else is the read overlap (seeded within seconds of the cursor): unchanged
    assert all(by_id[i].data == before[i] for i in set(by_id) - touched)
    assert by_id[str(contacts[0])].data["directPhone"] == "+47 22 00 00 00"
    assert by_id[str(contacts[1])].deleted is True
    assert by_id[str(new["id"])].deleted is False
    assert cursor2 is not None and cursor2 > cursor

    box.clock.advance(120)
    quiet, cursor3, _ = read_all(crm, "Contacts", cursor2)
    # only the overlap window again (the last three writes), nothing new
    assert {r.id for r in quiet} <= touched and cursor3 == cursor2


def test_users_answer_a_bare_array_and_are_read_in_full(crm: CrmOfficeConnector) -> None:
    records, cursor, pages = read_all(crm, "Users")
    assert pages == 1 and len(records) == 12 and cursor is None
    assert crm.entity_type("Users").read_only
    with pytest.raises(RecordError, match="cannot be written"):
        crm.create("Users", {"name": "X"})


def test_get_returns_a_record_or_none(crm: CrmOfficeConnector, box: CrmOfficeSandbox) -> None:
    company = box.records("companies")[0]
    found = crm.get("Companies", str(company["id"]))
    assert found is not None and found.data["orgNr"] == company["orgNr"]
    assert found.modified is not None
    assert crm.get("Companies", "999999") is None


# -- writing -------------------------------------------------------------------------------
def test_create_update_delete_round_trip(crm: CrmOfficeConnector, box: CrmOfficeSandbox) -> None:
    created = crm.create(
        "Companies",
        {
            "name": "Fjord Data AS",
            "orgNr": "923609016",
            "visitAddress.streetAddress": "Kaigata 1",
            "visitAddress.postalArea": "Bergen",
            "visitAddress.country": "NO",
        },
        external_ref="pogo:Customers:42",
    )
    stored = box.record("companies", int(created.id))
    assert stored is not None and stored["externalId"] == "pogo:Customers:42"
    assert stored["visitAddress"] == {
        "streetAddress": "Kaigata 1",
        "postalArea": "Bergen",
        "country": "NO",
    }
    found = crm.find_by_external_ref("Companies", "pogo:Customers:42")
    assert found is not None and found.id == created.id
    assert crm.find_by_external_ref("Companies", "pogo:Customers:43") is None

    updated = crm.update("Companies", created.id, {"visitAddress.postalArea": "Os"})
    assert updated is not None
    stored = box.record("companies", int(created.id))
    assert stored is not None
    assert stored["visitAddress"]["postalArea"] == "Os"
    assert stored["visitAddress"]["streetAddress"] == "Kaigata 1"  # untouched by the patch
    assert stored["name"] == "Fjord Data AS"

    contact = crm.create(
        "Contacts", {"givenName": "Ola", "familyName": "Hansen", "company.id": created.id}
    )
    assert contact.data["company"]["id"] == int(created.id)  # sent as a number
    with pytest.raises(InUse):
        crm.delete("Companies", created.id)
    crm.update("Contacts", contact.id, {"company.id": None})
    stored_contact = box.record("contacts", int(contact.id))
    assert stored_contact is not None and "company" not in stored_contact
    crm.delete("Contacts", contact.id)
    crm.delete("Companies", created.id)
    assert crm.get("Companies", created.id) is None
    with pytest.raises(NotFound):
        crm.delete("Companies", created.id)


def test_activities_carry_date_times_and_an_owner(
    crm: CrmOfficeConnector, box: CrmOfficeSandbox
) -> None:
    owner = box.records("users")[0]["id"]
    starts = datetime(2024, 9, 13, 8, 0, tzinfo=UTC)
    ends = datetime(2024, 9, 13, 9, 30, tzinfo=UTC)
    created = crm.create(
        "Activities",
        {
            "subject": "Kundemøte",
            "startsAt": starts,
            "endsAt": ends,
            "ownerId": str(owner),
            "address.country": "NO",
            "address.postalArea": "Oslo",
        },
    )
    stored = box.record("activities", int(created.id))
    assert stored is not None and stored["ownerId"] == owner
    assert datetime.fromisoformat(stored["startsAt"].replace("Z", "+00:00")) == starts
    with pytest.raises(RecordError, match="endsAt"):
        crm.update("Activities", created.id, {"endsAt": datetime(2024, 9, 12, tzinfo=UTC)})


def test_refused_record_names_the_fields(crm: CrmOfficeConnector) -> None:
    with pytest.raises(RecordError) as caught:
        crm.create("Companies", {"name": "Feil AS", "orgNr": "12"})
    message = str(caught.value)
    assert "POST /companies" in message and "orgNr" in message and "400" in message
    assert not isinstance(caught.value, NotFound)


def test_a_create_whose_answer_is_lost_is_found_by_its_external_ref(
    crm: CrmOfficeConnector, box: CrmOfficeSandbox
) -> None:
    read_all(crm, "Users")
    box.faults.reset_rate = 1.0  # the server creates, then the connection drops mid-answer
    with pytest.raises(SambandError, match="POST /companies"):
        crm.create("Companies", {"name": "Tapt Svar AS"}, external_ref="pogo:Customers:7")
    box.faults.reset_rate = 0.0
    made = [c for c in box.records("companies") if c.get("externalId") == "pogo:Customers:7"]
    assert len(made) == 1  # not retried blindly
    found = crm.find_by_external_ref("Companies", "pogo:Customers:7")
    assert found is not None and found.id == str(made[0]["id"])


def test_a_write_answered_with_no_json_is_a_contract_error(
    crm: CrmOfficeConnector, box: CrmOfficeSandbox
) -> None:
    read_all(crm, "Users")
    box.faults.non_json_rate = 1.0
    with pytest.raises(ContractError, match=r"POST /companies answered 200 .*not JSON"):
        crm.create("Companies", {"name": "Rart Svar AS"})


# -- limits and faults -------------------------------------------------------------------------
def test_rate_limit_429_is_waited_out_with_retry_after(
    crm: CrmOfficeConnector, box: CrmOfficeSandbox
) -> None:
    read_all(crm, "Users")  # token in hand
    box.rate_limit = (3, 60.0)
    before = box.clock.time()
    for _ in range(5):
        assert len(read_all(crm, "Users")[0]) == 12
    assert crm.stats.throttled >= 1
    assert box.clock.time() - before >= 1  # waited (on the sandbox clock) as told


def test_injected_429_and_503_are_retried(crm: CrmOfficeConnector, box: CrmOfficeSandbox) -> None:
    read_all(crm, "Users")
    box.faults.update(burst_429=2)
    assert len(read_all(crm, "Companies")[0]) == 12
    assert crm.stats.throttled >= 2
    box.faults.update(seed=7)
    box.faults.error_rate = 0.4
    for _ in range(5):
        assert len(read_all(crm, "Contacts")[0]) == 12
    box.faults.error_rate = 0.0
    assert box.faults.injected.get("503", 0) >= 1
    assert crm.stats.retries >= box.faults.injected["503"]


def test_truncated_and_reset_bodies_are_asked_for_again(
    crm: CrmOfficeConnector, box: CrmOfficeSandbox
) -> None:
    read_all(crm, "Users")
    box.faults.update(seed=11)
    box.faults.truncate_rate = box.faults.reset_rate = 0.3
    for _ in range(4):
        assert len(read_all(crm, "Companies")[0]) == 12
    box.faults.truncate_rate = box.faults.reset_rate = 0.0
    assert sum(box.faults.injected.values()) >= 1


def test_html_page_is_reported_naming_the_request_and_loses_nothing(
    server: SandboxServer, box: CrmOfficeSandbox, tmp_path: Path
) -> None:
    config = make_config(server.url)
    config.systems["crm"].model_extra["max_retries"] = 2  # type: ignore[index]
    browser_login(config, "crm", tmp_path)
    crm = connect(config, tmp_path, box)
    try:
        _, cursor, _ = read_all(crm, "Companies")
        box.clock.advance(60)
        box.edit("companies", box.records("companies")[0]["id"], {"phone": "+47 55 00 00 00"})
        box.faults.html_rate = 1.0
        with pytest.raises(SambandError) as caught:
            read_all(crm, "Companies", cursor)
        assert "GET /companies" in str(caught.value) and "HTML" in str(caught.value)
        box.faults.html_rate = 0.0
        records, _, _ = read_all(crm, "Companies", cursor)
        assert "+47 55 00 00 00" in [r.data["phone"] for r in records]
    finally:
        crm.close()


def test_non_json_body_is_a_contract_error(crm: CrmOfficeConnector, box: CrmOfficeSandbox) -> None:
    read_all(crm, "Users")
    box.faults.non_json_rate = 1.0
    with pytest.raises(ContractError, match=r"GET /companies.*not JSON"):
        read_all(crm, "Companies")


def test_record_without_id_is_a_contract_error(
    crm: CrmOfficeConnector, box: CrmOfficeSandbox
) -> None:
    row = next(iter(box.tables["companies"].values()))
    del row["id"]
    with pytest.raises(ContractError, match=r"GET /companies.*without 'id'"):
        read_all(crm, "Companies")


def test_wrong_shape_names_the_keys(
    server: SandboxServer, box: CrmOfficeSandbox, tmp_path: Path
) -> None:
    config = make_config(server.url, "    entity_types:\n      Companies: {items: records}\n")
    browser_login(config, "crm", tmp_path)
    crm = connect(config, tmp_path, box)
    try:
        with pytest.raises(ContractError, match=r"without a list under 'records'.*items"):
            read_all(crm, "Companies")
    finally:
        crm.close()


# -- schema and registry ---------------------------------------------------------------------
def test_schema_is_described_offline_and_configurable() -> None:
    config = make_config(
        "http://127.0.0.1:9",
        "    entity_types:\n"
        "      Contacts: {path: persons, external_ref: null}\n"
        "      Notes: {path: notes}\n",
    )
    types = CrmOfficeConnector.describe(config.systems["crm"])
    assert set(types) == {"Companies", "Contacts", "Activities", "Users", "Notes"}
    assert types["Companies"].external_ref_field == "externalId"
    assert types["Contacts"].external_ref_field is None
    assert types["Contacts"].properties["company.id"].references == "Companies"
    assert types["Activities"].properties["ownerId"].references == "Users"
    assert types["Activities"].properties["startsAt"].type == "datetime"
    assert types["Users"].read_only and not types["Users"].incremental
    assert types["Companies"].incremental and types["Companies"].reports_deletes
    assert types["Notes"].open_schema


def test_sandbox_is_registered() -> None:
    assert isinstance(create_sandbox("crmoffice"), CrmOfficeSandbox)
