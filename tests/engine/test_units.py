"""Unit tests of the engine's stages and guarantees, on memory systems."""

from __future__ import annotations

import pytest

from samband.config import parse_config
from samband.engine.model import normalize
from samband.engine.run import Engine
from samband.errors import CircuitBreakerTripped
from samband.kinds.memory.connector import dataset
from samband.store import schema as s
from tests.support.convergence import SimulatedCrash
from tests.support.engine import ACCOUNTS, SYSTEMS, engine_for

# customers to accounts, and their contacts to persons with a reference to the account
CONTACTS = """
dataflows:
  - source: crm.Customer
    target: erp.Account
    properties: [{from: name, to: name, type: string}]
  - source: crm.Contact
    target: erp.Person
    properties:
      - {from: name, to: name, type: string}
      - {from: customer_id, to: account_id, type: reference, source_ref: Customer,
         target_ref: Account}
"""


def test_normalisers() -> None:
    assert normalize(" 912 345 678 ", "orgno") == "912345678"
    assert normalize("NO 912345678 MVA", "orgno") == "912345678"
    assert normalize(" Ola@Example.NO ", "email") == "ola@example.no"
    assert normalize("+47 22 33 44 55", "phone") == normalize("22334455", "phone")
    assert normalize("0047 22334455", "phone") == "22334455"
    assert normalize("   ", "trim") is None


def test_create_link_and_quiescence(store: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "912345678", "amount": "10.5"})
    crm.insert("Customer", {"name": "Fjord", "org": "987654321", "email": "POST@fjord.no"})
    erp.insert("Account", {"name": "Fjord AS", "org": "", "email": "post@fjord.no"})
    with engine_for(store, ACCOUNTS) as engine:
        report = engine.sync()
        counts = report.to_dict()
        assert (counts["created"], counts["linked"]) == (1, 1)
        accounts = {a["name"]: a for a in erp.records("Account").values()}
        assert set(accounts) == {"Acme", "Fjord"}
        assert accounts["Acme"]["amount"] == 10.5
        assert accounts["Acme"]["ext"] == "crm:Customer:1"
        assert engine.sync().writes == 0


def test_three_way_merge_both_directions_and_conflicts(store: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "1", "email": "a@a.no"})
    with engine_for(store, ACCOUNTS) as engine:
        engine.sync()
        erp.edit("Account", "1", {"email": "b@a.no"})  # target-side edit flows back
        crm.edit("Customer", "1", {"amount": 5})  # source-side edit flows forward
        engine.sync()
        assert crm.records("Customer")["1"]["email"] == "b@a.no"
        assert erp.records("Account")["1"]["amount"] == 5
        # both sides change one property: the later edit wins, the other is recorded
        crm.edit("Customer", "1", {"name": "From CRM"})
        erp.edit("Account", "1", {"name": "From ERP"})
        engine.sync()
        assert crm.records("Customer")["1"]["name"] == "From ERP"
        assert erp.records("Account")["1"]["name"] == "From ERP"
        rows = engine.store().conflicts_rows()
        assert [(r["property"], r["winner"]) for r in rows] == [("name", "target")]
        assert '"From CRM"' in rows[0]["source_value"]
        assert engine.sync().writes == 0


def test_conflict_tie_goes_to_priority(store: str) -> None:
    from samband.engine import plan as plan_module
    from samband.engine.model import compile_flows

    config = parse_config(f"{SYSTEMS}{ACCOUNTS}").config
    engine = Engine(config, store_url=store)
    engine.compile()
    flow = engine.flows[0]
    plan = plan_module.plan_pair(
        flow,
        {"name": "crm value"},
        {"name": "erp value"},
        {"name": "old"},
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T00:00:00+00:00",
        lambda *a: None,
    )
    # crm has priority 1 > erp's 0: the tie goes to crm (the source)
    assert plan.to_target == {"name": "crm value"}
    assert plan.conflicts[0].winner == "source"
    assert "priority" in plan.conflicts[0].reason
    engine.close()
    assert compile_flows  # imported for the type checker


def test_crash_after_create_does_not_duplicate(store: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    flows = """
dataflows:
  - source: crm.Customer
    target: erp.Account
    properties: [{from: name, to: name, type: string}]
"""

    def crash() -> None:
        raise SimulatedCrash("killed right after the create call")

    erp.inject_failure("after_create", crash)
    engine = engine_for(store, flows)
    with pytest.raises(SimulatedCrash):
        engine.sync()
    engine.close()
    assert len(erp.records("Account")) == 1  # the create happened, the link was not stored
    with engine_for(store, flows) as engine:
        report = engine.sync()
        assert report.to_dict()["created"] == 0
        assert len(erp.records("Account")) == 1
        assert len(engine.store().all_links()) == 1
        assert engine.store().all_links()[0].how == "recovered"


def test_crash_after_create_without_external_ref_uses_merge_criteria(store: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "912345678"})
    flows = """
dataflows:
  - source: crm.Customer
    target: erp.NoRef
    match: [[{from: org, to: org}]]
    properties: [{from: name, to: name, type: string}, {from: org, to: org, type: string}]
"""

    def crash() -> None:
        raise SimulatedCrash("killed")

    erp.inject_failure("after_create", crash)
    engine = engine_for(store, flows)
    with pytest.raises(SimulatedCrash):
        engine.sync()
    engine.close()
    with engine_for(store, flows) as engine:
        engine.sync()
        assert len(erp.records("NoRef")) == 1
        assert engine.sync().writes == 0


def test_dry_run_makes_no_write_call_and_no_store_change(store: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    crm.insert("Customer", {"name": "Fjord", "org": "2"})
    erp.insert("Account", {"name": "Fjord AS", "org": "2"})

    def forbidden() -> None:
        raise AssertionError("a dry run called a write method")

    for op in ("create", "update", "delete"):
        erp.inject_failure(op, forbidden)
        crm.inject_failure(op, forbidden)
    with engine_for(store, ACCOUNTS) as engine:
        report = engine.sync(dry_run=True)
        assert report.status == "dry-run"
        assert report.to_dict()["created"] == 1 and report.to_dict()["linked"] == 1
        assert any(str(step).startswith("create erp.Account") for step in report.plan)
        assert any(str(step).startswith("link crm:Customer:2") for step in report.plan)
        assert engine.store().all_links() == []
        assert engine.store().table_rows(s.snapshots) == []
        assert engine.store().table_rows(s.runs) == []
    assert len(erp.records("Account")) == 1


def test_ambiguous_match_creates_nothing(store: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    erp.insert("Account", {"name": "Acme 1", "org": "1"})
    erp.insert("Account", {"name": "Acme 2", "org": "1"})
    with engine_for(store, ACCOUNTS) as engine:
        report = engine.sync()
        assert report.to_dict()["ambiguous"] == 1
        assert report.to_dict()["created"] == 0
        assert len(erp.records("Account")) == 2
        letters = engine.store().dead_letters()
        assert letters[0]["kind"] == "ambiguous" and "matches 2" in letters[0]["reason"]


def test_rejected_record_is_quarantined_and_retried(store: str) -> None:
    from samband.engine.inspect import Inspector

    crm = dataset("crm")
    crm.insert("Customer", {"name": "A name far longer than twenty", "org": "1"})
    crm.insert("Customer", {"name": "Short", "org": "2"})
    with engine_for(store, ACCOUNTS) as engine:
        report = engine.sync()
        assert report.to_dict()["created"] == 1 and report.to_dict()["errors"] == 1
        letter = engine.store().dead_letters()[0]
        assert letter["ref"] == "crm:Customer:1" and "at most 20" in letter["reason"]
        crm.records("Customer")["1"]["name"] = "Fixed"  # fixed without a change marker
        inspector = Inspector(engine.config, engine.store_url)
        assert inspector.retry(["crm:Customer:1"]) == 1
        inspector.close()
        assert engine.sync().to_dict()["created"] == 1
        assert engine.store().dead_letters() == []


def test_conversion_error_is_quarantined(store: str) -> None:
    crm = dataset("crm")
    crm.insert("Customer", {"name": "Acme", "org": "1", "amount": "twelve"})
    with engine_for(store, ACCOUNTS) as engine:
        report = engine.sync()
        assert report.status == "ok" and report.to_dict()["errors"] == 1
        assert "amount" in engine.store().dead_letters()[0]["reason"]


def test_read_only_source_reverts_target_edit(store: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Region", {"name": "North"})
    flows = """
dataflows:
  - source: crm.Region
    target: erp.Account
    properties: [{from: name, to: name, type: string}]
"""
    with engine_for(store, flows) as engine:
        engine.sync()
        erp.edit("Account", "1", {"name": "Edited"})
        engine.sync()
        assert erp.records("Account")["1"]["name"] == "North"
        conflict = engine.store().conflicts_rows()[0]
        assert conflict["winner"] == "source" and "read-only" in conflict["reason"]


def test_child_waits_for_parent_then_links(store: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    flows = """
dataflows:
  - source: crm.Customer
    target: erp.Account
    filter: {text: "When a customer is active", where: {active: true}}
    properties: [{from: name, to: name, type: string}]
  - source: crm.Contact
    target: erp.Person
    properties:
      - {from: name, to: name, type: string}
      - from: customer_id
        to: account_id
        type: reference
        source_ref: Customer
        target_ref: Account
"""
    customer = crm.insert("Customer", {"name": "Acme", "active": False})
    crm.insert("Contact", {"name": "Ola", "customer_id": int(customer)})
    with engine_for(store, flows) as engine:
        report = engine.sync()
        assert report.to_dict()["waiting"] == 1 and not erp.records("Person")
        crm.edit("Customer", customer, {"active": True})
        engine.sync()
        (person,) = erp.records("Person").values()
        (account_id,) = erp.records("Account")
        assert str(person["account_id"]) == account_id
        assert engine.sync().writes == 0


def test_a_linked_pair_whose_reference_waits_is_reported_when_it_waits_too_long(
    store: str,
) -> None:
    """A person matched to a contact whose account has no customer in the CRM (the
    account's customer was deleted): the other properties sync, the reference waits for
    its parent, and after ``max_parent_wait_runs`` runs it is quarantined with the reason
    instead of waiting unreported for ever."""
    crm, erp = dataset("crm"), dataset("erp")
    flows = """
defaults: {max_parent_wait_runs: 2}
dataflows:
  - source: crm.Customer
    target: erp.Account
    match: [[{from: org, to: org}]]
    properties: [{from: name, to: name, type: string}, {from: org, to: org, type: string}]
  - source: crm.Contact
    target: erp.Person
    match: [[{from: email, to: email}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: email, to: email, type: string}
      - from: customer_id
        to: account_id
        type: reference
        source_ref: Customer
        target_ref: Account
"""
    customer = crm.insert("Customer", {"name": "Acme", "org": "1"})
    first = crm.insert("Contact", {"name": "Ola", "email": "ola@x.no", "customer_id": customer})
    with engine_for(store, flows) as engine:
        engine.sync()
        (account_id,) = erp.records("Account")
        crm.remove("Contact", first)
        crm.remove("Customer", customer)  # unlinked: the account stays in the ERP
        engine.sync()
        again = crm.insert("Contact", {"name": "Ola Nordmann", "email": "ola@x.no"})
        reports = [engine.sync().to_dict() for _ in range(3)]
        (person,) = erp.records("Person").values()
        assert person["name"] == "Ola Nordmann", "the other properties still sync"
        assert str(person["account_id"]) == account_id
        assert crm.records("Contact")[again].get("customer_id") is None
        assert [r["waiting"] for r in reports] == [1, 1, 1]
        (letter,) = engine.store().dead_letters()
        assert letter["ref"] == f"crm:Contact:{again}" and letter["kind"] == "waiting"
        assert f"erp:Account:{account_id}, which has no counterpart in crm" in letter["reason"]
        engine.sync()
        assert len(engine.store().dead_letters()) == 1

        # the account gets a customer again: the reference flows back, the report goes
        customer = crm.insert("Customer", {"name": "Acme", "org": "1"})
        engine.sync()
        assert crm.records("Contact")[again]["customer_id"] == int(customer)
        assert engine.store().dead_letters() == []
        assert engine.sync().writes == 0


def test_a_child_is_not_created_pointing_at_a_parent_deleted_in_the_target(
    store: str,
) -> None:
    """The account was deleted in the ERP, and a contact of its customer is new in the
    CRM, both since the last run: the deletion is handled before the contact is planned,
    so the contact waits for its customer instead of getting a person that points at the
    deleted account."""
    crm, erp = dataset("crm"), dataset("erp")
    customer = crm.insert("Customer", {"name": "Acme"})
    with engine_for(store, CONTACTS) as engine:
        engine.sync()
        (account_id,) = erp.records("Account")
        erp.remove("Account", account_id)
        crm.insert("Contact", {"name": "Ola", "customer_id": int(customer)})
        report = engine.sync().to_dict()
        assert erp.records("Person") == {}, "a person points at the deleted account"
        assert report["waiting"] == 1


def test_chain_completes_in_one_run(store: str) -> None:
    config = parse_config(f"""
store: {store}
systems:
  crm: {{kind: memory, entity_types: {{Customer: {{}}}}}}
  go: {{kind: memory, entity_types: {{Customers: {{external_ref: ext}}}}}}
  pms: {{kind: memory, entity_types: {{Customer: {{external_ref: ext}}}}}}
  web: {{kind: memory, entity_types: {{Organisations: {{external_ref: ext}}}}}}
dataflows:
  - source: crm.Customer
    target: go.Customers
    properties: [{{from: name, to: Name, type: string}}]
  - source: go.Customers
    target: pms.Customer
    properties: [{{from: Name, to: name, type: string}}]
  - source: go.Customers
    target: web.Organisations
    properties: [{{from: Name, to: OrganisationName, type: string}}]
""").config
    dataset("crm").insert("Customer", {"name": "Kjede AS"})
    with Engine(config) as engine:
        report = engine.sync()
        assert report.to_dict()["created"] == 3
        assert [r["name"] for r in dataset("pms").records("Customer").values()] == ["Kjede AS"]
        assert [
            r["OrganisationName"] for r in dataset("web").records("Organisations").values()
        ] == ["Kjede AS"]
        assert engine.sync().writes == 0


@pytest.mark.parametrize("policy", ["unlink", "propagate", "archive"])
def test_delete_policies(store: str, policy: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    flows = ACCOUNTS + f"    on_delete: {policy}\n"
    with engine_for(store, flows) as engine:
        engine.sync()
        crm.remove("Customer", "1")
        engine.sync()
        accounts = erp.records("Account")
        if policy == "propagate":
            assert accounts == {}
        elif policy == "archive":
            assert accounts["1"]["archived"] is True
        else:
            assert accounts["1"]["name"] == "Acme"
        assert engine.store().all_links() == []
        assert engine.sync().writes == 0


def test_circuit_breaker_stops_mass_delete(store: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    for index in range(20):
        crm.insert("Customer", {"name": f"C{index}", "org": str(index)})
    flows = ACCOUNTS + "    on_delete: propagate\n"
    with engine_for(store, flows) as engine:
        engine.sync()
        for rid in list(crm.records("Customer"))[:15]:
            crm.remove("Customer", rid)
        with pytest.raises(CircuitBreakerTripped, match="max_delete_share"):
            engine.sync()
        assert len(erp.records("Account")) == 20
        # the deletions stay queued, and a plain run stops again: only --force goes on
        with pytest.raises(CircuitBreakerTripped, match="max_delete_share"):
            engine.sync()
        assert len(erp.records("Account")) == 20
        report = engine.sync(force=True)
        assert report.to_dict()["deleted"] == 15
        assert len(erp.records("Account")) == 5


def test_transient_create_is_looked_up_then_retried_in_the_same_run(store: str) -> None:
    from samband.errors import TransientError

    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    erp.inject_failure("create", TransientError("erp: POST /Account: 503"))
    with engine_for(store, ACCOUNTS) as engine:
        report = engine.sync()
        assert report.to_dict()["created"] == 1 and report.to_dict()["errors"] == 0
        assert len(erp.records("Account")) == 1
        assert erp.calls["create"] == 2


def test_transient_error_keeps_the_record_for_the_next_run(store: str) -> None:
    from samband.errors import TransientError

    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    for _ in range(3):
        erp.inject_failure("create", TransientError("erp: POST /Account: 503"))
    with engine_for(store, ACCOUNTS) as engine:
        report = engine.sync()
        assert report.to_dict()["errors"] == 1 and not erp.records("Account")
        assert engine.store().open_intents()  # outcome unknown: resolved by lookup next run
        report = engine.sync()
        assert report.to_dict()["created"] == 1
        assert engine.store().dead_letters() == []
        assert len(erp.records("Account")) == 1


@pytest.mark.parametrize("into", ["erp", "erp.Account"])
def test_creation_rule_needs_a_connected_record_synchronized_into(store: str, into: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    flows = f"""
dataflows:
  - source: crm.Customer
    target: erp.Account
    properties: [{{from: name, to: name, type: string}}]
  - source: crm.Contact
    target: erp.Person
    create_when: {{connected_to: [Customer], synchronized_into: {into}}}
    properties:
      - {{from: name, to: name, type: string}}
      - {{from: customer_id, to: account_id, type: reference, source_ref: Customer,
          target_ref: Account}}
"""
    customer = crm.insert("Customer", {"name": "Acme"})
    crm.insert("Contact", {"name": "With customer", "customer_id": int(customer)})
    crm.insert("Contact", {"name": "Alone"})
    with engine_for(store, flows) as engine:
        engine.sync()
        assert [p["name"] for p in erp.records("Person").values()] == ["With customer"]


def test_quota_spent_mid_run_keeps_what_was_written(store: str) -> None:
    from samband.errors import QuotaExhausted

    crm, erp = dataset("crm"), dataset("erp")
    for index in range(3):
        crm.insert("Customer", {"name": f"C{index}", "org": str(index)})
    with engine_for(store, ACCOUNTS) as engine:
        engine.sync()
        for rid in crm.records("Customer"):
            crm.edit("Customer", rid, {"name": f"renamed {rid}"})
        erp.inject_failure("update", lambda: None)  # the first update goes through
        erp.inject_failure("update", QuotaExhausted("erp", "daily budget spent"))
        report = engine.sync()
        assert report.status == "paused" and "daily budget spent" in report.messages[0]
        history = engine.store().table_rows(s.audit, where=s.audit.c.op == "update")
        assert len(history) == 1  # the write that happened is recorded
        report = engine.sync()
        assert report.status == "ok" and report.to_dict()["updated"] == 2
        names = sorted(a["name"] for a in erp.records("Account").values())
        assert names == ["renamed 1", "renamed 2", "renamed 3"]


def test_a_deleted_parent_does_not_block_the_childs_other_properties(store: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    customer = crm.insert("Customer", {"name": "Acme"})
    contact = crm.insert("Contact", {"name": "Ola", "customer_id": int(customer)})
    with engine_for(store, CONTACTS) as engine:
        engine.sync()
        crm.remove("Customer", customer)
        crm.edit("Contact", contact, {"name": "Ola Nordmann"})
        report = engine.sync()
        assert [p["name"] for p in erp.records("Person").values()] == ["Ola Nordmann"]
        letter = next(
            d for d in engine.store().dead_letters() if d["ref"] == f"crm:Contact:{contact}"
        )
        assert letter["kind"] == "reference" and "does not exist" in letter["reason"]
        assert report.status == "ok"
        assert engine.sync().writes == 0


def test_an_unlinked_parent_holds_back_only_the_reference(store: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    flows = """
dataflows:
  - source: crm.Customer
    target: erp.Account
    filter: {text: "When a customer is active", where: {active: true}}
    properties: [{from: name, to: name, type: string}]
  - source: crm.Contact
    target: erp.Person
    properties:
      - {from: name, to: name, type: string}
      - {from: customer_id, to: account_id, type: reference, source_ref: Customer,
         target_ref: Account}
"""
    first = crm.insert("Customer", {"name": "Linked", "active": True})
    second = crm.insert("Customer", {"name": "Not yet", "active": False})
    contact = crm.insert("Contact", {"name": "Ola", "customer_id": int(first)})
    with engine_for(store, flows) as engine:
        engine.sync()
        crm.edit("Contact", contact, {"name": "Kari", "customer_id": int(second)})
        report = engine.sync()
        (person,) = erp.records("Person").values()
        assert person["name"] == "Kari"  # the name flowed although the reference waits
        assert report.to_dict()["waiting"] == 1
        crm.edit("Customer", second, {"active": True})
        engine.sync()
        (person,) = erp.records("Person").values()
        accounts = {a["name"]: rid for rid, a in erp.records("Account").items()}
        assert str(person["account_id"]) == accounts["Not yet"]


def test_an_edit_flowing_back_continues_to_the_sources_other_mappings(store: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    flows = """
dataflows:
  - source: crm.Contact
    target: erp.Person
    properties:
      - {from: first, to: given, type: string}
      - {from: first, to: surname, type: string, direction: forward}
"""
    crm.insert("Contact", {"first": "A"})
    with engine_for(store, flows) as engine:
        engine.sync()
        erp.edit("Person", "1", {"given": "B"})
        engine.sync()
        assert crm.records("Contact")["1"]["first"] == "B"
        assert erp.records("Person")["1"]["surname"] == "B"
        assert engine.sync().writes == 0


def test_systems_are_checked_until_they_have_answered(store: str) -> None:
    from samband.kinds.memory.connector import MemoryConnector

    checks: list[str] = []

    class Checked(MemoryConnector):
        def check(self) -> None:
            checks.append(self.system_id)

    def engine(flows: str) -> Engine:
        config = parse_config(f"store: {store}\n{SYSTEMS}{flows}").config
        connectors = {name: Checked(name, config.systems[name], {}) for name in ("crm", "erp")}
        return Engine(config, connectors=connectors)

    dataset("crm").insert("Customer", {"name": "Acme", "org": "1"})
    with engine(ACCOUNTS) as first:
        first.sync()
    assert sorted(checks) == ["crm", "erp"]
    with engine(ACCOUNTS) as second:  # a new process: both systems have answered before
        second.sync()
    assert sorted(checks) == ["crm", "erp"]
    changed = ACCOUNTS.replace("      - {from: amount, to: amount, type: decimal}\n", "")
    with engine(changed) as third:  # other properties to read: checked again
        third.sync()
    assert sorted(checks) == ["crm", "crm", "erp", "erp"]


def test_a_full_read_of_a_type_read_before_finds_what_was_deleted_meanwhile(
    store: str,
) -> None:
    """When a type is read again from the start (its dataflows now need other properties,
    or its change feed lost our place), a record the read no longer returns was deleted,
    even though no change feed said so."""
    crm, erp = dataset("crm"), dataset("erp")
    for index in range(3):
        crm.insert("Customer", {"name": f"C{index}", "org": str(index)})
    flows = ACCOUNTS + "    on_delete: propagate\n"
    with engine_for(store, flows) as engine:
        engine.sync()
    assert len(erp.records("Account")) == 3
    gone = sorted(crm.records("Customer"))[0]
    del crm.table("Customer")[gone]  # vanished without a trace in the change feed
    more = flows.replace(
        "      - {from: amount, to: amount, type: decimal}\n",
        "      - {from: amount, to: amount, type: decimal}\n"
        "      - {from: region, to: region, type: string}\n",
    )
    with engine_for(store, more) as engine:
        report = engine.sync()
        assert report.collected["crm.Customer"]["deleted"] == 1
        assert report.to_dict()["deleted"] == 1
        assert len(erp.records("Account")) == 2
        assert len(engine.store().all_links()) == 2
        assert engine.sync().writes == 0


def test_creates_recovered_after_a_crash_do_not_trip_the_circuit_breaker(store: str) -> None:
    """The records of interrupted creates are queued again when the next run finds what
    they created; they are not changes, so the breaker lets that run finish them."""
    crm, erp = dataset("crm"), dataset("erp")
    for index in range(20):
        crm.insert("Customer", {"name": f"C{index}", "org": str(index)})
    created = {"count": 0}

    def crash_after_the_last_create() -> None:
        created["count"] += 1
        if created["count"] == 20:
            raise SimulatedCrash("killed after the chunk's creates, before their links")
        erp.inject_failure("after_create", crash_after_the_last_create)

    erp.inject_failure("after_create", crash_after_the_last_create)
    engine = engine_for(store, ACCOUNTS)
    with pytest.raises(SimulatedCrash):
        engine.sync()
    engine.close()
    assert len(erp.records("Account")) == 20
    with engine_for(store, ACCOUNTS) as engine:
        report = engine.sync()  # no CircuitBreakerTripped
        assert report.to_dict()["created"] == 0
        assert len(engine.store().all_links()) == 20
        assert engine.sync().writes == 0
    assert len(erp.records("Account")) == 20


@pytest.mark.parametrize("check", [True, False])
def test_an_edit_made_during_a_run_is_read_before_the_update(store: str, check: bool) -> None:
    """A target whose update cannot check what it overwrites (the memory kind) is read
    before each update: a user's edit made after the engine read it stops the update, and
    the newer edit wins as a recorded conflict.  ``check_before_update: false`` saves that
    read, and the edit is then overwritten unseen."""
    from tests.support.convergence import EditDuringTheRun

    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "1", "email": "a@acme.no"})
    engine = engine_for(store, ACCOUNTS)
    if not check:
        engine.config.systems["erp"].check_before_update = False
    try:
        assert engine.sync().to_dict()["created"] == 1
        (account_id,) = erp.records("Account")
        crm.edit("Customer", "1", {"email": "crm@acme.no"})

        def user_edits_the_erp() -> None:
            erp.edit("Account", account_id, {"email": "erp@acme.no"})

        reads = engine.connector("erp").stats.api_calls
        report = engine.sync(progress=EditDuringTheRun(user_edits_the_erp)).to_dict()
        assert report["errors"] == 0, report
        email = erp.records("Account")[account_id]["email"]
        conflicts = [c for c in engine.store().conflicts_rows() if c["property"] == "email"]
        if check:
            assert email == "erp@acme.no"
            assert crm.records("Customer")["1"]["email"] == "erp@acme.no"
            (conflict,) = conflicts
            assert conflict["winner"] == "target" and "crm@acme.no" in conflict["source_value"]
        else:
            assert email == "crm@acme.no" and conflicts == []  # the user's edit is lost
            # the read before the update is not made: collect's read, the update
            assert engine.connector("erp").stats.api_calls - reads == 2
        quiet = engine.sync().to_dict()
        assert (quiet["updated"], quiet["conflicts"]) == (0, 0), quiet
    finally:
        engine.close()


def test_a_connector_that_cannot_read_one_record_is_updated_unchecked(store: str) -> None:
    from samband.connectors.base import RecordData
    from samband.kinds.memory.connector import MemoryConnector

    class NoGet(MemoryConnector):
        def get(self, entity_type: str, record_id: str) -> RecordData | None:
            raise NotImplementedError

    config = parse_config(f"store: {store}\n{SYSTEMS}{ACCOUNTS}").config
    erp_connector = NoGet("erp", config.systems["erp"], {})
    crm = dataset("crm")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    with Engine(config, connectors={"erp": erp_connector}) as engine:
        assert engine.sync().to_dict()["created"] == 1
        crm.edit("Customer", "1", {"name": "Acme AS"})
        report = engine.sync().to_dict()
        assert (report["updated"], report["errors"]) == (1, 0), report
    assert [r["name"] for r in dataset("erp").records("Account").values()] == ["Acme AS"]
