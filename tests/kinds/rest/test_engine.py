"""The custom CRM sandbox (``kind: rest``) synced with a memory system through the Engine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from samband.config import parse_config
from samband.engine.run import Engine
from samband.kinds.memory.connector import MemoryDataset, dataset, forget_dataset
from samband.kinds.rest.sandbox import DEFAULT_TOKEN, CustomCrmSandbox
from samband.sandbox._base import SandboxServer

CONFIG = """
store: {store}
systems:
  crm:
    kind: rest
    label: Custom CRM
    base_url: {url}
    auth: bearer
    credentials: {{token: "${{CRM_TOKEN}}"}}
    entity_types:
      Customer:
        path: customers
        external_ref: external_ref
        properties:
          name: string
          org_no: string
          email: string
          address.city: string
      Contact:
        path: contacts
        external_ref: external_ref
        properties:
          first_name: string
          last_name: string
          email: string
          customer_id: {{type: reference, references: Customer}}
      Product:
        path: products
        external_ref: external_ref
        properties:
          code: string
          name: string
          unit_price: decimal
  erp:
    kind: memory
    dataset: {dataset}
    entity_types:
      Org: {{external_ref: ext}}
      Person: {{external_ref: ext}}
      Item: {{external_ref: ext}}
dataflows:
  - source: crm.Customer
    target: erp.Org
    match: [[{{from: org_no, to: OrgNo}}]]
    properties:
      - {{from: name, to: Name, type: string}}
      - {{from: org_no, to: OrgNo, type: string}}
      - {{from: email, to: Mail, type: string}}
      - {{from: address.city, to: City, type: string}}
  - source: crm.Contact
    target: erp.Person
    match: [[{{from: email, to: Mail, normalize: email}}]]
    properties:
      - {{from: first_name, to: Given, type: string}}
      - {{from: last_name, to: Family, type: string}}
      - {{from: email, to: Mail, type: string}}
      - {{from: customer_id, to: OrgId, type: reference, source_ref: Customer, target_ref: Org}}
  - source: erp.Item
    target: crm.Product
    match: [[{{from: Code, to: code}}]]
    properties:
      - {{from: Code, to: code, type: string}}
      - {{from: Title, to: name, type: string}}
      - {{from: Price, to: unit_price, type: decimal}}
"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[CustomCrmSandbox, MemoryDataset, Engine]]:
    box = CustomCrmSandbox()
    server: SandboxServer = box.serve()
    name = f"erp-{uuid.uuid4().hex[:8]}"
    text = CONFIG.format(store=f"sqlite:///{tmp_path / 'state.db'}", url=server.url, dataset=name)
    config = parse_config(text).config
    engine = Engine(config, environ={"CRM_TOKEN": DEFAULT_TOKEN}, state_dir=str(tmp_path))
    try:
        yield box, dataset(name), engine
    finally:
        engine.close()
        server.stop()
        forget_dataset(name)


def _only(records: dict[Any, dict[str, Any]], **where: Any) -> dict[str, Any]:
    found = [r for r in records.values() if all(r.get(k) == v for k, v in where.items())]
    assert len(found) == 1, f"{where}: {found}"
    return found[0]


def test_custom_crm_and_memory_converge_both_ways(
    world: tuple[CustomCrmSandbox, MemoryDataset, Engine],
) -> None:
    box, erp, engine = world
    fjord = box.insert(
        "Customer",
        {"name": "Fjord Data AS", "org_no": "923609016", "address": {"city": "Bergen"}},
    )
    box.insert("Contact", {"first_name": "Kari", "last_name": "Lie", "email": "kari@fjord.no"})
    box.edit("Contact", 1, {"customer_id": fjord["id"]})
    # already in the ERP: linked by org number, not created again
    erp.insert("Org", {"Name": "Nordlys AS", "OrgNo": "987654325", "City": "Tromsø"})
    box.insert("Customer", {"name": "Nordlys AS", "org_no": "987654325"})
    erp.insert("Item", {"Code": "P-1", "Title": "Konsulenttime", "Price": "950.50"})

    first = engine.sync()
    assert first.status == "ok", first.messages
    counts = first.to_dict()
    assert (counts["created"], counts["linked"], counts["errors"]) == (3, 1, 0)
    org = _only(erp.records("Org"), OrgNo="923609016")
    assert (org["Name"], org["City"], org["ext"]) == ("Fjord Data AS", "Bergen", "crm:Customer:1")
    assert len(erp.records("Org")) == 2
    person = _only(erp.records("Person"), Mail="kari@fjord.no")
    assert str(person["OrgId"]) == str(org["id"])
    product = _only(box.records("Product"), code="P-1")
    assert (product["name"], product["unit_price"]) == ("Konsulenttime", 950.5)
    assert product["external_ref"].startswith("erp:Item:")

    # edits both ways: in the custom CRM, and in the ERP (flowing back through PATCH)
    box.edit("Customer", fjord["id"], {"address": {"city": "Oslo"}})
    nordlys = _only(erp.records("Org"), OrgNo="987654325")
    erp.edit("Person", str(person["id"]), {"Given": "Kari Anne", "OrgId": str(nordlys["id"])})
    item_id = next(iter(erp.records("Item")))
    erp.edit("Item", item_id, {"Price": "990"})
    second = engine.sync()
    assert second.status == "ok", second.messages
    assert second.to_dict()["updated"] == 3
    assert _only(erp.records("Org"), OrgNo="923609016")["City"] == "Oslo"
    assert box.records("Contact")[1]["first_name"] == "Kari Anne"
    # the reference came back translated, as the integer id the custom CRM wants
    nordlys_crm = _only(box.records("Customer"), org_no="987654325")
    assert box.records("Contact")[1]["customer_id"] == nordlys_crm["id"]
    assert box.records("Product")[product["id"]]["unit_price"] == 990

    # a delete in the custom CRM arrives as a tombstone and unlinks (default policy)
    box.remove("Contact", 1)
    engine.sync()

    quiet = engine.sync()
    assert quiet.status == "ok", quiet.messages
    assert quiet.writes == 0, quiet.to_dict()
    assert quiet.to_dict()["errors"] == 0
