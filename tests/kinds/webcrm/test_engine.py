"""End to end through the engine: PowerOffice GO (sandbox) ⇄ WebCRM (sandbox), seed 001.

Customers → Organisations and Contact persons → Persons (with the reference to the
organisation), both ways, until every link agrees; then quiescence, edits on either
side, and the archive delete policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from samband.config import parse_config
from samband.engine.run import Engine
from samband.kinds.poweroffice_go.sandbox import PowerOfficeSandbox
from samband.kinds.webcrm.sandbox import SANDBOX_API_TOKEN, WebCrmSandbox
from tests.support.convergence import EditDuringTheRun
from tests.support.webcrm import serve

ENV = {
    "PO_APP": "sandbox-application-key",
    "PO_CLIENT": "sandbox-client-key",
    "PO_SUB": "sandbox-subscription-key",
    "WEBCRM_API_TOKEN": SANDBOX_API_TOKEN,
}

CONFIG = """
store: sqlite:///{store}
systems:
  poweroffice:
    kind: poweroffice-go
    label: Powerofficego
    base_url: {po}/v2
    credentials:
      application_key: ${{PO_APP}}
      client_key: ${{PO_CLIENT}}
      subscription_key: ${{PO_SUB}}
    entity_types:
      Customers: {{full_scan: true}}  # so that deletions in PowerOffice GO are seen
  webcrm:
    kind: webcrm
    label: WebCRM
    base_url: {crm}
    page_size: 3
    rate_limit: 0  # each test has its own sandbox: no process-wide 250/minute pacing
    credentials:
      api_token: ${{WEBCRM_API_TOKEN}}
    entity_types:
      Organisations:
        external_ref: OrganisationExtraCustom1
        archive_status: {{property: OrganisationStatus, value: Inactive}}
      Persons:
        external_ref: PersonCustom1
dataflows:
  - source: poweroffice.Customers
    target: webcrm.Organisations
    match: [[{{from: Name, to: OrganisationName, normalize: casefold}}]]
    on_delete: archive
    properties:
      - {{from: Name, to: OrganisationName, type: string}}
      - {{from: PhoneNumber, to: OrganisationTelephone, type: string}}
  - source: poweroffice.Contactperson
    target: webcrm.Persons
    match: [[{{from: EmailAddress, to: PersonEmail, normalize: email}}]]
    properties:
      - {{from: FirstName, to: PersonFirstName, type: string}}
      - {{from: LastName, to: PersonLastName, type: string}}
      - {{from: EmailAddress, to: PersonEmail, type: string}}
      - {{from: ContactId, to: PersonOrganisationId, type: reference}}
"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    po, crm = PowerOfficeSandbox(), WebCrmSandbox()
    po.seed(4, rng_seed=5, only=("Customers", "ContactPersons"))
    crm.insert("Organisations", {"OrganisationName": "Unrelated Lokal AS"})
    po_server, crm_server = serve(po), serve(crm)
    text = CONFIG.format(store=tmp_path / "state.db", po=po_server.url, crm=crm_server.url)
    config = parse_config(text).config
    try:
        yield {"po": po, "crm": crm, "config": config, "dir": tmp_path}
    finally:
        po_server.stop()
        crm_server.stop()


def run(world: dict[str, Any]) -> dict[str, Any]:
    engine = Engine(world["config"], environ=ENV, state_dir=str(world["dir"] / "state"))
    try:
        report = engine.sync().to_dict()
    finally:
        engine.close()
    assert report["status"] == "ok", report["messages"]
    return report


def orgs_by_name(crm: WebCrmSandbox) -> dict[str, dict[str, Any]]:
    return {r["OrganisationName"]: r for r in crm.records("Organisations").values()}


def test_poweroffice_and_webcrm_converge(world: dict[str, Any]) -> None:
    po: PowerOfficeSandbox = world["po"]
    crm: WebCrmSandbox = world["crm"]
    customers = po.records("Customers")
    contacts = po.records("ContactPersons")
    assert customers and contacts

    first = run(world)
    assert first["errors"] == 0, first
    orgs = orgs_by_name(crm)
    for customer in customers.values():
        org = orgs[customer["Name"]]
        assert org["OrganisationTelephone"] == (customer.get("PhoneNumber") or "")
        assert org["OrganisationExtraCustom1"]  # stamped with the source ref
    persons = {p["PersonEmail"]: p for p in crm.records("Persons").values()}
    for contact in contacts.values():
        person = persons[contact["EmailAddress"]]
        owner = customers[contact["ContactId"]]["Name"]
        assert person["PersonOrganisationId"] == orgs[owner]["OrganisationId"]
    assert "Unrelated Lokal AS" in orgs  # not a customer: left alone

    quiet = run(world)
    assert (quiet["created"], quiet["updated"], quiet["errors"]) == (0, 0, 0), quiet

    # an edit in WebCRM flows back to PowerOffice GO, one in PowerOffice GO forward
    customer_id, customer = next(iter(customers.items()))
    org = orgs[customer["Name"]]
    crm.clock.advance(30)
    crm.edit("Organisations", org["OrganisationId"], {"OrganisationTelephone": "+47 22 33 44 55"})
    other_id = list(customers)[1]
    po.edit("Customers", other_id, {"Name": "Omdøpt Handel AS"})
    edited = run(world)
    assert edited["updated"] >= 2 and edited["errors"] == 0, edited
    assert po.records("Customers")[customer_id]["PhoneNumber"] == "+47 22 33 44 55"
    assert "Omdøpt Handel AS" in orgs_by_name(crm)
    assert len(crm.records("Organisations")) == len(orgs)  # renamed, not created again

    quiet = run(world)
    assert (quiet["created"], quiet["updated"], quiet["errors"]) == (0, 0, 0), quiet


def test_a_deleted_customer_archives_its_organisation(world: dict[str, Any]) -> None:
    po: PowerOfficeSandbox = world["po"]
    crm: WebCrmSandbox = world["crm"]
    lone = po.insert("Customers", {"Name": "Kortvarig Kunde AS"})
    run(world)
    assert orgs_by_name(crm)["Kortvarig Kunde AS"]["OrganisationStatus"] == ""
    po.remove("Customers", lone["Id"])
    report = run(world)
    assert report["deleted"] == 1, report
    assert orgs_by_name(crm)["Kortvarig Kunde AS"]["OrganisationStatus"] == "Inactive"
    assert len(orgs_by_name(crm)) == len(crm.records("Organisations"))


def test_refusals_are_quarantined_and_nothing_is_lost(world: dict[str, Any]) -> None:
    po: PowerOfficeSandbox = world["po"]
    crm: WebCrmSandbox = world["crm"]
    bad = po.insert("Customers", {"Name": "Lang Telefon AS", "PhoneNumber": "9" * 60})
    crm.quirks.missing_id = 1  # the first create's answer comes back without its id
    first = run(world)
    assert first["errors"] == 1, first  # OrganisationTelephone holds at most 50
    orgs = orgs_by_name(crm)
    assert "Lang Telefon AS" not in orgs
    # every other customer (the one without id among them, created once) + the unrelated one
    assert crm.quirks.missing_id == 0
    assert len(orgs) == len(po.records("Customers"))
    assert len(crm.records("Organisations")) == len(orgs)

    po.edit("Customers", bad["Id"], {"PhoneNumber": "+47 22 00 00 00"})
    second = run(world)
    assert second["errors"] == 0, second
    assert orgs_by_name(crm)["Lang Telefon AS"]["OrganisationTelephone"] == "+47 22 00 00 00"


def test_converges_through_webcrm_faults(world: dict[str, Any]) -> None:
    po: PowerOfficeSandbox = world["po"]
    crm: WebCrmSandbox = world["crm"]
    crm.faults.update(seed=7)
    # set directly: Faults.update turns a fractional rate into int when the current is 0.0
    rates = {
        "error_rate": 0.08,
        "throttle_rate": 0.04,
        "truncate_rate": 0.05,
        "html_rate": 0.04,
        "reset_rate": 0.03,
    }
    for name, rate in rates.items():
        setattr(crm.faults, name, rate)
    reports = []
    for _ in range(8):
        engine = Engine(world["config"], environ=ENV, state_dir=str(world["dir"] / "state"))
        try:
            reports.append(engine.sync().to_dict())
        finally:
            engine.close()
        last = reports[-1]
        if last["status"] == "ok" and not (last["created"] or last["updated"] or last["errors"]):
            break
    assert sum(crm.faults.injected.values()) > 0
    for name in rates:
        setattr(crm.faults, name, 0.0)
    quiet = run(world)
    summary = [(r["status"], r["created"], r["updated"], r["errors"]) for r in reports]
    assert (quiet["created"], quiet["updated"], quiet["errors"]) == (0, 0, 0), (summary, quiet)
    names = [r["OrganisationName"] for r in crm.records("Organisations").values()]
    assert len(names) == len(set(names)), names  # nothing created twice
    for customer in po.records("Customers").values():
        assert customer["Name"] in names


def test_an_edit_made_in_webcrm_during_a_run_is_not_overwritten(world: dict[str, Any]) -> None:
    """WebCRM's PUT writes the whole record, so the connector reads it first; a value
    edited since the engine read it stops the update (the record is read again and the
    newer edit wins as a recorded conflict) instead of being overwritten unseen."""
    po: PowerOfficeSandbox = world["po"]
    crm: WebCrmSandbox = world["crm"]
    run(world)
    customer_id, customer = next(iter(po.records("Customers").items()))
    org = orgs_by_name(crm)[customer["Name"]]
    po.edit("Customers", customer_id, {"PhoneNumber": "+47 11 11 11 11"})

    def user_edits_webcrm() -> None:
        crm.clock.advance(600)
        crm.edit(
            "Organisations", org["OrganisationId"], {"OrganisationTelephone": "+47 99 99 99 99"}
        )

    engine = Engine(world["config"], environ=ENV, state_dir=str(world["dir"] / "state"))
    try:
        report = engine.sync(progress=EditDuringTheRun(user_edits_webcrm)).to_dict()
        conflicts = [
            c for c in engine.store().conflicts_rows() if c["property"] == "OrganisationTelephone"
        ]
    finally:
        engine.close()
    assert report["errors"] == 0, report
    assert crm.records("Organisations")[org["OrganisationId"]]["OrganisationTelephone"] == (
        "+47 99 99 99 99"
    )
    assert po.records("Customers")[customer_id]["PhoneNumber"] == "+47 99 99 99 99"
    (conflict,) = conflicts
    assert conflict["winner"] == "target" and "+47 11 11 11 11" in conflict["source_value"]
    quiet = run(world)
    assert (quiet["updated"], quiet["conflicts"]) == (0, 0), quiet
