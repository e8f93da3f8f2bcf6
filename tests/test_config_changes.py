"""A config changed between runs creates no duplicate and overwrites nothing unannounced:
a dataflow given an id or renamed, a merge combination changed or removed, the same thing
flowing in from two systems, a property newly mapped (issue 17: 8, 11, 13)."""

from __future__ import annotations

import pytest

from samband.config import parse_config
from samband.engine.run import Engine
from samband.errors import CircuitBreakerTripped
from samband.kinds.memory.connector import dataset

SYSTEMS = """
systems:
  crm:
    kind: memory
    priority: 1
    entity_types: {Customer: {}}
  shop:
    kind: memory
    entity_types: {Buyer: {}}
  erp:
    kind: memory
    entity_types: {Account: {external_ref: ext}}
"""


def engine_for(store_url: str, flows: str) -> Engine:
    return Engine(parse_config(f"store: {store_url}\n{SYSTEMS}dataflows:\n{flows}").config)


def run(store_url: str, flows: str, **options: bool) -> dict[str, object]:
    with engine_for(store_url, flows) as engine:
        report = engine.sync(**options)
        assert report.status in ("ok", "dry-run"), report.messages
        return report.to_dict()


NO_ID = """
  - source: crm.Customer
    target: erp.Account
    properties: [{from: name, to: name, type: string}]
"""
WITH_ID = "  - id: customers" + NO_ID.replace("  - source", "    source", 1)
RENAMED = WITH_ID.replace("id: customers", "id: customer-accounts")


@pytest.mark.parametrize(
    ("before", "after"), [(NO_ID, WITH_ID), (WITH_ID, RENAMED), (WITH_ID, NO_ID)]
)
def test_a_dataflow_given_an_id_or_renamed_keeps_its_links(
    store_url: str, before: str, after: str
) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme"})
    crm.insert("Customer", {"name": "Fjord"})
    assert run(store_url, before)["created"] == 2
    crm.edit("Customer", "1", {"name": "Acme AS"})
    report = run(store_url, after)
    assert (report["created"], report["updated"]) == (0, 1)
    assert sorted(a["name"] for a in erp.records("Account").values()) == ["Acme AS", "Fjord"]
    assert any("is now" in m and "kept" in m for m in report["messages"])  # type: ignore[union-attr]
    assert run(store_url, after)["created"] == 0


CASE_SENSITIVE = """
  - source: crm.Customer
    target: erp.Account
    match: [[{from: name, to: name, normalize: none}]]
    properties: [{from: name, to: name, type: string}]
"""
CASE_FOLDED = CASE_SENSITIVE.replace("normalize: none", "normalize: casefold")


def test_a_changed_normalisation_rebuilds_the_index(store_url: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    erp.insert("Account", {"name": "Acme AS"})
    assert run(store_url, CASE_SENSITIVE)["created"] == 0
    crm.insert("Customer", {"name": "ACME AS"})
    report = run(store_url, CASE_FOLDED)
    assert (report["linked"], report["created"]) == (1, 0)
    assert len(erp.records("Account")) == 1


TWO_COMBINATIONS = """
  - source: crm.Customer
    target: erp.Account
    match: [[{from: org, to: org}], [{from: email, to: email}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
"""
EMAIL_ONLY = """
  - source: crm.Customer
    target: erp.Account
    match: [[{from: email, to: email}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
"""


def test_removing_a_combination_looks_the_others_up_in_their_own_index(store_url: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    erp.insert("Account", {"name": "Acme", "org": "911111111", "email": "post@acme.no"})
    assert run(store_url, TWO_COMBINATIONS)["created"] == 0
    crm.insert("Customer", {"name": "Acme", "email": "post@acme.no"})
    report = run(store_url, EMAIL_ONLY)
    assert (report["linked"], report["created"]) == (1, 0)


def test_a_changed_combination_after_a_target_changed_is_complete(store_url: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    erp.insert("Account", {"name": "Acme", "email": "post@acme.no"})
    erp.insert("Account", {"name": "Fjord", "email": "post@fjord.no"})
    run(store_url, TWO_COMBINATIONS)
    erp.edit("Account", "2", {"email": "hei@fjord.no"})  # read by the next run's collect
    crm.insert("Customer", {"name": "Acme", "email": "post@acme.no"})
    crm.insert("Customer", {"name": "Fjord", "email": "hei@fjord.no"})
    report = run(store_url, EMAIL_ONLY)
    assert (report["linked"], report["created"]) == (2, 0)


TWO_SOURCES = """
  - source: crm.Customer
    target: erp.Account
    match: [[{from: org, to: org}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
  - source: shop.Buyer
    target: erp.Account
    match: [[{from: org_no, to: org}]]
    properties:
      - {from: company, to: name, type: string}
      - {from: org_no, to: org, type: string}
"""


@pytest.mark.parametrize("same_run", [True, False])
def test_the_same_company_from_two_systems_is_one_account(store_url: str, same_run: bool) -> None:
    crm, shop, erp = dataset("crm"), dataset("shop"), dataset("erp")
    crm.insert("Customer", {"name": "Acme AS", "org": "911111111"})
    if not same_run:
        run(store_url, TWO_SOURCES)
    shop.insert("Buyer", {"company": "Acme AS", "org_no": "911 111 111"})
    run(store_url, TWO_SOURCES)
    assert len(erp.records("Account")) == 1
    with engine_for(store_url, TWO_SOURCES) as engine:
        assert len(engine.store().all_links()) == 2
        # one real-world thing: an edit in the shop reaches the CRM through the account
        shop.edit("Buyer", "1", {"company": "Acme Holding AS"})
        engine.sync()
        engine.sync()
        assert crm.records("Customer")["1"]["name"] == "Acme Holding AS"
        assert engine.sync().writes == 0


def test_two_records_of_one_source_type_with_one_key_do_not_share_a_target(store_url: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    erp.insert("Account", {"name": "Acme AS", "org": "911111111"})
    crm.insert("Customer", {"name": "Acme AS", "org": "911111111"})
    crm.insert("Customer", {"name": "Acme Again", "org": "911111111"})
    run(store_url, TWO_SOURCES)
    with engine_for(store_url, TWO_SOURCES) as engine:
        assert (
            len(engine.store().links_by("crm.Customer->erp.Account", "target", ["erp:Account:1"]))
            == 1
        )


NAME_ONLY = """
  - source: crm.Customer
    target: erp.Account
    match: [[{from: org, to: org}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
"""
NAME_AND_CITY = NAME_ONLY + "      - {from: city, to: city, type: string}\n"


def _linked_pairs(store_url: str, count: int, differ: int) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    for n in range(count):
        org = str(910000000 + n)
        erp.insert("Account", {"name": f"C{n}", "org": org, "city": "Oslo"})
        city = "Bergen" if n < differ else "Oslo"
        crm.insert("Customer", {"name": f"C{n}", "org": org, "city": city})
    assert run(store_url, NAME_ONLY)["linked"] == count


def test_a_newly_mapped_property_is_a_first_link_decided_by_the_rule(store_url: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    _linked_pairs(store_url, 3, differ=1)
    erp.edit("Account", "1", {"city": "Trondheim"})  # the ERP's value is the newer one
    report = run(store_url, NAME_AND_CITY)
    assert report["conflicts"] == 1
    assert crm.records("Customer")["1"]["city"] == "Trondheim"
    with engine_for(store_url, NAME_AND_CITY) as engine:
        (conflict,) = engine.store().conflicts_rows()
        assert conflict["winner"] == "target"
        assert "newly mapped" in conflict["reason"] and "merge criteria" not in conflict["reason"]
        assert engine.sync().writes == 0


def test_a_newly_mapped_property_that_rewrites_most_records_trips_the_breaker(
    store_url: str,
) -> None:
    erp = dataset("erp")
    _linked_pairs(store_url, 20, differ=20)
    preview = run(store_url, NAME_AND_CITY, dry_run=True)
    assert preview["conflicts"] == 20 and preview["updated"] == 20
    assert any("circuit breaker" in m for m in preview["messages"])  # type: ignore[union-attr]
    with engine_for(store_url, NAME_AND_CITY) as engine, pytest.raises(CircuitBreakerTripped):
        engine.sync()
    assert {a["city"] for a in erp.records("Account").values()} == {"Oslo"}
    with engine_for(store_url, NAME_AND_CITY) as engine:
        assert engine.sync(force=True).to_dict()["updated"] == 20


def test_a_newly_mapped_property_that_agrees_does_not_trip_the_breaker(store_url: str) -> None:
    _linked_pairs(store_url, 20, differ=0)
    report = run(store_url, NAME_AND_CITY)
    assert (report["updated"], report["conflicts"]) == (0, 0)


def test_blanking_every_target_value_trips_the_breaker(store_url: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    _linked_pairs(store_url, 20, differ=0)
    for rid in erp.records("Account"):
        erp.edit("Account", rid, {"name": ""})
    with engine_for(store_url, NAME_ONLY) as engine, pytest.raises(CircuitBreakerTripped):
        engine.sync()
    assert all(c["name"] for c in crm.records("Customer").values())


def test_a_newly_mapped_property_already_read_is_agreed_on_at_once(store_url: str) -> None:
    """Mapping ``org`` (already read as the merge criterion) changes nothing that is read:
    the pairs are planned again all the same."""
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "NO 912 345 678 MVA"})
    erp.insert("Account", {"name": "Acme", "org": "912345678"})
    name_only = """
  - source: crm.Customer
    target: erp.Account
    match: [[{from: org, to: org}]]
    properties: [{from: name, to: name, type: string}]
"""
    assert run(store_url, name_only)["linked"] == 1
    report = run(store_url, NAME_ONLY)
    assert report["conflicts"] == 1
    assert crm.records("Customer")["1"]["org"] == erp.records("Account")["1"]["org"]
    assert run(store_url, NAME_ONLY)["updated"] == 0


def test_the_newer_of_two_edits_entered_in_two_systems_wins(store_url: str) -> None:
    """CRM and webshop feed one account: the CRM renames first, the shop after.  The value
    the engine copies into the account is as old as the CRM's edit, so the shop's newer
    edit wins (not the copy, whose write is newer)."""
    crm, shop, erp = dataset("crm"), dataset("shop"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "911111111"})
    shop.insert("Buyer", {"company": "Acme", "org_no": "911111111"})
    run(store_url, TWO_SOURCES)
    crm.edit("Customer", "1", {"name": "Acme CRM"})
    shop.edit("Buyer", "1", {"company": "Acme Shop"})
    for _ in range(2):
        run(store_url, TWO_SOURCES)
    names = {
        crm.records("Customer")["1"]["name"],
        shop.records("Buyer")["1"]["company"],
        erp.records("Account")["1"]["name"],
    }
    assert names == {"Acme Shop"}
    with engine_for(store_url, TWO_SOURCES) as engine:
        (conflict,) = engine.store().conflicts_rows()
        assert '"Acme CRM"' in (conflict["source_value"], conflict["target_value"])
