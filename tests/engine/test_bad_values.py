"""One bad value costs one record, never the run: a NUL character in a merge-criteria value
on a PostgreSQL store (the adversary's f13), a lone surrogate in a source (f22)."""

from __future__ import annotations

from samband.config import parse_config
from samband.engine.inspect import Inspector
from samband.engine.run import Engine
from samband.kinds.memory.connector import dataset

CONFIG = """
systems:
  crm: {kind: memory, entity_types: {Customer: {}}}
  erp: {kind: memory, entity_types: {Account: {external_ref: ext}}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    match: [[{from: name, to: name}]]
    properties:
      - {from: name, to: name, type: string}
"""


def engine_for(store: str) -> Engine:
    return Engine(parse_config(f"store: {store}\n{CONFIG}").config)


def names() -> list[str]:
    return sorted(a["name"] for a in dataset("erp").records("Account").values())


def test_a_nul_character_in_a_merge_key_is_stored_safely(store: str) -> None:
    crm = dataset("crm")
    crm.insert("Customer", {"name": "Good one"})
    crm.insert("Customer", {"name": "Bad\x00one"})
    crm.insert("Customer", {"name": "Another \uffff good"})
    # a target that holds the same name with a NUL is matched, not created again
    dataset("erp").insert("Account", {"name": "Bad\x00one"})
    with engine_for(store) as engine:
        report = engine.sync().to_dict()
        assert report["status"] == "ok", report["messages"]
        assert (report["created"], report["linked"], report["errors"]) == (2, 1, 0)
    assert names() == ["Another \uffff good", "Bad\x00one", "Good one"]
    with engine_for(store) as engine:  # and the next run has nothing to do
        report = engine.sync().to_dict()
        assert report["status"] == "ok" and report["created"] == report["updated"] == 0


def test_a_lone_surrogate_quarantines_its_record(store: str) -> None:
    crm = dataset("crm")
    crm.insert("Customer", {"name": "Good"})
    bad = crm.insert("Customer", {"name": "Caf\ud83d"})
    crm.insert("Customer", {"name": "Good 2"})
    with engine_for(store) as engine:
        report = engine.sync().to_dict()
        assert report["status"] == "ok", report["messages"]
        assert report["created"] == 2 and report["errors"] == 1
    assert names() == ["Good", "Good 2"]
    with Inspector(engine_for(store).config) as inspector:
        errors = inspector.errors()
    assert [e["ref"] for e in errors] == [f"crm:Customer:{bad}"]
    assert "name contains an unpaired surrogate" in errors[0]["reason"]
    # corrected in its system, it is synced
    crm.edit("Customer", bad, {"name": "Café"})
    with engine_for(store) as engine:
        assert engine.sync().to_dict()["created"] == 1
    assert names() == ["Café", "Good", "Good 2"]
