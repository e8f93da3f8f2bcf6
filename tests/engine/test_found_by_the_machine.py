"""Engine bugs the convergence machine (tests/support/machines.py) and the adversarial
tester found, each as a small deterministic scenario on memory systems."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

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


# -- C: a record entered again while another target has its key -------------------------
def test_a_record_entered_again_takes_its_predecessors_target_over_a_new_twin(
    store_url: str,
) -> None:
    """A record deleted and entered again matched its predecessor's target and a target
    entered since with the same key: reported as ambiguous, and its predecessor's target
    was left without its counterpart."""
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "911111111"})
    erp.insert("Account", {"name": "Acme", "org": "911111111"})
    assert sync(store_url, BY_ORG)["linked"] == 1
    crm.remove("Customer", "1")
    again = crm.insert("Customer", {"name": "Acme", "org": "911111111"})
    erp.insert("Account", {"name": "Acme (new)", "org": "911111111"})
    sync(store_url, BY_ORG)
    with engine_for(store_url, BY_ORG) as engine:
        links = engine.store().links_by(
            "crm.Customer->erp.Account", "source", [f"crm:Customer:{again}"]
        )
        assert [link.target_ref for link in links.values()] == ["erp:Account:1"]


def test_a_record_entered_again_takes_its_predecessors_target_over_a_later_twin(
    store_url: str,
) -> None:
    """A record deleted and entered again, then another record entered with its key, in
    one interval: the later twin came first in the chunk (its id sorts first), took the
    predecessor's target, and the record entered again was reported as its duplicate."""
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "911111111"})
    assert sync(store_url, BY_ORG)["created"] == 1
    crm.remove("Customer", "1")
    # one clock tick per write: the twin is entered after the record entered again
    ticks = itertools.count(1)
    crm.clock = lambda: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=next(ticks))
    again = crm.insert("Customer", {"name": "Acme", "org": "911111111"})
    twin = crm.insert("Customer", {"id": "0009", "name": "Acme twin", "org": "911 111 111"})
    assert sorted([again, twin]) == [twin, again]
    report = sync(store_url, BY_ORG)
    assert (report["created"], report["ambiguous"]) == (0, 1), report
    assert list(erp.records("Account")) == ["1"]
    with engine_for(store_url, BY_ORG) as engine:
        store = engine.store()
        links = store.links_by(
            "crm.Customer->erp.Account", "source", [f"crm:Customer:{again}", "crm:Customer:0009"]
        )
        assert {ref: link.target_ref for ref, link in links.items()} == {
            f"crm:Customer:{again}": "erp:Account:1"
        }
        (letter,) = store.dead_letters()
        assert letter["ref"] == "crm:Customer:0009"
        assert f"crm:Customer:{again}" in letter["reason"], letter


# -- E: a second source record with the key of one already linked ------------------------
def test_a_second_source_record_with_a_linked_key_is_reported_not_created(
    store_url: str,
) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    erp.insert("Account", {"name": "Acme", "org": "911111111"})
    crm.insert("Customer", {"name": "Acme", "org": "911111111"})
    assert sync(store_url, BY_ORG)["linked"] == 1
    twin = crm.insert("Customer", {"name": "Acme again", "org": "911111111"})
    report = sync(store_url, BY_ORG)
    assert (report["created"], report["ambiguous"]) == (0, 1)
    assert len(erp.records("Account")) == 1
    with engine_for(store_url, BY_ORG) as engine:
        (letter,) = engine.store().dead_letters()
        assert letter["ref"] == f"crm:Customer:{twin}"
        assert "crm:Customer:1" in letter["reason"], letter
        assert sync(store_url, BY_ORG)["created"] == 0


def test_two_new_source_records_with_one_key_create_one_target(store_url: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "911111111"})
    crm.insert("Customer", {"name": "Acme again", "org": "911111111"})
    report = sync(store_url, BY_ORG)
    assert (report["created"], report["ambiguous"]) == (1, 1)
    assert len(erp.records("Account")) == 1
    assert sync(store_url, BY_ORG)["created"] == 0


# -- D: a propagated deletion of one of two sources of one target -------------------------
TWO_SOURCES = """
systems:
  crm:
    kind: memory
    entity_types: {Customer: {}}
  shop:
    kind: memory
    entity_types: {Client: {}}
  erp:
    kind: memory
    entity_types: {Account: {external_ref: ext}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    on_delete: propagate
    match: [[{from: org, to: org}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
  - source: shop.Client
    target: erp.Account
    on_delete: propagate
    match: [[{from: org, to: org}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
"""


def test_a_propagated_deletion_keeps_a_target_another_source_still_links_to(
    store_url: str,
) -> None:
    """The shop's deletion deleted the account the CRM customer is still linked to (and
    it was never created again)."""
    crm, shop, erp = dataset("crm"), dataset("shop"), dataset("erp")
    crm.insert("Customer", {"name": "Acme AS", "org": "912345678"})
    shop.insert("Client", {"name": "Acme AS", "org": "912345678"})

    def run() -> dict[str, object]:
        config = parse_config(f"store: {store_url}\n{TWO_SOURCES}").config
        with Engine(config) as engine:
            report = engine.sync()
            assert report.status == "ok", report.messages
            return report.to_dict()

    run()
    assert len(erp.records("Account")) == 1
    shop.remove("Client", "1")
    report = run()
    assert report["deleted"] == 0
    assert any("crm:Customer:1" in str(m) for m in report["messages"]), report["messages"]  # type: ignore[union-attr]
    assert list(erp.records("Account")) == ["1"]
    config = parse_config(f"store: {store_url}\n{TWO_SOURCES}").config
    with Engine(config) as engine:
        store = engine.store()
        assert [(link.source_ref, link.target_ref) for link in store.all_links()] == [
            ("crm:Customer:1", "erp:Account:1")
        ]
    # once the last source is deleted too, the policy applies
    crm.remove("Customer", "1")
    assert run()["deleted"] == 1
    assert erp.records("Account") == {}
