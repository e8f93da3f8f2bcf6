"""Per-dataflow controls through the Python API, on SQLite and PostgreSQL: a paused
dataflow is neither planned nor written and loses nothing; writes to a side switched off
are held and sent when switched on; full sync off creates only records that appear after
its start mark; a run of some dataflows keeps what it clears for the others."""

from __future__ import annotations

import pytest

from samband.config import parse_config
from samband.engine.inspect import Inspector
from samband.engine.run import Engine, RunReport
from samband.errors import SambandError
from samband.kinds.memory.connector import dataset

WORLD = """
systems:
  crm: {kind: memory, entity_types: {Customer: {external_ref: ext}, Contact: {}}}
  erp: {kind: memory, entity_types: {Account: {external_ref: ext}, Person: {}}}
  pms: {kind: memory, entity_types: {Client: {external_ref: ext}}}
dataflows:
  - id: customers
    source: crm.Customer
    target: erp.Account
    match: [[{from: org, to: org}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
  - id: clients
    source: crm.Customer
    target: pms.Client
    properties:
      - {from: name, to: name, type: string}
  - id: contacts
    source: crm.Contact
    target: erp.Person
    properties:
      - {from: name, to: name, type: string}
      - {from: customer, to: account, type: reference, source_ref: Customer,
         target_ref: Account}
"""


def _config(store: str):  # type: ignore[no-untyped-def]
    return parse_config(f"store: {store}\n{WORLD}").config


def _sync(store: str, **options: object) -> RunReport:
    with Engine(_config(store)) as engine:
        report = engine.sync(**options)  # type: ignore[arg-type]
    assert report.status in ("ok", "dry-run"), report.messages
    return report


def _inspector(store: str, actor: str = "tester") -> Inspector:
    inspector = Inspector(_config(store))
    inspector.actor = actor
    return inspector


def _names(system: str, etype: str) -> list[str]:
    return sorted(r["name"] for r in dataset(system).records(etype).values())


def test_pause_holds_everything_and_resume_loses_nothing(store: str) -> None:
    crm = dataset("crm")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    _sync(store)
    assert _names("erp", "Account") == ["Acme"] == _names("pms", "Client")
    with _inspector(store) as inspector:
        assert inspector.pause("customers")["paused"] is True
    crm.edit("Customer", "1", {"name": "Acme AS"})
    crm.insert("Customer", {"name": "Beta", "org": "2"})
    report = _sync(store)
    assert "customers" not in report.ran and "clients" in report.ran
    assert _names("erp", "Account") == ["Acme"]  # the paused dataflow wrote nothing
    assert _names("pms", "Client") == ["Acme AS", "Beta"]  # the other one went on
    # an edit while paused, read by the other dataflow's run in between
    crm.edit("Customer", "1", {"name": "Acme Group"})
    _sync(store)
    with _inspector(store) as inspector:
        assert inspector.control("customers")["missed"] >= 2
        inspector.resume("customers")
        inspector.resume("customers")  # twice: still resumed, nothing lost
    report = _sync(store)
    assert "customers" in report.ran
    assert _names("erp", "Account") == ["Acme Group", "Beta"]
    assert _sync(store).writes == 0  # quiet afterwards
    with _inspector(store) as inspector:
        ops = [(r["op"], r["after"].get("by")) for r in inspector.history("dataflow:customers")]
        assert ops == [("pause", "tester"), ("resume", "tester"), ("resume", "tester")]
        assert inspector.control("customers")["missed"] == 0


def test_paused_alone_is_not_read(store: str) -> None:
    crm = dataset("crm")
    crm.insert("Contact", {"name": "Ann"})
    with _inspector(store) as inspector:
        inspector.pause("contacts")
    report = _sync(store)
    assert "crm.Contact" not in report.collected
    assert _names("erp", "Person") == []
    with _inspector(store) as inspector:
        inspector.resume("contacts")
    _sync(store)
    assert _names("erp", "Person") == ["Ann"]


def test_share_off_holds_writes_until_on(store: str) -> None:
    crm = dataset("crm")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    _sync(store)
    with _inspector(store) as inspector:
        done = inspector.share("customers", "target", False)
        assert done["system"] == "erp" and done["writes"] is False
    crm.edit("Customer", "1", {"name": "Acme AS"})
    crm.insert("Customer", {"name": "Beta", "org": "2"})
    report = _sync(store)
    assert report.dataflows["customers"].held == 2
    assert _names("erp", "Account") == ["Acme"]
    # the held writes are planned again only when writing is on: quiet meanwhile
    assert _sync(store).dataflows["customers"].held == 0
    preview = _sync(store, dry_run=True)
    assert not [s for s in preview.plan if s.dataflow == "customers" and s.action != "held"]
    with _inspector(store) as inspector:
        assert inspector.control("customers")["held"] == 2
        assert inspector.share("customers", "target", True)["queued"] == 2
    _sync(store)
    assert _names("erp", "Account") == ["Acme AS", "Beta"]
    assert _sync(store).writes == 0


def test_share_off_then_a_conflict(store: str) -> None:
    """Writing to the source off, the target edited: nothing is written back while off;
    then both edited: the conflict is recorded and decided (the newer edit, the
    source's, goes to the target), and once writing is on the two agree."""
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    _sync(store)
    with _inspector(store) as inspector:
        inspector.share("customers", "source", False)
    erp.edit("Account", "1", {"name": "Acme ERP"})
    report = _sync(store)
    assert report.dataflows["customers"].held == 1
    assert _names("crm", "Customer") == ["Acme"]
    crm.edit("Customer", "1", {"name": "Acme CRM"})
    assert _sync(store).dataflows["customers"].conflicts == 1
    with _inspector(store) as inspector:
        inspector.share("customers", "source", True)
    _sync(store)
    assert _names("crm", "Customer") == _names("erp", "Account")
    assert _sync(store).writes == 0


def test_full_sync_off_creates_only_new_records(store: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    with _inspector(store) as inspector:
        inspector.full_sync("customers", False)  # before the first run: what it reads counts
    crm.insert("Customer", {"name": "Old", "org": "1"})
    crm.insert("Customer", {"name": "Matched", "org": "2"})
    erp.insert("Account", {"name": "Matched ERP", "org": "2"})
    report = _sync(store)
    assert report.dataflows["customers"].created == 0
    assert report.dataflows["customers"].linked == 1  # existing records are still linked
    crm.insert("Customer", {"name": "New", "org": "3"})
    crm.edit("Customer", "1", {"name": "Old, edited"})  # edited: still not new
    _sync(store)
    assert _names("erp", "Account") == ["Matched", "New"]
    with _inspector(store) as inspector:
        assert inspector.full_sync("customers", True)["queued"] == 2
    _sync(store)
    assert _names("erp", "Account") == ["Matched", "New", "Old, edited"]
    assert _sync(store).writes == 0


def test_full_sync_off_after_links_exist(store: str) -> None:
    crm = dataset("crm")
    crm.insert("Customer", {"name": "A", "org": "1"})
    _sync(store)
    crm.insert("Customer", {"name": "Read, not planned", "org": "2"})
    with _inspector(store) as inspector:
        inspector.pause("customers")
    _sync(store)  # reads the new record for the other dataflow
    with _inspector(store) as inspector:
        inspector.full_sync("customers", False)  # the store has it: it existed
        inspector.full_sync("customers", False)  # twice: the same
        inspector.resume("customers")
    crm.edit("Customer", "1", {"name": "A2"})
    _sync(store)
    assert _names("erp", "Account") == ["A2"]


def test_some_dataflows_and_their_parents(store: str) -> None:
    crm = dataset("crm")
    acme = crm.insert("Customer", {"name": "Acme", "org": "1"})
    crm.insert("Contact", {"name": "Ann", "customer": acme})
    report = _sync(store, dataflows=["contacts"])
    assert set(report.ran) == {"contacts", "customers"}  # its references need customers
    assert _names("erp", "Person") == ["Ann"] and _names("pms", "Client") == []
    crm.edit("Customer", acme, {"name": "Acme AS"})
    _sync(store, dataflows=["customers"])
    assert _names("pms", "Client") == []
    _sync(store, dataflows=["clients"])  # it gets what the other run cleared
    assert _names("pms", "Client") == ["Acme AS"]
    with pytest.raises(SambandError, match="not in the config"):
        _sync(store, dataflows=["nope"])


PROPAGATING = WORLD.replace(
    "  - id: clients\n    source: crm.Customer\n    target: pms.Client\n",
    "  - id: clients\n    source: crm.Customer\n    target: pms.Client\n    on_delete: propagate\n",
)


def test_a_deletion_while_paused_is_applied_after_resume(store: str) -> None:
    crm, pms = dataset("crm"), dataset("pms")
    config = parse_config(f"store: {store}\n{PROPAGATING}").config
    acme = crm.insert("Customer", {"name": "Acme", "org": "1"})
    with Engine(config) as engine:
        engine.sync()
    assert _names("pms", "Client") == ["Acme"]
    with Inspector(config) as inspector:
        inspector.pause("clients")
    crm.remove("Customer", acme)
    with Engine(config) as engine:
        engine.sync()  # the other dataflow reads the deletion
    assert _names("pms", "Client") == ["Acme"]
    with Inspector(config) as inspector:
        inspector.resume("clients")
    with Engine(config) as engine:
        report = engine.sync()
    assert report.dataflows["clients"].deleted == 1
    assert pms.records("Client") == {}


def test_pause_during_a_run_takes_effect_at_the_next(store: str) -> None:
    from tests.support.convergence import EditDuringTheRun

    crm = dataset("crm")
    crm.insert("Customer", {"name": "Acme", "org": "1"})

    def pause() -> None:
        with _inspector(store) as inspector:
            inspector.pause("customers")

    with Engine(_config(store)) as engine:
        report = engine.sync(progress=EditDuringTheRun(pause))
    assert report.status == "ok" and "customers" in report.ran
    assert _names("erp", "Account") == ["Acme"]  # the run went on as it began
    crm.edit("Customer", "1", {"name": "Acme AS"})
    _sync(store)
    assert _names("erp", "Account") == ["Acme"]
    with _inspector(store) as inspector:
        inspector.resume("customers")
    _sync(store)
    assert _names("erp", "Account") == ["Acme AS"]


def test_share_on_during_a_run_leaves_nothing_held(store: str) -> None:
    from tests.support.convergence import EditDuringTheRun

    crm = dataset("crm")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    _sync(store)
    with _inspector(store) as inspector:
        inspector.share("customers", "target", False)
    crm.edit("Customer", "1", {"name": "Acme AS"})

    def writes_on() -> None:
        with _inspector(store) as inspector:
            inspector.share("customers", "target", True)

    with Engine(_config(store)) as engine:
        report = engine.sync(progress=EditDuringTheRun(writes_on))
    assert report.dataflows["customers"].held == 1  # the run began with writes off
    _sync(store)
    assert _names("erp", "Account") == ["Acme AS"]
    with _inspector(store) as inspector:
        assert inspector.control("customers")["held"] == 0
    assert _sync(store).writes == 0


def test_a_renamed_dataflow_keeps_its_controls(store: str) -> None:
    crm = dataset("crm")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    _sync(store)
    with _inspector(store) as inspector:
        inspector.pause("customers")
    renamed = parse_config(f"store: {store}\n{WORLD.replace('id: customers', 'id: accounts')}")
    crm.edit("Customer", "1", {"name": "Acme AS"})
    with Engine(renamed.config) as engine:
        report = engine.sync()
    assert report.status == "ok", report.messages
    assert "accounts" not in report.ran
    assert _names("erp", "Account") == ["Acme"]
    with Inspector(renamed.config) as inspector:
        assert inspector.control("accounts")["paused"] is True
        inspector.resume("accounts")
    with Engine(renamed.config) as engine:
        engine.sync()
    assert _names("erp", "Account") == ["Acme AS"]


def test_full_sync_off_links_a_record_that_existed_once_a_match_appears(store: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Old", "org": "1"})
    with _inspector(store) as inspector:
        inspector.full_sync("customers", False)
    assert _sync(store).dataflows["customers"].created == 0
    erp.insert("Account", {"name": "Old in ERP", "org": "1"})  # entered later, by hand
    report = _sync(store)
    assert report.dataflows["customers"].linked == 1
    assert _names("erp", "Account") == ["Old"]  # linked, and the source's value flows
    assert _sync(store).writes == 0


def test_renamed_back_and_forth_keeps_the_current_controls(store: str) -> None:
    """Found by the model: a dataflow renamed, then given its old name back while the
    store holds controls under that old name too (set meanwhile with the old config)."""
    crm = dataset("crm")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    _sync(store)
    renamed = parse_config(f"store: {store}\n{WORLD.replace('id: customers', 'id: accounts')}")
    with _inspector(store) as inspector:
        inspector.pause("customers")
    with Engine(renamed.config) as engine:
        assert engine.sync().status == "ok"  # customers is called accounts now
    with _inspector(store) as inspector:
        inspector.share("customers", "target", False)  # a row under the old name again
    crm.edit("Customer", "1", {"name": "Acme AS"})
    report = _sync(store)  # accounts is called customers again
    assert "customers" not in report.ran  # the controls of the renamed dataflow win
    with _inspector(store) as inspector:
        control = inspector.control("customers")
        assert (control["paused"], control["write_target"]) == (True, True)
        inspector.resume("customers")
    _sync(store)
    assert _names("erp", "Account") == ["Acme AS"]
