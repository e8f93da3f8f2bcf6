"""No duplicate from what the store or the systems already know (adversary, round 2):
dataflows each way between two types (and a cycle of three), a source deleted and restored
with its id, a store restored from an older copy, a target entered after its source under
``create: false``, and a system whose key was renamed in the config."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from samband.config import parse_config
from samband.engine.run import Engine
from samband.errors import ConfigError
from samband.kinds.memory.connector import dataset


def _engine(store: str, text: str, **options: object) -> Engine:
    return Engine(parse_config(f"store: {store}\n{text}").config, **options)  # type: ignore[arg-type]


EACH_WAY = """
systems:
  crm: {kind: memory, entity_types: {Customer: {external_ref: ext}}}
  erp: {kind: memory, entity_types: {Account: {external_ref: ext}}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    properties:
      - {from: name, to: name, type: string}
  - source: erp.Account
    target: crm.Customer
    properties:
      - {from: name, to: name, type: string}
"""


@pytest.mark.parametrize("chunk_size", [500, 1])
def test_dataflows_each_way_create_each_record_once(store: str, chunk_size: int) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Only in CRM"})
    erp.insert("Account", {"name": "Only in ERP"})
    for _ in range(2):
        with _engine(store, EACH_WAY, chunk_size=chunk_size) as engine:
            report = engine.sync()
            assert report.status == "ok", report.messages
    assert sorted(c["name"] for c in crm.records("Customer").values()) == [
        "Only in CRM",
        "Only in ERP",
    ]
    assert sorted(a["name"] for a in erp.records("Account").values()) == [
        "Only in CRM",
        "Only in ERP",
    ]
    with _engine(store, EACH_WAY) as engine:
        assert engine.sync().writes == 0
        # every record is linked in both dataflows, each pair once
        assert len(engine.store().all_links()) == 4
    # an edit still flows
    (rid,) = [k for k, c in crm.records("Customer").items() if c["name"] == "Only in ERP"]
    crm.edit("Customer", rid, {"name": "Renamed in CRM"})
    with _engine(store, EACH_WAY) as engine:
        engine.sync()
    assert "Renamed in CRM" in [a["name"] for a in erp.records("Account").values()]
    assert len(erp.records("Account")) == 2


CYCLE = """
systems:
  a: {kind: memory, entity_types: {Thing: {}}}
  b: {kind: memory, entity_types: {Thing: {}}}
  c: {kind: memory, entity_types: {Thing: {}}}
dataflows:
  - {source: a.Thing, target: b.Thing, properties: [{from: name, to: name, type: string}]}
  - {source: b.Thing, target: c.Thing, properties: [{from: name, to: name, type: string}]}
  - {source: c.Thing, target: a.Thing, properties: [{from: name, to: name, type: string}]}
"""


def test_a_cycle_of_three_dataflows_creates_each_record_once(store: str) -> None:
    systems = [dataset(name) for name in "abc"]
    systems[0].insert("Thing", {"name": "from a"})
    systems[2].insert("Thing", {"name": "from c"})
    for _ in range(2):
        with _engine(store, CYCLE) as engine:
            assert engine.sync().status == "ok"
    for system in systems:
        assert sorted(t["name"] for t in system.records("Thing").values()) == ["from a", "from c"]


WITH_MATCH = """
systems:
  crm: {kind: memory, entity_types: {Customer: {}}}
  erp: {kind: memory, entity_types: {Account: {}}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    match: [[{from: org, to: org}]]
    properties: [{from: name, to: name, type: string}, {from: org, to: org, type: string}]
  - source: erp.Account
    target: crm.Customer
    match: [[{from: org, to: org}]]
    properties: [{from: name, to: name, type: string}, {from: org, to: org, type: string}]
"""


def test_dataflows_each_way_with_merge_criteria_still_create_once(store: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "911111111"})
    erp.insert("Account", {"name": "Beta", "org": "922222222"})
    for _ in range(2):
        with _engine(store, WITH_MATCH) as engine:
            engine.sync()
    assert len(crm.records("Customer")) == 2
    assert len(erp.records("Account")) == 2


STAMPED = """
systems:
  crm: {kind: memory, entity_types: {Customer: {}}}
  erp: {kind: memory, entity_types: {Account: {external_ref: ext}}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    properties:
      - {from: name, to: name, type: string}
"""


def test_a_source_restored_with_its_id_is_linked_to_the_target_stamped_with_it(
    store: str,
) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme"})
    with _engine(store, STAMPED) as engine:
        engine.sync()
        crm.remove("Customer", "1")
        engine.sync()  # unlinked (the default policy): the account stays
        crm.put("Customer", "1", {"id": 1, "name": "Acme"})  # restored from the trash
        report = engine.sync()
        assert report.status == "ok", report.messages
        assert report.total().created == 0
        engine.sync()
        (link,) = engine.store().all_links()
        assert (link.source_ref, link.target_ref) == ("crm:Customer:1", "erp:Account:1")
    assert list(erp.records("Account")) == ["1"]


def test_a_store_restored_from_an_older_copy_creates_nothing_again(
    tmp_path: Path,
) -> None:
    db = tmp_path / "state.db"
    store = f"sqlite:///{db}"
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme"})
    with _engine(store, STAMPED) as engine:
        engine.sync()
    shutil.copy(db, tmp_path / "backup.db")
    crm.insert("Customer", {"name": "Beta"})
    with _engine(store, STAMPED) as engine:
        engine.sync()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copy(tmp_path / "backup.db", db)
    with _engine(store, STAMPED) as engine:
        report = engine.sync()
        assert report.total().created == 0, report.to_dict()
        assert report.total().linked == 1
        assert engine.sync().writes == 0
    assert sorted(a["name"] for a in erp.records("Account").values()) == ["Acme", "Beta"]


LINK_ONLY = """
systems:
  crm: {kind: memory, entity_types: {Customer: {}}}
  erp: {kind: memory, entity_types: {Account: {}}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    create: false
    match: [[{from: org, to: org}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
      - {from: city, to: city, type: string}
"""


@pytest.mark.parametrize("edited", [False, True])
def test_a_target_entered_after_its_source_is_linked_under_create_false(
    store: str, edited: bool
) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "912345678", "city": "Oslo"})
    with _engine(store, LINK_ONLY) as engine:
        engine.sync()
        if edited:  # entered without the org number, which is filled in later
            erp.insert("Account", {"name": "Acme"})
            engine.sync()
            erp.edit("Account", "1", {"org": "912 345 678"})
        else:
            erp.insert("Account", {"name": "Acme", "org": "912345678"})
        report = engine.sync()
        assert report.status == "ok", report.messages
        assert report.total().linked == 1
        assert engine.sync().writes == 0
    assert erp.records("Account")["1"]["city"] == "Oslo"


def test_a_source_left_unlinked_by_an_older_version_is_linked_too(store: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "912345678", "city": "Oslo"})
    with _engine(store, LINK_ONLY) as engine:
        engine.sync()
        engine.compile()
        (flow,) = engine.flows
        with engine.store().tx():  # as a store of the version before the waiting index
            engine.store().drop_match_index(flow.wait_index(0))
    erp.insert("Account", {"name": "Acme", "org": "912345678"})
    with _engine(store, LINK_ONLY) as engine:
        assert engine.sync().total().linked == 1
    assert erp.records("Account")["1"]["city"] == "Oslo"


def _renamed(name: str) -> str:
    return f"""
systems:
  {name}: {{kind: memory, dataset: crmdata, entity_types: {{Customer: {{}}}}}}
  erp: {{kind: memory, entity_types: {{Account: {{external_ref: ext}}}}}}
dataflows:
  - source: {name}.Customer
    target: erp.Account
    properties:
      - {{from: name, to: name, type: string}}
"""


def test_a_system_renamed_in_the_config_is_refused_before_anything_is_written(
    store: str,
) -> None:
    crm, erp = dataset("crmdata"), dataset("erp")
    for name in ("Acme", "Beta"):
        crm.insert("Customer", {"name": name})
    with _engine(store, _renamed("crm")) as engine:
        engine.sync()
    with _engine(store, _renamed("salescrm")) as engine, pytest.raises(ConfigError) as refused:
        engine.sync()
    message = str(refused.value)
    assert "crm" in message and "salescrm" in message
    assert "\n" not in message
    assert len(erp.records("Account")) == 2
    # the old key back: nothing to do
    with _engine(store, _renamed("crm")) as engine:
        report = engine.sync()
        assert report.status == "ok" and report.writes == 0


def test_a_new_system_like_one_gone_runs_with_force(store: str) -> None:
    dataset("crmdata").insert("Customer", {"name": "Acme"})
    with _engine(store, _renamed("crm")) as engine:
        engine.sync()
    with _engine(store, _renamed("salescrm")) as engine:
        assert engine.sync(force=True).status == "ok"  # another system, as the user says
    with _engine(store, _renamed("salescrm")) as engine:
        assert engine.sync().status == "ok"  # known to the store now: no refusal
