"""Every section of every seed document, end to end on the six sandboxes.

One world (``samband.demo.start_world``: every sandbox in-process with sample data and
overlaps, the PMS in SQLite, OAuth logins done) runs ``examples/samband.yaml``.  For each
dataflow: a record created in the source appears in the target with every mapped value
converted to its type; an edit in the target flows back (read-only sources: it does not
reach the source); an edit in the source flows forward; a run after that writes nothing.
Then the chain (custom CRM → PowerOffice GO → PMS and WebCRM in one run, no duplicate),
the many-to-one sections (departments and customers into one PMS table) and the
one-to-many section (one activity → a project activity and a time-tracking activity).

Outside edits go through each system's own API (the product's connectors), or straight
into a sandbox where the API cannot write (Exact's departments and divisions).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from samband import sampledata
from samband.config.model import Dataflow
from samband.demo import World, start_world, token_key
from samband.mapping import get_path
from samband.store import Ref
from samband.types import DataType, coerce

pytestmark = pytest.mark.xdist_group("seed_dataflows")

_numbers = itertools.count(1)
_rng = random.Random(2024)


def unique() -> int:
    return next(_numbers)


def org_no() -> str:
    return str(sampledata.companies(1, _rng, "NO")[0]["org_no"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder: Path = tmp_path_factory.mktemp("seeds")
    with token_key():
        world = start_world(folder, records=6)
        try:
            first = world.sync()
            assert first["status"] == "ok", first["messages"]
            assert first["errors"] == 0, first
            yield world
        finally:
            world.close()


class Systems:
    """The product's connectors on the world's systems (compiled, so reads ask for every
    mapped field)."""

    def __init__(self, world: World) -> None:
        self.engine = world.engine()
        self.engine.compile()

    def __getitem__(self, system_id: str) -> Any:
        return self.engine.connector(system_id)

    def close(self) -> None:
        self.engine.close()


@pytest.fixture
def systems(world: World) -> Iterator[Systems]:
    found = Systems(world)
    try:
        yield found
    finally:
        found.close()


def sync(world: World) -> dict[str, Any]:
    report = world.sync()
    assert report["status"] == "ok", report["messages"]
    assert report["errors"] == 0, [m for m in report["messages"]]
    return report


def quiet(world: World) -> None:
    report = sync(world)
    writes = {k: report[k] for k in ("created", "updated", "deleted")}
    assert writes == {"created": 0, "updated": 0, "deleted": 0}, report["dataflows"]


def flow_of(world: World, key: str) -> Dataflow:
    return next(f for f in world.config.dataflows if f.key == key)


def linked(world: World, ref: str, system: str, type_name: str) -> list[str]:
    """Ids of ``system.type_name`` records linked directly to ``ref``."""
    engine = world.engine()
    try:
        links = engine.store().all_links()
    finally:
        engine.close()
    prefix = f"{system}:{type_name}:"
    found = []
    for link in links:
        for mine, other in ((link.source_ref, link.target_ref), (link.target_ref, link.source_ref)):
            if mine == ref and other.startswith(prefix):
                found.append(other[len(prefix) :])
    return found


def value(record: Any, path: str) -> Any:
    return get_path(record.data, path)


def assert_mapped(world: World, systems: Systems, flow: Dataflow, source_id: str) -> str:
    """The source record is linked to exactly one target record that holds every mapped
    value, converted to the mapping's type; returns the target id."""
    targets = linked(world, f"{flow.source}".replace(".", ":", 1) + f":{source_id}", *_tt(flow))
    assert len(targets) == 1, f"{flow.key}: {source_id} linked to {targets}"
    source = systems[flow.source_system].get(flow.source_type, source_id)
    target = systems[flow.target_system].get(flow.target_type, targets[0])
    assert source is not None and target is not None
    s_et = systems[flow.source_system].entity_type(flow.source_type)
    t_et = systems[flow.target_system].entity_type(flow.target_type)
    for mapping in flow.properties:
        s_value = value(source, s_et.canonical(mapping.source))
        t_value = value(target, t_et.canonical(mapping.target))
        if mapping.type is DataType.REFERENCE:
            if s_value in (None, "", 0):
                continue
            s_ref_type = s_et.property(mapping.source).references  # type: ignore[union-attr]
            t_ref_type = t_et.property(mapping.target).references  # type: ignore[union-attr]
            expected = linked(
                world,
                Ref.text(flow.source_system, s_ref_type, s_value),
                flow.target_system,
                str(t_ref_type),
            )
            assert str(t_value) in expected, (flow.key, mapping.source, s_value, t_value)
            continue
        converted = coerce(t_value, mapping.type)
        assert converted == coerce(s_value, mapping.type), (
            flow.key,
            mapping.source,
            mapping.target,
            s_value,
            t_value,
        )
        if converted is not None and mapping.type is not None:
            assert isinstance(converted, _PYTHON[mapping.type]), (mapping.target, t_value)
    return targets[0]


_PYTHON: dict[DataType, type | tuple[type, ...]] = {
    DataType.STRING: str,
    DataType.INTEGER: int,
    DataType.DECIMAL: Decimal,
    DataType.BOOLEAN: bool,
    DataType.DATE: date,
}


def _tt(flow: Dataflow) -> tuple[str, str]:
    return flow.target_system, flow.target_type


@dataclass
class Case:
    """How to exercise one section: what to create in the source, what to edit where."""

    key: str
    create: Callable[[World, Systems], str]  # returns the new source id
    target_edit: tuple[str, Any] | None  # None: the source is read only
    source_edit: Callable[[World, Systems, str], tuple[str, Any]]


def set_source(path: str, new: Any) -> Callable[[World, Systems, str], tuple[str, Any]]:
    def edit(world: World, systems: Systems, source_id: str) -> tuple[str, Any]:
        return path, new

    return edit


def po_customer(world: World) -> str:
    """A PowerOffice GO customer that is linked to the PMS and WebCRM."""
    engine = world.engine()
    try:
        links = engine.store().all_links("poweroffice.Customers->pms.Customer")
    finally:
        engine.close()
    return links[0].source_ref.rsplit(":", 1)[1]


def crm_customer(world: World) -> str:
    engine = world.engine()
    try:
        links = engine.store().all_links("crm.Customer->poweroffice.Customers")
    finally:
        engine.close()
    return links[0].source_ref.rsplit(":", 1)[1]


def crmoffice_company(world: World) -> str:
    engine = world.engine()
    try:
        links = engine.store().all_links("crmoffice.Companies->poweroffice.Customers")
    finally:
        engine.close()
    return links[0].source_ref.rsplit(":", 1)[1]


def _po_customer_values() -> dict[str, Any]:
    n = unique()
    return {
        "Name": f"Seedtest {n} AS",
        "OrganizationNumber": org_no(),
        "EmailAddress": f"post{n}@seedtest.no",
        "PhoneNumber": f"+47 22 00 {n:02d} 00",
        "WebsiteUrl": f"https://seedtest{n}.no",
        "MailAddress.AddressLine1": f"Testveien {n}",
        "MailAddress.ZipCode": "0150",
        "MailAddress.City": "Oslo",
        "MailAddress.CountryCode": "NO",
    }


def _with(values: Callable[[World], dict[str, Any]], system: str, type_name: str) -> Any:
    def create(world: World, systems: Systems) -> str:
        return str(systems[system].create(type_name, values(world)).id)

    return create


def _exact_department(world: World, systems: Systems) -> str:
    box = world.boxes["exact"]
    record = box.insert("hrm/Departments", {"Code": f"T{unique():02d}", "Description": "Test"})
    return str(record["ID"])


def _exact_division(world: World, systems: Systems) -> str:
    box = world.boxes["exact"]
    code = 3_100_000 + unique()
    # as Exact's own division set-up does it (``insert`` leaves a division that the
    # sandbox's key lookup does not find)
    box._add_division(code, f"Testdivisie {code} B.V.")
    return str(code)


def _n() -> int:
    return unique()


CASES = [
    Case(
        "poweroffice.Departments->pms.Customer",
        _with(
            lambda w: {"Code": f"8{_n():02d}", "Name": "Avdeling Test"},
            "poweroffice",
            "Departments",
        ),
        ("name", "Avdeling Test (PMS)"),
        set_source("Name", "Avdeling Test (GO)"),
    ),
    Case(
        "poweroffice.Customers->pms.Customer",
        _with(lambda w: _po_customer_values(), "poweroffice", "Customers"),
        ("city", "Bodø"),
        set_source("MailAddress.City", "Hamar"),
    ),
    Case(
        "poweroffice.Projects->pms.Project",
        _with(
            lambda w: {
                "Code": f"TP{_n():03d}",
                "Name": "Testprosjekt",
                "CustomerId": po_customer(w),
                "StartDate": date(2026, 2, 1),
                "EndDate": date(2026, 6, 30),
                "IsActive": True,
            },
            "poweroffice",
            "Projects",
        ),
        ("end_date", date(2026, 9, 30)),
        set_source("Name", "Testprosjekt (GO)"),
    ),
    Case(
        "poweroffice.Customers->webcrm.Organisations",
        _with(lambda w: _po_customer_values(), "poweroffice", "Customers"),
        ("OrganisationTelephone", "+47 33 33 33 33"),
        set_source("WebsiteUrl", "https://endret.example.no"),
    ),
    Case(
        "poweroffice.Departments->webcrm.Organisations",
        _with(
            lambda w: {"Code": f"9{_n():02d}", "Name": "Avdeling Web"}, "poweroffice", "Departments"
        ),
        ("OrganisationName", "Avdeling Web (WebCRM)"),
        set_source("Name", "Avdeling Web (GO)"),
    ),
    Case(
        "poweroffice.Contactperson->webcrm.Persons",
        _with(
            lambda w: {
                "ContactId": po_customer(w),
                "FirstName": "Siri",
                "LastName": f"Test{_n()}",
                "EmailAddress": f"siri{_n()}@seedtest.no",
                "PhoneNumber": "+47 911 11 111",
                "Title": "Innkjøper",
            },
            "poweroffice",
            "Contactperson",
        ),
        ("PersonTitle", "Innkjøpssjef"),
        set_source("PhoneNumber", "+47 922 22 222"),
    ),
    Case(
        "poweroffice.Suppliers person->webcrm.Persons",
        _with(
            lambda w: {
                "FirstName": "Leif",
                "LastName": f"Leverandør{_n()}",
                "EmailAddress": f"leif{_n()}@seedtest.no",
                "PhoneNumber": "+47 933 33 333",
            },
            "poweroffice",
            "Suppliers person",
        ),
        ("PersonLastName", "Leverandørsen"),
        set_source("PhoneNumber", "+47 944 44 444"),
    ),
    Case(
        "crm.Contact->poweroffice.Contactperson",
        _with(
            lambda w: {
                "first_name": "Ola",
                "last_name": f"Kontakt{_n()}",
                "email": f"ola{_n()}@seedtest.no",
                "phone": "+47 955 55 555",
                "title": "Selger",
                "customer_id": crm_customer(w),
            },
            "crm",
            "Contact",
        ),
        ("Title", "Salgssjef"),
        set_source("last_name", "Kontaktsen"),
    ),
    Case(
        "crm.Customer->poweroffice.Customers",
        _with(
            lambda w: {
                "name": f"CRM-kunde {_n()} AS",
                "org_no": org_no(),
                "email": f"crm{_n()}@seedtest.no",
                "phone": "+47 23 00 00 00",
                "website": "https://crmkunde.no",
                "address.street": "Kirkegata 2",
                "address.zip_code": "0153",
                "address.city": "Oslo",
                "address.country": "NO",
            },
            "crm",
            "Customer",
        ),
        ("EmailAddress", "faktura@crmkunde.no"),
        set_source("address.city", "Drammen"),
    ),
    Case(
        "crm.Order->poweroffice.Salesorders",
        _with(
            lambda w: {
                "customer_id": crm_customer(w),
                "order_date": date(2026, 3, 1),
                "currency": "NOK",
                "order_no": f"T-{_n()}",
            },
            "crm",
            "Order",
        ),
        ("CustomerReference", "T-endret"),
        set_source("order_date", date(2026, 3, 15)),
    ),
    Case(
        "crm.Product->poweroffice.Product",
        _with(
            lambda w: {
                "code": f"T{_n():04d}",
                "name": "Testvare",
                "description": "En vare for testen",
                "unit_price": Decimal("199.50"),
                "unit_cost": Decimal("120.25"),
            },
            "crm",
            "Product",
        ),
        ("UnitPrice", Decimal("249.00")),
        set_source("name", "Testvare (CRM)"),
    ),
    Case(
        "crmoffice.Activities->poweroffice.Projectactivity",
        _with(lambda w: {"subject": f"Testmøte {_n()}"}, "crmoffice", "Activities"),
        ("Name", "Testmøte (GO)"),
        set_source("subject", "Testmøte (CRMOffice)"),
    ),
    Case(
        "crmoffice.Activities->poweroffice.Timetrackingactivity",
        _with(lambda w: {"subject": f"Timeføring {_n()}"}, "crmoffice", "Activities"),
        ("Name", "Timeføring (GO)"),
        set_source("subject", "Timeføring (CRMOffice)"),
    ),
    Case(
        "crmoffice.Contacts->poweroffice.Contactperson",
        _with(
            lambda w: {
                "givenName": "Kari",
                "familyName": f"Crmoffice{_n()}",
                "directPhone": "+47 966 66 666",
                "email": f"kari{_n()}@seedtest.no",
                "title": "Rådgiver",
                "company.id": crmoffice_company(w),
            },
            "crmoffice",
            "Contacts",
        ),
        ("PhoneNumber", "+47 977 77 777"),
        set_source("familyName", "Crmofficesen"),
    ),
    Case(
        "crmoffice.Companies->poweroffice.Customers",
        _with(
            lambda w: {"name": f"Selskap {_n()} AS", "orgNr": org_no()},
            "crmoffice",
            "Companies",
        ),
        ("Name", "Selskap (GO) AS"),
        set_source("name", "Selskap (CRMOffice) AS"),
    ),
    Case(
        "exact.Departments->pms.Customer",
        _exact_department,
        None,
        set_source("Description", "Afdeling (Exact)"),
    ),
    Case(
        "exact.Divisions->pms.Customer",
        _exact_division,
        None,
        set_source("Description", "Divisie (Exact) B.V."),
    ),
    Case(
        "exact.Accounts->pms.Customer",
        _with(
            lambda w: {
                "Name": f"Testaccount {_n()} B.V.",
                "ChamberOfCommerce": f"{_rng.randrange(10**7, 10**8)}",
                "Email": f"info{_n()}@testaccount.nl",
                "Phone": "+31 20 000 0000",
                "Website": "https://testaccount.nl",
                "AddressLine1": "Keizersgracht 1",
                "Postcode": "1015 AA",
                "City": "Amsterdam",
                "Country": "NL",
            },
            "exact",
            "Accounts",
        ),
        ("city", "Rotterdam"),
        set_source("Name", "Testaccount (Exact) B.V."),
    ),
]


def test_every_section_has_a_case(world: World) -> None:
    from samband.demo import SEEDS

    keys = [flow.key for flow in world.config.dataflows]
    assert sorted(case.key for case in CASES) == sorted(keys)
    assert sorted(k for _, flows in SEEDS.values() for k in flows) == sorted(keys)


def _exact_edit(world: World, flow: Dataflow, source_id: str, path: str, new: Any) -> None:
    box = world.boxes["exact"]
    resource = "hrm/Departments" if flow.source_type == "Departments" else "hrm/Divisions"
    box.edit(resource, source_id, {path: new})


@pytest.mark.parametrize("case", CASES, ids=[case.key for case in CASES])
def test_section(world: World, systems: Systems, case: Case) -> None:
    flow = flow_of(world, case.key)
    source_conn = systems[flow.source_system]
    target_conn = systems[flow.target_system]
    s_et = source_conn.entity_type(flow.source_type)
    t_et = target_conn.entity_type(flow.target_type)

    # created in the source → appears in the target, every value converted
    source_id = case.create(world, systems)
    sync(world)
    target_id = assert_mapped(world, systems, flow, source_id)

    # edited in the target → flows back (or, for a read-only source, stays out of it)
    if case.target_edit is not None:
        path, new = case.target_edit
        target_conn.update(flow.target_type, target_id, {t_et.canonical(path): new})
        sync(world)
        mapping = next(
            m for m in flow.properties if t_et.canonical(m.target) == t_et.canonical(path)
        )
        source = source_conn.get(flow.source_type, source_id)
        assert coerce(value(source, s_et.canonical(mapping.source)), mapping.type) == coerce(
            new, mapping.type
        ), f"{case.key}: the target edit of {path} did not flow back"
        assert_mapped(world, systems, flow, source_id)
    else:
        before = source_conn.get(flow.source_type, source_id)
        target_conn.update(flow.target_type, target_id, {"name": "Lokalt navn"})
        sync(world)
        after = source_conn.get(flow.source_type, source_id)
        assert before is not None and after is not None
        assert value(after, "Description") == value(before, "Description")

    # edited in the source → flows forward
    path, new = case.source_edit(world, systems, source_id)
    if case.target_edit is None:
        _exact_edit(world, flow, source_id, path, new)
    else:
        source_conn.update(flow.source_type, source_id, {s_et.canonical(path): new})
    sync(world)
    mapping = next(m for m in flow.properties if s_et.canonical(m.source) == s_et.canonical(path))
    target = target_conn.get(flow.target_type, target_id)
    assert coerce(value(target, t_et.canonical(mapping.target)), mapping.type) == coerce(
        new, mapping.type
    ), f"{case.key}: the source edit of {path} did not flow forward"
    assert_mapped(world, systems, flow, source_id)

    # and then a run writes nothing
    quiet(world)


def test_chain_custom_crm_to_poweroffice_to_pms_and_webcrm(world: World) -> None:
    """A customer created in the custom CRM reaches PowerOffice GO, then the PMS and
    WebCRM, in one run, and exists exactly once everywhere."""
    number = org_no()
    world.boxes["crm"].insert(
        "Customer",
        {"name": "Kjedetest AS", "org_no": number, "email": "post@kjedetest.no"},
    )
    sync(world)
    po = [
        c
        for c in world.boxes["poweroffice"].records("Customers").values()
        if c.get("OrganizationNumber") == number
    ]
    assert len(po) == 1 and po[0]["Name"] == "Kjedetest AS"
    pms = world.pms("SELECT name, email FROM customer WHERE org_no = :o", {"o": number})
    assert pms == [{"name": "Kjedetest AS", "email": "post@kjedetest.no"}]
    web = [
        o
        for o in world.boxes["webcrm"].records("Organisations").values()
        if o["OrganisationName"] == "Kjedetest AS"
    ]
    assert len(web) == 1
    quiet(world)
    crm = [c for c in world.boxes["crm"].records("Customer").values() if c["org_no"] == number]
    assert len(crm) == 1


def test_many_to_one_departments_and_customers_into_one_pms_type(world: World) -> None:
    po = world.boxes["poweroffice"]
    code = f"7{unique():02d}"
    department = po.insert("Departments", {"Code": code, "Name": "Mange-til-en avdeling"})
    values = _po_customer_values()
    customer = po.insert(
        "Customers",
        {
            "Name": "Mange-til-en AS",
            "OrganizationNumber": values["OrganizationNumber"],
            "EmailAddress": values["EmailAddress"],
        },
    )
    sync(world)
    rows = world.pms(
        "SELECT id, name, department_code, org_no FROM customer "
        "WHERE department_code = :c OR org_no = :o",
        {"c": code, "o": values["OrganizationNumber"]},
    )
    assert sorted(r["name"] for r in rows) == ["Mange-til-en AS", "Mange-til-en avdeling"]
    assert linked(world, f"poweroffice:Departments:{department['Id']}", "pms", "Customer")
    assert linked(world, f"poweroffice:Customers:{customer['Id']}", "pms", "Customer")
    quiet(world)


def test_one_to_many_activity_into_two_poweroffice_types(world: World) -> None:
    crmo, po = world.boxes["crmoffice"], world.boxes["poweroffice"]
    activity = crmo.add("activities", {"subject": "En til mange"})
    sync(world)
    ref = f"crmoffice:Activities:{activity['id']}"
    (project,) = linked(world, ref, "poweroffice", "Projectactivity")
    (tracking,) = linked(world, ref, "poweroffice", "Timetrackingactivity")
    assert project != tracking  # two records of the one v2 activity catalogue
    assert po.records("ActivityTime")[int(project)]["Name"] == "En til mange"
    assert po.records("ActivityTime")[int(tracking)]["Name"] == "En til mange"
    # an edit of one target reaches the other through the activity
    po.edit("ActivityTime", int(project), {"Name": "En til mange (endret)"})
    sync(world)
    assert crmo.record("activities", activity["id"])["subject"] == "En til mange (endret)"
    assert po.records("ActivityTime")[int(tracking)]["Name"] == "En til mange (endret)"
    quiet(world)
