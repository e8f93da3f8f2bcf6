"""The actions on what a run shows, through the Python API (the Inspector), on SQLite and
PostgreSQL: with dataflows each way between two types, an unlinked pair is linked again
by neither and created by neither; linked by hand it is one link group again; a resolved
conflict's value reaches both records; a type read again creates nothing."""

from __future__ import annotations

from samband.config import parse_config
from samband.engine.inspect import Inspector
from samband.engine.run import Engine
from samband.kinds.memory.connector import dataset

EACH_WAY = """
systems:
  crm: {kind: memory, entity_types: {Customer: {external_ref: ext}}}
  erp: {kind: memory, entity_types: {Account: {external_ref: ext}}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    match: [[{from: org, to: org}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
  - source: erp.Account
    target: crm.Customer
    match: [[{from: org, to: org}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
"""


def _sync(store: str) -> dict[str, object]:
    with Engine(parse_config(f"store: {store}\n{EACH_WAY}").config) as engine:
        report = engine.sync()
        assert report.status == "ok", report.messages
        return report.to_dict()


def _inspector(store: str) -> Inspector:
    return Inspector(parse_config(f"store: {store}\n{EACH_WAY}").config)


def test_unlink_then_link_each_way(store: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    erp.insert("Account", {"name": "Acme ERP", "org": "1"})
    _sync(store)
    with _inspector(store) as inspector:
        done = inspector.unlink("crm:Customer:1")
        assert {(p["source"], p["target"]) for p in done["unlinked"]} == {
            ("crm:Customer:1", "erp:Account:1"),
            ("erp:Account:1", "crm:Customer:1"),
        }
    crm.edit("Customer", "1", {"name": "Acme AS"})
    erp.edit("Account", "1", {"name": "Acme ERP AS"})
    for _ in range(2):
        report = _sync(store)
        assert (report["linked"], report["created"]) == (0, 0)
    assert len(crm.records("Customer")) == 1 and len(erp.records("Account")) == 1
    assert erp.records("Account")["1"]["name"] == "Acme ERP AS"
    with _inspector(store) as inspector:
        assert [m["ref"] for m in inspector.links("crm:Customer:1")] == ["crm:Customer:1"]
        inspector.link("erp:Account:1", "crm:Customer:1")
        assert {m["ref"] for m in inspector.links("crm:Customer:1")} == {
            "crm:Customer:1",
            "erp:Account:1",
        }
        ops = [row["op"] for row in inspector.history("crm:Customer:1")]
        assert "unlink" in ops and "link" in ops
    _sync(store)
    assert crm.records("Customer")["1"]["name"] == erp.records("Account")["1"]["name"]
    assert len(crm.records("Customer")) == 1 and len(erp.records("Account")) == 1
    assert _sync(store)["updated"] == 0


def test_resolve_and_resync(store: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    _sync(store)
    crm.edit("Customer", "1", {"name": "CRM side"})
    erp.edit("Account", "1", {"name": "ERP side"})  # later: the ERP wins
    assert _sync(store)["conflicts"] >= 1
    assert crm.records("Customer")["1"]["name"] == "ERP side"
    with _inspector(store) as inspector:
        conflict = next(c for c in inspector.conflicts() if c["property"] == "name")
        inspector.resolve(conflict["id"], "source" if conflict["winner"] == "target" else "target")
    _sync(store)
    assert crm.records("Customer")["1"]["name"] == "CRM side"
    assert erp.records("Account")["1"]["name"] == "CRM side"
    with _inspector(store) as inspector:
        inspector.resync("erp", "Account")
    report = _sync(store)
    assert report["collected"]["erp.Account"]["read"] == 1  # type: ignore[index]
    assert (report["created"], report["updated"]) == (0, 0)
