"""``samband qa``: the QA checklists executed against an in-process custom CRM sandbox and a
memory ERP — all sections pass on a correct config, broken mappings fail naming the
property, ``--only`` limits the sections, other records stay untouched, leftovers are named.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from samband.cli import app
from samband.kinds.memory.connector import MemoryDataset, dataset, forget_dataset
from samband.kinds.rest.sandbox import DEFAULT_TOKEN, CustomCrmSandbox
from samband.qa import run_qa
from samband.qa.model import FAILED, PASSED
from samband.sandbox._base import SandboxServer

ENV = {"QA_CRM_TOKEN": DEFAULT_TOKEN}

CONFIG = """
store: sqlite:///production.db
systems:
  crm:
    kind: rest
    label: Customcrm
    base_url: {url}
    auth: bearer
    credentials: {{token: "${{QA_CRM_TOKEN}}"}}
    entity_types:
      Customer:
        path: customers
        external_ref: external_ref
        properties:
          id: {{type: integer, read_only: true}}
          name: string
          org_no: string
          email: string
          phone: string
          address.city: string
      Contact:
        path: contacts
        external_ref: external_ref
        properties:
          id: {{type: integer, read_only: true}}
          first_name: string
          last_name: string
          email: string
          customer_id: {{type: reference, references: Customer}}
      Product:
        path: products
        external_ref: external_ref
        properties:
          id: {{type: integer, read_only: true}}
          code: string
          name: string
          unit_price: decimal
  erp:
    kind: memory
    label: Erp
    dataset: {dataset}
    entity_types:
      Org:
        external_ref: ext
        properties:
          Name: {{type: string}}
          OrgNo: {{type: string}}
          Mail: {{type: string}}
          Phone: {{type: string}}
          City: {{type: string{city_length}}}
      Person:
        external_ref: ext
        properties:
          Given: {{type: string}}
          Family: {{type: string}}
          Mail: {{type: string}}
          OrgId: {{type: reference, references: Org}}
      Item:
        external_ref: ext
        can_delete: {item_delete}
        properties:
          Code: {{type: string}}
          Title: {{type: string}}
          Price: {{type: {price_type}}}
dataflows:
  - source: crm.Customer
    target: erp.Org
    match: [[{{from: org_no, to: OrgNo}}]]
    properties:
      - {{from: name, to: Name, type: string}}
      - {{from: org_no, to: OrgNo, type: string}}
      - {{from: email, to: Mail, type: string}}
      - {{from: phone, to: Phone, type: string}}
      - {{from: address.city, to: City, type: string}}
  - source: crm.Contact
    target: erp.Person
    match: [[{{from: email, to: Mail, normalize: email}}]]
    properties:
      - {{from: first_name, to: Given, type: string}}
      - {{from: last_name, to: Family, type: string}}
      - {{from: email, to: Mail, type: string}}
      - {{from: customer_id, to: OrgId, type: reference}}
  - source: erp.Item
    target: crm.Product
    match: [[{{from: Code, to: code}}]]
    properties:
      - {{from: Code, to: code, type: string}}
      - {{from: Title, to: name, type: string}}
      - {{from: Price, to: unit_price, type: {price_mapping}}}
"""


class World:
    def __init__(self, box: CustomCrmSandbox, url: str, folder: Path) -> None:
        self.box = box
        self.url = url
        self.folder = folder
        self.name = f"erp-{uuid.uuid4().hex[:8]}"

    @property
    def erp(self) -> MemoryDataset:
        return dataset(self.name)

    def config(self, **options: Any) -> Path:
        values = {
            "url": self.url,
            "dataset": self.name,
            "city_length": "",
            "item_delete": "true",
            "price_type": "decimal",
            "price_mapping": "decimal",
            **options,
        }
        path = self.folder / "samband.yaml"
        path.write_text(CONFIG.format(**values), encoding="utf-8")
        return path

    def state(self) -> dict[str, Any]:
        """Every record of both systems (to compare before and after a QA run)."""
        crm = {name: self.box.records(name) for name in ("Customer", "Contact", "Product")}
        erp = {name: self.erp.records(name) for name in ("Org", "Person", "Item")}
        return copy.deepcopy({"crm": crm, "erp": erp})


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    box = CustomCrmSandbox()
    server: SandboxServer = box.serve()
    w = World(box, server.url, tmp_path)
    try:
        yield w
    finally:
        server.stop()
        forget_dataset(w.name)


def _seed(world: World) -> None:
    """Records a customer already has: QA must neither change nor link them."""
    world.box.seed(6, rng_seed=3)
    world.erp.insert("Org", {"Name": "Nordlys AS", "OrgNo": "987654325", "City": "Tromsø"})
    world.erp.insert("Item", {"Code": "P-1", "Title": "Konsulenttime", "Price": "950.50"})
    world.erp.insert("Person", {"Given": "Kari", "Family": "Lie", "Mail": "kari@fjord.no"})


def test_all_sections_pass_and_other_records_stay_untouched(world: World) -> None:
    _seed(world)
    path = world.config()
    before = world.state()
    lines: list[str] = []
    result = run_qa(path, echo=lines.append, environ=ENV)
    assert result.passed, "\n".join(lines)
    statuses = {(s.source, s.target): s.status for s in result.sections}
    assert statuses == {
        ("crm.Customer", "erp.Org"): PASSED,
        ("crm.Contact", "erp.Person"): PASSED,
        ("erp.Item", "crm.Product"): PASSED,
    }
    contact = next(s for s in result.sections if s.source == "crm.Contact")
    checks = {(p.target, p.check): p for p in contact.properties}
    # the reference arrived as the id of the linked parent; every string went both ways
    assert checks[("OrgId", "arrives in the target")].status == PASSED
    assert checks[("Given", "target edit flows back")].status == PASSED
    assert checks[("Given", "source edit flows forward")].status == PASSED
    assert checks[("Given", "arrives in the target")].expected.startswith("QA-")
    assert all(p.status != FAILED for s in result.sections for p in s.properties)
    # nothing QA created is left, and nothing else changed
    assert result.leftovers == []
    assert world.state() == before
    report = world.folder / "qa-report"
    assert sorted(p.name for p in report.iterdir()) == [
        "qa-crm-erp.html",
        "qa-crm-erp.rst",
        "qa-erp-crm.html",
        "qa-erp-crm.rst",
    ]
    rst = (report / "qa-crm-erp.rst").read_text(encoding="utf-8")
    assert ":Result: PASSED" in rst
    assert "Customcrm Contact to Erp Person: PASSED" in rst
    # the production store named in the config was never created
    assert not (world.folder / "production.db").exists()


def test_cli_fails_on_a_truncating_target_and_names_the_property(world: World) -> None:
    # the ERP's City holds 4 characters and the memory connector refuses longer values;
    # the lossy price mapping (decimal → integer) cannot round-trip either
    path = world.config(city_length=", max_length: 4", price_mapping="integer")
    out = world.folder / "out"
    runner = CliRunner()
    answer = runner.invoke(
        app, ["qa", "-c", str(path), "-o", str(out)], env=ENV, catch_exceptions=False
    )
    assert answer.exit_code == 1, answer.output
    rst = (out / "qa-crm-erp.rst").read_text(encoding="utf-8")
    assert ":Result: FAILED" in rst
    assert "Customcrm Customer to Erp Org: FAILED" in rst
    assert "City" in rst
    html = (out / "qa-erp-crm.html").read_text(encoding="utf-8")
    assert "FAILED" in html and "unit_price" in html
    result_rst = (out / "qa-erp-crm.rst").read_text(encoding="utf-8")
    assert "Erp Item to Customcrm Product: FAILED" in result_rst


def test_only_limits_the_sections(world: World) -> None:
    path = world.config()
    out = world.folder / "only"
    result = run_qa(path, only="erp-crm", output=out, echo=lambda _line: None, environ=ENV)
    assert result.passed
    assert [(s.source, s.target) for s in result.sections] == [("erp.Item", "crm.Product")]
    assert sorted(p.name for p in out.iterdir()) == ["qa-erp-crm.html", "qa-erp-crm.rst"]
    assert world.box.records("Customer") == {}


def test_only_with_an_unknown_document_is_one_clear_error(world: World) -> None:
    path = world.config()
    answer = CliRunner().invoke(app, ["qa", "-c", str(path), "--only", "crm-nowhere"], env=ENV)
    assert answer.exit_code != 0
    assert "crm-erp" in answer.output and "erp-crm" in answer.output


def test_leftovers_are_reported_for_a_type_without_delete(world: World) -> None:
    path = world.config(item_delete="false")
    result = run_qa(path, only="erp-crm", echo=lambda _line: None, environ=ENV)
    assert result.passed
    assert [left.ref.rsplit(":", 1)[0] for left in result.leftovers] == ["erp:Item"]
    assert "cannot be deleted" in result.leftovers[0].why or "not let" in result.leftovers[0].why
    # the Product the engine created in the custom CRM was removed; the Item remains
    assert world.box.records("Product") == {}
    remaining = world.erp.records("Item")
    assert len(remaining) == 1
    assert next(iter(remaining.values()))["Code"].startswith("QA-")
    rst = (path.parent / "qa-report" / "qa-erp-crm.rst").read_text(encoding="utf-8")
    assert "Test records left behind" in rst


PO_CONFIG = """
systems:
  crm:
    kind: rest
    label: Customcrm
    base_url: {crm_url}
    auth: bearer
    credentials: {{token: "${{QA_CRM_TOKEN}}"}}
    entity_types:
      Customer: {{path: customers, external_ref: external_ref}}
      Contact: {{path: contacts, external_ref: external_ref}}
      Product: {{path: products, external_ref: external_ref}}
  poweroffice:
    kind: poweroffice-go
    label: Powerofficego
    base_url: {po_url}/v2
    credentials:
      application_key: ${{PO_APP}}
      client_key: ${{PO_CLIENT}}
      subscription_key: ${{PO_SUB}}
dataflows:
  - source: crm.Customer
    target: poweroffice.Customers
    match: [[{{from: org_no, to: OrganizationNumber, normalize: digits}}]]
    properties:
      - {{from: name, to: Name, type: string}}
      - {{from: org_no, to: OrganizationNumber, type: string}}
      - {{from: email, to: EmailAddress, type: string}}
      - {{from: phone, to: PhoneNumber, type: string}}
      - {{from: address.city, to: MailAddress.City, type: string}}
      - {{from: address.zip_code, to: MailAddress.ZipCode, type: string}}
  - source: crm.Contact
    target: poweroffice.Contactperson
    match: [[{{from: email, to: EmailAddress, normalize: email}}]]
    properties:
      - {{from: first_name, to: FirstName, type: string}}
      - {{from: last_name, to: LastName, type: string}}
      - {{from: email, to: EmailAddress, type: string}}
      - {{from: customer_id, to: ContactId, type: reference{source_ref}}}
  - source: crm.Product
    target: poweroffice.Product
    match: [[{{from: code, to: Code}}]]
    properties:
      - {{from: code, to: Code, type: string}}
      - {{from: name, to: Name, type: string}}
      - {{from: unit_price, to: UnitPrice, type: decimal}}
"""
PO_ENV = {
    **ENV,
    "PO_APP": "sandbox-application-key",
    "PO_CLIENT": "sandbox-client-key",
    "PO_SUB": "sandbox-subscription-key",
}


@pytest.fixture
def poweroffice(world: World) -> Iterator[Any]:
    from samband.kinds.poweroffice_go.sandbox import PowerOfficeSandbox

    box = PowerOfficeSandbox()
    box.seed(5, 2)
    server = box.serve()
    try:
        yield box, server.url
    finally:
        server.stop()


def test_custom_crm_to_poweroffice_sandbox(world: World, poweroffice: Any) -> None:
    box, url = poweroffice
    world.box.seed(4, rng_seed=5)
    path = world.folder / "po.yaml"
    path.write_text(
        PO_CONFIG.format(crm_url=world.url, po_url=url, source_ref=", source_ref: Customer"),
        encoding="utf-8",
    )
    before = copy.deepcopy((box.tables, world.state()["crm"]))
    answer = CliRunner().invoke(app, ["qa", "-c", str(path)], env=PO_ENV, catch_exceptions=False)
    assert answer.exit_code == 0, answer.output
    assert copy.deepcopy((box.tables, world.state()["crm"])) == before
    rst = (world.folder / "qa-report" / "qa-crm-poweroffice.rst").read_text(encoding="utf-8")
    assert rst.count(": PASSED\n=") == 3  # one underlined title per section
    assert "FAILED" not in rst


def test_a_reference_the_engine_cannot_translate_fails_its_section(
    world: World, poweroffice: Any
) -> None:
    _box, url = poweroffice
    path = world.folder / "po.yaml"
    path.write_text(PO_CONFIG.format(crm_url=world.url, po_url=url, source_ref=""), "utf-8")
    lines: list[str] = []
    result = run_qa(path, only="crm-poweroffice", echo=lines.append, environ=PO_ENV)
    assert not result.passed
    statuses = {s.source: s.status for s in result.sections}
    assert statuses == {"crm.Customer": PASSED, "crm.Contact": FAILED, "crm.Product": PASSED}
    contact = next(s for s in result.sections if s.source == "crm.Contact")
    failed = [p.source for p in contact.properties if p.status == FAILED]
    assert failed == ["customer_id"]
    assert "source_ref" in next(p.reason for p in contact.properties if p.status == FAILED)
    assert result.leftovers == []


SQL_CONFIG = """
systems:
  src:
    kind: memory
    label: Source
    dataset: {dataset}
    entity_types:
      Company:
        external_ref: ext
        properties:
          name: {{type: string}}
          org: {{type: string}}
          city: {{type: string}}
          since: {{type: date}}
          staff: {{type: integer}}
      Lead:
        properties:
          org: {{type: string}}
          name: {{type: string}}
  pms:
    kind: sql
    label: Custom PMS
    url: sqlite:///pms.db
    entity_types:
      Customer: {{table: customer, id: id, updated: updated_at, external_ref: external_ref}}
dataflows:
  - source: src.Company
    target: pms.Customer
    match: [[{{from: org, to: org_no}}]]
    properties:
      - {{from: name, to: name, type: string}}
      - {{from: org, to: org_no, type: string}}
      - {{from: city, to: city, type: string}}
      - {{from: since, to: since, type: date}}
      - {{from: staff, to: staff, type: integer}}
  - source: src.Lead
    target: pms.Customer
    create: false
    match: [[{{from: org, to: org_no}}]]
    properties:
      - {{from: name, to: name, type: string}}
"""


def _pms(folder: Path, *, truncate: bool) -> Path:
    """A PMS database; with ``truncate`` its city column silently keeps 4 characters (as
    MySQL does outside strict mode)."""
    import sqlite3

    path = folder / "pms.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE customer (id INTEGER PRIMARY KEY AUTOINCREMENT, name VARCHAR(200),"
            " org_no VARCHAR(30), city VARCHAR(100), since DATE, staff INTEGER,"
            " external_ref VARCHAR(200), updated_at TIMESTAMP)"
        )
        db.execute(
            "INSERT INTO customer (name, org_no, city, updated_at)"
            " VALUES ('Fjord Data AS', '923609016', 'Bergen', '2025-01-01 10:00:00')"
        )
        if truncate:
            for event in ("INSERT", "UPDATE OF city"):
                db.execute(
                    f"CREATE TRIGGER cut_{event.split()[0].lower()} AFTER {event} ON customer"
                    " BEGIN UPDATE customer SET city = substr(city, 1, 4) WHERE id = NEW.id; END"
                )
    return path


def _rows(path: Path) -> list[tuple[Any, ...]]:
    import sqlite3

    with sqlite3.connect(path) as db:
        return db.execute("SELECT * FROM customer ORDER BY id").fetchall()


@pytest.mark.parametrize("truncate", [False, True])
def test_sql_target_and_a_link_only_dataflow(tmp_path: Path, truncate: bool) -> None:
    name = f"src-{uuid.uuid4().hex[:8]}"
    db = _pms(tmp_path, truncate=truncate)
    path = tmp_path / "samband.yaml"
    path.write_text(SQL_CONFIG.format(dataset=name), encoding="utf-8")
    before = _rows(db)
    try:
        result = run_qa(path, echo=lambda _line: None, environ={})
    finally:
        forget_dataset(name)
    assert _rows(db) == before
    assert result.leftovers == []
    company, lead = result.sections
    assert lead.status == PASSED  # linked by the merge criteria, the name flows both ways
    assert [p.check for p in lead.properties] == [
        "arrives in the target",
        "target edit flows back",
        "source edit flows forward",
    ]
    if not truncate:
        assert result.passed and company.status == PASSED
        return
    assert not result.passed and company.status == FAILED
    failed = {(p.target, p.check): p for p in company.properties if p.status == FAILED}
    assert set(failed) == {
        ("city", "arrives in the target"),
        ("city", "target edit flows back"),
        ("city", "source edit flows forward"),
    }
    created = failed[("city", "arrives in the target")]
    assert created.expected.startswith("QA-") and created.actual == created.expected[:4]
    assert "cut the value short" in created.reason


def test_the_guard_shows_and_changes_only_records_the_run_created() -> None:
    from samband.config import parse_config
    from samband.kinds.memory.connector import MemoryConnector
    from samband.qa.guard import NotOwned, QaConnector

    text = "systems:\n  m: {kind: memory, entity_types: {Org: {}}}\n"
    config = parse_config(text).config
    inner = MemoryConnector("m", config.systems["m"], {})
    theirs = inner.dataset.insert("Org", {"name": "Nordlys AS"})
    guard = QaConnector(inner)
    ours = guard.create("Org", {"name": "QA-1"})
    assert [r.id for page in guard.read("Org", None) for r in page.records] == [ours.id]
    guard.update("Org", ours.id, {"name": "QA-2"})
    for action in (
        lambda: guard.update("Org", theirs, {"name": "x"}),
        lambda: guard.delete("Org", theirs),
        lambda: guard.archive("Org", theirs),
    ):
        with pytest.raises(NotOwned):
            action()
    assert inner.dataset.records("Org")[theirs]["name"] == "Nordlys AS"
    assert guard.log == [("m", "Org", ours.id)]


def _tables(box: Any) -> dict[str, dict[str, Any]]:
    """Live records of a sandbox, per collection (copies)."""
    result: dict[str, dict[str, Any]] = {}
    for name, rows in box.tables.items():
        live = {}
        for rid, row in rows.items():
            data = getattr(row, "data", row)
            if getattr(row, "deleted", False) or data.get("deleted") is True:
                continue
            live[str(rid)] = copy.deepcopy(data)
        result[name] = live
    return result


def test_the_shipped_example_on_all_six_sandboxes_touches_nothing_else(tmp_path: Path) -> None:
    """Every section of examples/samband.yaml against the demo's sandboxes: the executable
    ones pass, the read-only Exact types are skipped, and every record that existed before
    is unchanged afterwards; what remains is what the report names."""
    from samband.demo import EXAMPLE, start_world, token_key

    with token_key():
        world = start_world(tmp_path / "world", 10)
        try:
            before = {sid: _tables(box) for sid, box in world.boxes.items()}
            pms = {t: world.pms(f"SELECT * FROM {t} ORDER BY id") for t in ("customer", "project")}
            result = run_qa(
                EXAMPLE,
                output=tmp_path / "qa",
                echo=lambda _line: None,
                environ=world.environ,
                state_dir=world.state_dir,
            )
            after = {sid: _tables(box) for sid, box in world.boxes.items()}
            pms_after = {
                t: world.pms(f"SELECT * FROM {t} ORDER BY id") for t in ("customer", "project")
            }
        finally:
            world.close()
    failed = [(s.title, s.messages, s.properties) for s in result.sections if s.status == FAILED]
    assert result.passed, failed
    skipped = sorted(s.source for s in result.sections if s.status == "skipped")
    assert skipped == ["exact.Departments", "exact.Divisions"]
    assert pms_after == pms
    left = {left.ref for left in result.leftovers}
    for sid, collections in before.items():
        for name, records in collections.items():
            now = after[sid][name]
            assert {rid: now.get(rid) for rid in records} == records, f"{sid}.{name} changed"
            new = set(now) - set(records)
            # what is new is only what the report says was left behind (archived)
            assert all(
                any(ref.startswith(f"{sid}:") and ref.endswith(f":{rid}") for ref in left)
                for rid in new
            ), (sid, name, new)
    assert left and all(left_.archived for left_ in result.leftovers)
    assert len(list((tmp_path / "qa").glob("qa-*.html"))) == 5


def test_a_system_that_is_not_running_is_one_clear_error_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    world = World(CustomCrmSandbox(), f"http://127.0.0.1:{port}", tmp_path)
    path = world.config()
    answer = CliRunner().invoke(app, ["qa", "-c", str(path)], env=ENV)
    assert answer.exit_code != 0
    assert "crm" in answer.output and str(port) in answer.output
    assert not (tmp_path / "qa-report").exists()


def test_a_reference_mapped_as_a_plain_integer_fails_naming_it(world: World) -> None:
    path = world.config()
    text = path.read_text(encoding="utf-8").replace(
        "{from: customer_id, to: OrgId, type: reference}",
        "{from: customer_id, to: OrgId, type: integer}",
    )
    path.write_text(text, encoding="utf-8")
    result = run_qa(path, only="crm-erp", echo=lambda _line: None, environ=ENV)
    contact = next(s for s in result.sections if s.source == "crm.Contact")
    assert contact.status == FAILED
    failed = [p for p in contact.properties if p.status == FAILED]
    assert [(p.source, p.check) for p in failed] == [("customer_id", "arrives in the target")]
    assert "type: reference" in failed[0].reason
    assert result.leftovers == []


def test_console_lines_quote_api_answers_without_rich_markup() -> None:
    import io

    from rich.console import Console

    from samband.qa import _plain

    stream = io.StringIO()
    _plain(Console(file=stream, width=200).print)("refused: [/x] is not [bold]markup[/bold]")
    assert stream.getvalue().strip() == "refused: [/x] is not [bold]markup[/bold]"


def test_only_needs_the_credentials_of_its_own_systems(world: World) -> None:
    path = world.config()
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        "dataflows:\n",
        "  elsewhere:\n"
        "    kind: rest\n"
        "    base_url: http://127.0.0.1:9\n"
        "    auth: bearer\n"
        '    credentials: {token: "${QA_TOKEN_NOBODY_SET}"}\n'
        "    entity_types: {Org: {path: orgs}}\n"
        "dataflows:\n"
        "  - source: erp.Org\n"
        "    target: elsewhere.Org\n"
        "    properties: [{from: Name, to: name, type: string}]\n",
    )
    path.write_text(text, encoding="utf-8")
    result = run_qa(path, only="crm-erp", echo=lambda _line: None, environ=ENV)
    assert result.passed
    assert [s.source for s in result.sections] == ["crm.Customer", "crm.Contact"]
    answer = CliRunner().invoke(app, ["qa", "-c", str(path), "--only", "erp-elsewhere"], env=ENV)
    assert answer.exit_code != 0 and "QA_TOKEN_NOBODY_SET" in answer.output


def test_cli_json_prints_the_result(world: World) -> None:
    path = world.config()
    answer = CliRunner().invoke(
        app,
        ["qa", "-c", str(path), "--only", "erp-crm", "-o", str(world.folder / "j"), "--json"],
        env=ENV,
    )
    assert answer.exit_code == 0, answer.output
    result = json.loads(answer.stdout)
    assert result["passed"] is True
    (document,) = result["documents"]
    assert [(s["source"], s["target"]) for s in document["sections"]] == [
        ("erp.Item", "crm.Product")
    ]
    assert all(p["status"] == PASSED for p in document["sections"][0]["properties"])
