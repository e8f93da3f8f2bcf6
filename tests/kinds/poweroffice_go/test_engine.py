"""End to end through the engine: a memory CRM ⇄ PowerOffice GO (sandbox).

Creates both ways (CRM companies → PowerOffice GO customers; PowerOffice GO contact
persons → CRM persons), edits both ways (including an address, whose edit does not move
the customer's timestamp, and contact persons through their own change filter), a
conflict won by the newer edit, and quiescence: a run with no outside change writes
nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from samband.config import parse_config
from samband.kinds.memory.connector import dataset
from samband.kinds.poweroffice_go.sandbox import PowerOfficeSandbox
from samband.mapping import get_path
from tests.support.convergence import EditDuringTheRun
from tests.support.poweroffice import KEYS, serve

engine_run = pytest.importorskip("samband.engine.run")

ENV = {
    "PO_APP": KEYS["application_key"],
    "PO_CLIENT": KEYS["client_key"],
    "PO_SUB": KEYS["subscription_key"],
}

CONFIG = """
store: sqlite:///{store}
systems:
  crm:
    kind: memory
    entity_types:
      Company: {{external_ref: ext}}
      Person: {{external_ref: ext}}
  poweroffice:
    kind: poweroffice-go
    label: PowerOffice GO
    base_url: {url}/v2
    page_size: 2
    rate_limit: 200
    credentials:
      application_key: ${{PO_APP}}
      client_key: ${{PO_CLIENT}}
      subscription_key: ${{PO_SUB}}
dataflows:
  - source: crm.Company
    target: poweroffice.Customers
    match: [[{{from: org, to: OrganizationNumber, normalize: digits}}]]
    properties:
      - {{from: name, to: Name, type: string}}
      - {{from: org, to: OrganizationNumber, type: string}}
      - {{from: phone, to: PhoneNumber, type: string}}
      - {{from: city, to: MailAddress.City, type: string}}
  - source: poweroffice.Contactperson
    target: crm.Person
    match: [[{{from: EmailAddress, to: email, normalize: email}}]]
    properties:
      - {{from: firstName, to: first, type: string}}
      - {{from: lastName, to: last, type: string}}
      - {{from: EmailAddress, to: email, type: string}}
      - {{from: phoneNumber, to: phone, type: string}}
"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    box = PowerOfficeSandbox(rate_limit=200)
    box.seed(3, 9, only=("Customers", "ContactPersons"))
    box.clock.advance(60)
    known = next(iter(box.records("Customers").values()))
    crm = dataset("crm")
    crm.insert(
        "Company",
        {"name": known["Name"], "org": known["OrganizationNumber"], "phone": None, "city": None},
    )
    crm.insert(
        "Company",
        {"name": "Ny Kunde AS", "org": "923456783", "phone": "+47 22 00 00 01", "city": "Hamar"},
    )
    server = serve(box)
    text = CONFIG.format(store=tmp_path / "state.db", url=server.url)
    try:
        yield {
            "box": box,
            "crm": crm,
            "config": parse_config(text).config,
            "dir": tmp_path,
            "known": known["Id"],
        }
    finally:
        server.stop()


def run(world: dict[str, Any]) -> dict[str, Any]:
    engine = engine_run.Engine(world["config"], environ=ENV, state_dir=str(world["dir"] / "s"))
    try:
        report: dict[str, Any] = engine.sync().to_dict()
    finally:
        engine.close()
    assert report["status"] == "ok", report.get("messages")
    assert report["errors"] == 0, report
    return report


def customer_by_org(box: PowerOfficeSandbox, org: str) -> dict[str, Any]:
    return next(c for c in box.records("Customers").values() if c["OrganizationNumber"] == org)


def test_memory_crm_and_poweroffice_converge(world: dict[str, Any]) -> None:
    box: PowerOfficeSandbox = world["box"]
    crm = world["crm"]
    customers_before = len(box.records("Customers"))

    first = run(world)
    # creates in PowerOffice GO: the new company (the other one was linked by org number)
    assert len(box.records("Customers")) == customers_before + 1
    created = customer_by_org(box, "923456783")
    assert created["Name"] == "Ny Kunde AS" and created["MailAddress"]["City"] == "Hamar"
    assert created["ExternalImportReference"]  # stamped with the source ref
    known = box.records("Customers")[world["known"]]
    companies = {c["org"]: c for c in crm.records("Company").values()}
    assert companies[known["OrganizationNumber"]]["phone"] == known["PhoneNumber"]
    # creates in the CRM: every contact person became a person
    persons = {p["email"]: p for p in crm.records("Person").values()}
    for person in box.records("ContactPersons").values():
        assert persons[person["EmailAddress"]]["last"] == person["LastName"]
    assert first["created"] >= 1 + len(box.records("ContactPersons"))

    quiet = run(world)
    assert (quiet["created"], quiet["updated"]) == (0, 0), quiet

    # edits both ways
    box.clock.advance(30)
    company_id = next(k for k, c in crm.records("Company").items() if c["org"] == "923456783")
    crm.edit("Company", company_id, {"name": "Ny Kunde Holding AS"})
    box.edit("Customers", known["Id"], {"MailAddress.City": "Lillehammer"})
    person_id, person = next(iter(box.records("ContactPersons").items()))
    box.edit("ContactPersons", person_id, {"PhoneNumber": "+47 400 00 001"})
    crm_person = next(
        k for k, p in crm.records("Person").items() if p["email"] == person["EmailAddress"]
    )
    other = next(p for p in box.records("ContactPersons").values() if p["Id"] != person_id)
    crm_other = next(
        k for k, p in crm.records("Person").items() if p["email"] == other["EmailAddress"]
    )
    crm.edit("Person", crm_other, {"last": "Endresen"})
    edited = run(world)
    assert edited["updated"] >= 4, edited
    assert customer_by_org(box, "923456783")["Name"] == "Ny Kunde Holding AS"
    assert companies_city(crm, known["OrganizationNumber"]) == "Lillehammer"
    assert crm.records("Person")[crm_person]["phone"] == "+47 400 00 001"
    assert box.records("ContactPersons")[other["Id"]]["LastName"] == "Endresen"

    quiet = run(world)
    assert (quiet["created"], quiet["updated"]) == (0, 0), quiet

    # a conflict: both sides change the phone; PowerOffice GO's edit is newer and wins
    crm.edit("Company", company_id, {"phone": "+47 11 11 11 11"})
    box.clock.advance(120)
    box.edit(
        "Customers", customer_by_org(box, "923456783")["Id"], {"PhoneNumber": "+47 99 99 99 99"}
    )
    conflicted = run(world)
    assert conflicted["conflicts"] >= 1, conflicted
    assert crm.records("Company")[company_id]["phone"] == "+47 99 99 99 99"
    assert customer_by_org(box, "923456783")["PhoneNumber"] == "+47 99 99 99 99"

    last = run(world)
    assert (last["created"], last["updated"], last["conflicts"]) == (0, 0, 0), last


def companies_city(crm: Any, org: str) -> Any:
    return next(c["city"] for c in crm.records("Company").values() if c["org"] == org)


@pytest.mark.parametrize(
    ("field", "path"), [("name", "Name"), ("city", "MailAddress.City")], ids=["Name", "nested"]
)
def test_an_edit_made_in_poweroffice_during_a_run_is_not_overwritten(
    world: dict[str, Any], field: str, path: str
) -> None:
    """The update carries JSON Patch ``test`` operations with the values as read (a nested
    property, which a ``test`` cannot check, is compared by reading the record first): an
    edit made after the read makes the update stop, the record is read again, and the
    newer edit wins as a recorded conflict instead of being overwritten unseen."""
    box: PowerOfficeSandbox = world["box"]
    crm = world["crm"]
    run(world)
    company_id = next(k for k, c in crm.records("Company").items() if c["org"] == "923456783")
    customer = customer_by_org(box, "923456783")
    crm.edit("Company", company_id, {field: "Renamed in the CRM AS"})

    def user_edits_poweroffice() -> None:
        box.clock.advance(300)
        box.edit("Customers", customer["Id"], {path: "Renamed in PowerOffice AS"})

    engine = engine_run.Engine(world["config"], environ=ENV, state_dir=str(world["dir"] / "s"))
    try:
        report = engine.sync(progress=EditDuringTheRun(user_edits_poweroffice))
        conflicts = engine.store().conflicts_rows()
    finally:
        engine.close()
    assert report.to_dict()["errors"] == 0, report.to_dict()
    assert get_path(customer_by_org(box, "923456783"), path) == "Renamed in PowerOffice AS"
    assert crm.records("Company")[company_id][field] == "Renamed in PowerOffice AS"
    (conflict,) = [c for c in conflicts if c["property"] == path]
    assert "Renamed in the CRM AS" in conflict["source_value"]
    assert "Renamed in PowerOffice AS" in conflict["target_value"]
    assert conflict["winner"] == "target"
    last = run(world)
    assert (last["updated"], last["conflicts"]) == (0, 0), last


def test_a_long_decimal_reaches_poweroffice_and_comes_back_unrounded(
    world: dict[str, Any],
) -> None:
    """PowerOffice GO keeps amounts as .NET decimals (28 digits): what is sent with all
    its digits is kept, and nothing rounded flows back."""
    items = """
  - source: crm.Item
    target: poweroffice.Product
    properties:
      - {from: name, to: Name, type: string}
      - {from: price, to: UnitPrice, type: decimal}
"""
    text = CONFIG.format(store=world["dir"] / "items.db", url="{url}").replace(
        "      Person: {external_ref: ext}\n",
        "      Person: {external_ref: ext}\n      Item: {}\n",
    )
    base_url = world["config"].systems["poweroffice"].model_extra["base_url"]
    text = text.replace("{url}/v2", base_url) + items
    world["crm"].insert("Item", {"name": "Konsulenttime", "price": "12345678901234567.89"})
    config = parse_config(text).config
    engine = engine_run.Engine(config, environ=ENV, state_dir=str(world["dir"] / "s"))
    try:
        assert engine.sync().to_dict()["created"] >= 1
        (product,) = [
            p for p in world["box"].records("Products").values() if p["Name"] == "Konsulenttime"
        ]
        assert Decimal(str(product["UnitPrice"])) == Decimal("12345678901234567.89")
        assert engine.sync().writes == 0
        (item,) = world["crm"].records("Item").values()
        assert item["price"] == "12345678901234567.89"
    finally:
        engine.close()


def test_an_api_that_ignores_order_by_loses_no_record_and_the_report_says_so(
    world: dict[str, Any],
) -> None:
    box, crm = world["box"], world["crm"]
    box.order_by = "ignore"  # lists come in id order whatever OrderBy says
    first = next(iter(box.records("ContactPersons")))
    box.clock.advance(1)
    box.edit("ContactPersons", first, {"PhoneNumber": "+47 400 00 000"})  # id order ≠ time order
    report = run(world)
    emails = {p["EmailAddress"] for p in box.records("ContactPersons").values()}
    assert {p["email"] for p in crm.records("Person").values()} == emails
    assert any(
        m.startswith("poweroffice: Contactperson: ") and "OrderBy" in m for m in report["messages"]
    ), report["messages"]
