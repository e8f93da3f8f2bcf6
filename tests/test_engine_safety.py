"""Safety: a record deleted and entered again, a run that meets an unexpected error, two
runs racing for one store, an ambiguous reference in a config (issue 17: 9, 14, 18, 21)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from samband.config import parse_config
from samband.config.validate import check
from samband.connectors.memory import dataset
from samband.engine.leases import RUN_LEASE
from samband.engine.run import Engine
from samband.errors import RunLocked
from samband.store import schema
from samband.store.store import Store

SYSTEMS = """
systems:
  crm:
    kind: memory
    entity_types: {Customer: {}, Contact: {}}
  erp:
    kind: memory
    entity_types: {Account: {external_ref: ext}, Person: {}, Debtor: {}}
"""

ACCOUNTS = """
dataflows:
  - source: crm.Customer
    target: erp.Account
    on_delete: {policy}
    match: [[{{from: org, to: org}}]]
    properties:
      - {{from: name, to: name, type: string}}
      - {{from: org, to: org, type: string}}
"""


def engine_for(store_url: str, flows: str) -> Engine:
    return Engine(parse_config(f"store: {store_url}\n{SYSTEMS}{flows}").config)


@pytest.mark.parametrize("policy", ["unlink", "propagate"])
@pytest.mark.parametrize("new_id", ["2", "0"])  # after the deleted one, and before it
def test_a_record_deleted_and_entered_again_keeps_its_target(
    store_url: str, policy: str, new_id: str
) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.put("Customer", "1", {"id": 1, "name": "Acme", "org": "911111111"})
    flows = ACCOUNTS.format(policy=policy)
    with engine_for(store_url, flows) as engine:
        engine.sync()
        # in one interval: deleted, and entered again (a new id, the same org number)
        crm.remove("Customer", "1")
        crm.put("Customer", new_id, {"id": int(new_id), "name": "Acme AS", "org": "911111111"})
        report = engine.sync()
        assert report.status == "ok", report.messages
        assert [a["name"] for a in erp.records("Account").values()] == ["Acme AS"]
        (link,) = engine.store().all_links()
        assert link.source_ref == f"crm:Customer:{new_id}"
        assert engine.sync().writes == 0


def test_a_run_that_meets_an_unexpected_error_is_recorded_as_failed(store_url: str) -> None:
    crm = dataset("crm")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    crm.inject_failure("read", ZeroDivisionError("a defect in a connector"), "Customer")
    with engine_for(store_url, ACCOUNTS.format(policy="unlink")) as engine:
        with pytest.raises(ZeroDivisionError):
            engine.sync()
        (run,) = engine.store().table_rows(schema.runs)
        assert run["status"] == "failed"
        assert "a defect in a connector" in run["stats"]
        assert engine.sync().status == "ok"  # and the next run goes on


def test_two_processes_cannot_both_take_an_expired_lease(store_url: str) -> None:
    first, second = Store(store_url), Store(store_url)
    try:
        assert first.acquire_lease("run", "old", -1)  # taken by a process that died
        raced: list[bool] = []

        @event.listens_for(first.conn, "before_cursor_execute")
        def other_process_first(*args: Any) -> None:
            statement = args[2]
            if "samband_leases" in statement and not raced and "DELETE" not in statement:
                raced.append(second.acquire_lease("run", "B", 60))

        took = first.acquire_lease("run", "A", 60)
        assert raced == [True]
        assert not took, "two processes hold the same lease"
        assert first.lease_holder("run")[0] == "B"  # type: ignore[index]
    finally:
        first.close()
        second.close()


def test_the_loser_of_two_runs_is_told_another_run_holds_the_store(store_url: str) -> None:
    crm = dataset("crm")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    with engine_for(store_url, ACCOUNTS.format(policy="unlink")) as engine:
        other = Store(store_url)
        try:
            taken: list[bool] = []

            @event.listens_for(engine.store().conn, "before_cursor_execute")
            def another_run_at_the_same_moment(*args: Any) -> None:
                if "samband_leases" in args[2] and not taken and "DELETE" not in args[2]:
                    taken.append(other.acquire_lease(RUN_LEASE, "other-host:4242", 60))

            with pytest.raises(RunLocked, match=r"another samband run .*other-host"):
                engine.sync()
            assert taken == [True]
        finally:
            other.close()


def test_validate_refuses_a_reference_into_a_parent_that_flows_into_two_types(
    tmp_path: Path,
) -> None:
    flows = """
dataflows:
  - source: crm.Customer
    target: erp.Account
    properties: [{from: name, to: name, type: string}]
  - source: crm.Customer
    target: erp.Debtor
    properties: [{from: name, to: name, type: string}]
  - source: crm.Contact
    target: erp.Person
    properties:
      - {from: customer_id, to: account_id, type: reference, source_ref: Customer}
"""
    path = tmp_path / "samband.yaml"
    path.write_text(f"{SYSTEMS}{flows}")
    from samband.config.loader import read_config

    problems = [p for p in check(read_config(path)) if p.severity == "error"]
    assert len(problems) == 1
    assert "Account, Debtor" in problems[0].message and problems[0].line == 20
    assert "target_ref" in (problems[0].hint or "")
