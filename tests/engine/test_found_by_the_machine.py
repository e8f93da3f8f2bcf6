"""Engine bugs the convergence machine (tests/support/machines.py) and the adversarial
tester found, each as a small deterministic scenario on memory systems."""

from __future__ import annotations

from samband.config import parse_config
from samband.engine.run import Engine
from samband.kinds.memory.connector import dataset
from tests.support.convergence import EditDuringTheRun

SYSTEMS = """
systems:
  crm:
    kind: memory
    entity_types: {Customer: {}}
  erp:
    kind: memory
    entity_types: {Account: {external_ref: ext}}
"""


def engine_for(store_url: str, flows: str) -> Engine:
    return Engine(parse_config(f"store: {store_url}\n{SYSTEMS}dataflows:\n{flows}").config)


def sync(store_url: str, flows: str) -> dict[str, object]:
    with engine_for(store_url, flows) as engine:
        report = engine.sync()
        assert report.status == "ok", report.messages
        return report.to_dict()


# -- A: a dataflow renamed, then renamed back -------------------------------------------
NO_ID = """
  - source: crm.Customer
    target: erp.Account
    properties: [{from: name, to: name, type: string}]
"""
WITH_ID = "  - id: customers" + NO_ID.replace("  - source", "    source", 1)


def test_a_dataflow_that_loses_its_id_and_gets_it_back_keeps_its_links(store_url: str) -> None:
    """The rename's new key was not recorded (the run only remembered it in memory), so
    renaming back found no dataflow to take the links over from, and created again."""
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme"})
    assert sync(store_url, WITH_ID)["created"] == 1
    assert sync(store_url, NO_ID)["created"] == 0
    crm.edit("Customer", "1", {"name": "Acme AS"})
    report = sync(store_url, WITH_ID)
    assert report["created"] == 0, report
    assert [a["name"] for a in erp.records("Account").values()] == ["Acme AS"]


# -- B: an edit made during a run, to a record an update found stale --------------------
BY_ORG = """
  - source: crm.Customer
    target: erp.Account
    match: [[{from: org, to: org}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
"""


def test_a_record_found_edited_during_the_run_is_not_written_from_what_was_read(
    store_url: str,
) -> None:
    """The update of the source found it edited since the read (stale): it was queued to
    be read again, but the target's chunk planned the pair from the stored snapshot (as
    read before the edit) and wrote the target's name over the edit, unchecked."""
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "", "org": "911111111"})
    erp.insert("Account", {"name": "Acme", "org": "911111111"})
    with engine_for(store_url, BY_ORG) as engine:
        # linked by the org number: the name only the ERP has flows back to the CRM; a
        # user enters another name in the CRM after the read, before that write
        edit = EditDuringTheRun(lambda: crm.edit("Customer", "1", {"name": "Müller"}))
        engine.sync(progress=edit)
        conflicts = engine.store().conflicts_rows()
        name = crm.records("Customer")["1"]["name"]
        assert name == "Müller" or any("Müller" in str(row) for row in conflicts), (name, conflicts)
        engine.sync()
        assert crm.records("Customer")["1"]["name"] == erp.records("Account")["1"]["name"]
        assert engine.sync().writes == 0
