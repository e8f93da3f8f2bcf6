"""References: a child follows its parent's new counterpart, and self-references and
reference cycles are created, then filled in (issue 17: 7, 16)."""

from __future__ import annotations

from samband.config import parse_config
from samband.engine.run import Engine
from samband.kinds.memory.connector import dataset

SYSTEMS = """
systems:
  crm:
    kind: memory
    entity_types: {Company: {}, Contact: {}}
  erp:
    kind: memory
    entity_types: {Account: {external_ref: ext}, Person: {external_ref: ext}}
"""

CONTACTS = """
dataflows:
  - source: crm.Company
    target: erp.Account
    match: [[{from: org, to: org}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
  - source: crm.Contact
    target: erp.Person
    properties:
      - {from: name, to: name, type: string}
      - {from: company_id, to: account_id, type: reference, source_ref: Company,
         target_ref: Account}
"""

BILLING = """
dataflows:
  - source: crm.Company
    target: erp.Account
    properties:
      - {from: name, to: name, type: string}
      - {from: billed_to, to: invoice_account, type: reference, source_ref: Company,
         target_ref: Account}
"""


def engine_for(store_url: str, flows: str) -> Engine:
    return Engine(parse_config(f"store: {store_url}\n{SYSTEMS}{flows}").config)


def test_a_child_follows_its_parent_recreated_in_the_target(store_url: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Company", {"name": "Acme", "org": "911111111"})
    crm.insert("Contact", {"name": "Kari", "company_id": 1})
    with engine_for(store_url, CONTACTS) as engine:
        engine.sync()
        (person,) = erp.records("Person").values()
        assert str(person["account_id"]) == "1"
        # the account is deleted in the ERP and entered there again
        erp.remove("Account", "1")
        engine.sync()
        new_id = erp.insert("Account", {"name": "Acme", "org": "911111111"})
        crm.edit("Company", "1", {"name": "Acme AS"})  # linked to it by the org number
        engine.sync()
        engine.sync()  # (no edit of the contact anywhere)
        (person,) = erp.records("Person").values()
        assert str(person["account_id"]) == new_id
        assert engine.sync().writes == 0


def test_a_child_waits_while_its_parent_has_no_counterpart(store_url: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Company", {"name": "Acme", "org": "911111111"})
    crm.insert("Contact", {"name": "Kari", "company_id": 1})
    with engine_for(store_url, CONTACTS) as engine:
        engine.sync()
        erp.remove("Account", "1")
        report = engine.sync()
        # the contact's account is gone: it is told, not left pointing at nothing silently
        assert report.to_dict()["waiting"] == 1
        crm.edit("Company", "1", {"name": "Acme AS"})  # the company is created again
        engine.sync()
        (person,) = erp.records("Person").values()
        (account_id,) = erp.records("Account")
        assert str(person["account_id"]) == account_id


def test_a_company_billed_to_itself_is_created_and_then_refers_to_itself(store_url: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.put("Company", "1", {"id": 1, "name": "Acme", "billed_to": 1})
    with engine_for(store_url, BILLING) as engine:
        report = engine.sync()
        assert report.status == "ok", report.messages
        (account_id, account), *rest = erp.records("Account").items()
        assert rest == []
        assert str(account["invoice_account"]) == account_id
        assert engine.store().dead_letters() == []
        assert engine.sync().writes == 0


def test_two_companies_billing_each_other_are_both_created(store_url: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.put("Company", "1", {"id": 1, "name": "Acme", "billed_to": 2})
    crm.put("Company", "2", {"id": 2, "name": "Fjord", "billed_to": 1})
    crm.put("Company", "3", {"id": 3, "name": "Berg", "billed_to": 4})
    crm.put("Company", "4", {"id": 4, "name": "Dal", "billed_to": 5})
    crm.put("Company", "5", {"id": 5, "name": "Eik", "billed_to": 3})
    with engine_for(store_url, BILLING) as engine:
        engine.sync()
        accounts = {a["name"]: (rid, a) for rid, a in erp.records("Account").items()}
        assert len(accounts) == 5
        for one, other in [("Acme", "Fjord"), ("Fjord", "Acme"), ("Berg", "Dal"), ("Eik", "Berg")]:
            assert str(accounts[one][1]["invoice_account"]) == accounts[other][0]
        assert engine.store().dead_letters() == []
        assert engine.sync().writes == 0
