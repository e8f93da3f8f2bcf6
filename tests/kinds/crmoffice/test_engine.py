"""End to end through the engine: CRMOffice (sandbox) ⇄ PowerOffice GO (sandbox), seed 003.

Activities → Projectactivity *and* → Timetrackingactivity (one source type, two
dataflows: both targets are created and both stay linked), Contacts → Contactperson
with the company reference translated through Companies → Customers.  Then quiescence,
edits on either side (an edit of one target reaches the other through the source),
and a deleted activity.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from samband.config import parse_config
from samband.engine.run import Engine
from samband.errors import SambandError
from samband.kinds.crmoffice.sandbox import CrmOfficeSandbox
from samband.kinds.poweroffice_go.sandbox import PowerOfficeSandbox
from tests.support.crmoffice import browser_login

ENV = {
    "CRMO_CLIENT_ID": "sandbox-client",
    "CRMO_CLIENT_SECRET": "sandbox-secret",
    "PO_APP": "sandbox-application-key",
    "PO_CLIENT": "sandbox-client-key",
    "PO_SUB": "sandbox-subscription-key",
}

CONFIG = """
store: sqlite:///{store}
systems:
  crmoffice:
    kind: crmoffice
    label: CRMOffice
    base_url: {crm}
    auth_url: {crm}
    rate_limit: {{calls: 100000, period: 60}}
    credentials:
      client_id: ${{CRMO_CLIENT_ID}}
      client_secret: ${{CRMO_CLIENT_SECRET}}
    entity_types:
      Activities: {{page_size: 4}}
  poweroffice:
    kind: poweroffice-go
    label: PowerOffice GO
    base_url: {po}/v2
    credentials:
      application_key: ${{PO_APP}}
      client_key: ${{PO_CLIENT}}
      subscription_key: ${{PO_SUB}}
    entity_types:
      Projectactivity: {{full_scan: true}}
      Timetrackingactivity: {{full_scan: true}}
dataflows:
  - source: crmoffice.Companies
    target: poweroffice.Customers
    match: [[{{from: orgNr, to: OrganizationNumber, normalize: orgno}}]]
    properties:
      - {{from: name, to: Name, type: string}}
      - {{from: orgNr, to: OrganizationNumber, type: string}}
  - source: crmoffice.Activities
    target: poweroffice.Projectactivity
    on_delete: propagate
    properties:
      - {{from: subject, to: name, type: string}}
  - source: crmoffice.Activities
    target: poweroffice.Timetrackingactivity
    on_delete: propagate
    properties:
      - {{from: subject, to: name, type: string}}
  - source: crmoffice.Contacts
    target: poweroffice.Contactperson
    match: [[{{from: email, to: emailAddress, normalize: email}}]]
    properties:
      - {{from: givenName, to: firstName, type: string}}
      - {{from: familyName, to: lastName, type: string}}
      - {{from: directPhone, to: phoneNumber, type: string}}
      - {{from: email, to: emailAddress, type: string}}
      - {{from: company.id, to: ContactId, type: reference}}
"""


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("SAMBAND_TOKEN_KEY", Fernet.generate_key().decode())
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    crm, po = CrmOfficeSandbox(rate_limit=None), PowerOfficeSandbox()
    crm.seed(5, 9)
    crm_server, po_server = crm.serve(), po.serve()
    text = CONFIG.format(store=tmp_path / "state.db", crm=crm_server.url, po=po_server.url)
    config = parse_config(text).config
    state = tmp_path / "state"
    browser_login(config, "crmoffice", state)
    try:
        yield {"crm": crm, "po": po, "config": config, "state": state}
    finally:
        crm_server.stop()
        po_server.stop()


def run(world: dict[str, Any]) -> dict[str, Any]:
    engine = Engine(world["config"], environ=ENV, state_dir=str(world["state"]))
    try:
        report = engine.sync().to_dict()
    finally:
        engine.close()
    assert report["status"] == "ok", report.get("messages")
    assert report["errors"] == 0, report
    return report


def by_name(records: dict[Any, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["Name"]: r for r in records.values()}


def named(po: PowerOfficeSandbox, name: str) -> int:
    """How many activities (project and time-tracking ones alike) have the name."""
    return sum(1 for r in po.records("ActivityTime").values() if r["Name"] == name)


def assert_converged(crm: CrmOfficeSandbox, po: PowerOfficeSandbox) -> None:
    subjects = sorted(a["subject"] for a in crm.records("activities"))
    # a project activity and a time-tracking activity per activity, both in ActivityTime
    assert sorted(r["Name"] for r in po.records("ActivityTime").values()) == sorted(subjects * 2)
    customers = {c["OrganizationNumber"]: c for c in po.records("Customers").values()}
    companies = {c["id"]: c for c in crm.records("companies")}
    assert {c["orgNr"] for c in companies.values()} <= set(customers)
    people = {p["EmailAddress"]: p for p in po.records("ContactPersons").values()}
    for contact in crm.records("contacts"):
        person = people[contact["email"]]
        assert (person["FirstName"], person["LastName"]) == (
            contact["givenName"],
            contact["familyName"],
        )
        assert person["PhoneNumber"] == contact.get("directPhone")
        company = companies[contact["company"]["id"]]
        assert person["ContactId"] == customers[company["orgNr"]]["Id"]


def test_crmoffice_and_poweroffice_converge(world: dict[str, Any]) -> None:
    crm: CrmOfficeSandbox = world["crm"]
    po: PowerOfficeSandbox = world["po"]

    first = run(world)
    assert first["created"] >= 5 * 4  # companies, two targets per activity, contacts
    assert_converged(crm, po)
    # one activity, two linked targets
    assert len(po.records("ActivityTime")) == 2 * len(crm.records("activities")) == 10

    quiet = run(world)
    assert (quiet["created"], quiet["updated"], quiet["deleted"]) == (0, 0, 0)

    # an edit in CRMOffice reaches both targets
    crm.clock.advance(30)
    activity = sorted(crm.records("activities"), key=lambda a: a["id"])[0]
    crm.edit("activities", activity["id"], {"subject": "Kundemøte flyttet"})
    run(world)
    assert named(po, "Kundemøte flyttet") == 2

    # an edit of one target flows back to the activity, and from there to the other target
    project_activity = by_name(po.records("ActivityTime"))["Kundemøte flyttet"]
    po.edit("ActivityTime", project_activity["Id"], {"Name": "Workshop hos kunde"})
    run(world)
    run(world)  # the second hop (activity → time tracking) may take the next run
    edited = crm.record("activities", activity["id"])
    assert edited is not None and edited["subject"] == "Workshop hos kunde"
    assert named(po, "Workshop hos kunde") == 2

    # a phone number changed in PowerOffice GO comes back to the CRMOffice contact
    contact = sorted(crm.records("contacts"), key=lambda c: c["id"])[0]
    person = next(
        p for p in po.records("ContactPersons").values() if p["EmailAddress"] == contact["email"]
    )
    po.edit("ContactPersons", person["Id"], {"PhoneNumber": "+47 930 00 000"})
    run(world)
    changed = crm.record("contacts", contact["id"])
    assert changed is not None and changed["directPhone"] == "+47 930 00 000"

    # a deleted activity takes both of its targets with it (policy propagate)
    crm.clock.advance(30)
    gone = sorted(crm.records("activities"), key=lambda a: a["id"])[-1]
    crm.remove("activities", gone["id"])
    run(world)
    assert named(po, gone["subject"]) == 0

    assert_converged(crm, po)
    final = run(world)
    assert (final["created"], final["updated"], final["deleted"]) == (0, 0, 0)


def test_faults_and_bad_answers_lose_nothing(world: dict[str, Any]) -> None:
    crm: CrmOfficeSandbox = world["crm"]
    po: PowerOfficeSandbox = world["po"]
    run(world)

    # HTML instead of JSON on every CRMOffice call: the run reports it, writes nothing
    crm.clock.advance(30)
    activity = sorted(crm.records("activities"), key=lambda a: a["id"])[0]
    crm.edit("activities", activity["id"], {"subject": "Etter vedlikehold"})
    crm.faults.html_rate = 1.0
    world["config"].systems["crmoffice"].model_extra["max_retries"] = 2
    engine = Engine(world["config"], environ=ENV, state_dir=str(world["state"]))
    try:
        with pytest.raises(SambandError) as caught:
            engine.sync()
    finally:
        engine.close()
    crm.faults.html_rate = 0.0
    del world["config"].systems["crmoffice"].model_extra["max_retries"]
    assert "crmoffice" in str(caught.value) and "HTML" in str(caught.value)
    assert "GET /" in str(caught.value)
    assert "Etter vedlikehold" not in by_name(po.records("ActivityTime"))

    # 429 bursts and 503s on both sides: retried; the edit made during the outage arrives
    crm.faults.update(seed=3, burst_429=2)
    crm.faults.error_rate = 0.2
    po.faults.update(seed=4)
    po.faults.error_rate = 0.1
    run(world)
    crm.faults.error_rate = po.faults.error_rate = 0.0
    assert crm.faults.injected.get("503", 0) + po.faults.injected.get("503", 0) >= 1
    assert named(po, "Etter vedlikehold") == 2
    assert_converged(crm, po)
