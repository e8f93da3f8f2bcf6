"""Safety: a record deleted and entered again, a run that meets an unexpected error, two
runs racing for one store, an ambiguous reference in a config (issue 17: 9, 14, 18, 21)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from samband.config import parse_config
from samband.config.validate import check
from samband.engine.leases import RUN_LEASE
from samband.engine.run import Engine
from samband.errors import CircuitBreakerTripped, RunLocked
from samband.kinds.memory.connector import dataset
from samband.store import Store, schema
from tests.support.convergence import EditDuringTheRun

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
@pytest.mark.parametrize("chunk_size", [500, 1])  # in one chunk, in chunks of their own
def test_a_record_deleted_and_entered_again_keeps_its_target(
    store_url: str, policy: str, new_id: str, chunk_size: int
) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.put("Customer", "1", {"id": 1, "name": "Acme", "org": "911111111"})
    flows = ACCOUNTS.format(policy=policy)
    config = parse_config(f"store: {store_url}\n{SYSTEMS}{flows}").config
    with Engine(config, chunk_size=chunk_size) as engine:
        engine.sync()
        # in one interval: deleted, and entered again (a new id, the same org number)
        crm.remove("Customer", "1")
        crm.put("Customer", new_id, {"id": int(new_id), "name": "Acme AS", "org": "911111111"})
        report = engine.sync()
        assert report.status == "ok", report.messages
        assert [a["name"] for a in erp.records("Account").values()] == ["Acme AS"]
        assert list(erp.records("Account")) == ["1"]  # the same account, not a new one
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
            # the other process takes the lease just before this one writes it (after
            # any read this one made of it)
            if _writes_lease(args[2]) and not raced:
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
                if _writes_lease(args[2]) and not taken:
                    taken.append(other.acquire_lease(RUN_LEASE, "other-host:4242", 60))

            with pytest.raises(RunLocked, match=r"another samband run .*other-host"):
                engine.sync()
            assert taken == [True]
        finally:
            other.close()


def _writes_lease(statement: str) -> bool:
    return "samband_leases" in statement and statement.lstrip().upper().startswith(
        ("INSERT", "UPDATE")
    )


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


NO_KEYS = """
dataflows:
  - source: crm.Customer
    target: erp.Person
    properties: [{from: name, to: name, type: string}]
"""


class Killed(BaseException):
    """A process killed right after the system accepted a create."""


def test_a_create_interrupted_beside_a_twin_is_not_made_again(store_url: str) -> None:
    """No external reference, no merge criteria: the record made by an interrupted create
    is looked up by its values; an older record with the same values is not it, and
    when that cannot be told nothing is created again."""
    crm, erp = dataset("crm"), dataset("erp")
    erp.insert("Person", {"name": "John Smith"})  # there before, unrelated
    crm.insert("Customer", {"name": "Kari Nord"})
    with engine_for(store_url, NO_KEYS) as engine:
        engine.sync()  # the twin is read: it is not the one created next
    crm.insert("Customer", {"name": "John Smith"})
    erp.inject_failure("after_create", Killed("kill -9"), "Person")
    with engine_for(store_url, NO_KEYS) as engine, pytest.raises(Killed):
        engine.sync()
    for _ in range(2):
        with engine_for(store_url, NO_KEYS) as engine:
            engine.sync()
    names = sorted(p["name"] for p in erp.records("Person").values())
    assert names == ["John Smith", "John Smith", "Kari Nord"]
    with engine_for(store_url, NO_KEYS) as engine:
        linked = {link.target_ref for link in engine.store().all_links()}
    assert "erp:Person:1" not in linked  # the twin there before is left alone


def test_a_create_interrupted_among_twins_waits_instead_of_guessing(store_url: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "John Smith"})
    crm.insert("Customer", {"name": "John Smith"})
    erp.inject_failure("after_create", Killed("kill -9"), "Person")
    with engine_for(store_url, NO_KEYS) as engine, pytest.raises(Killed):
        engine.sync()
    erp.insert("Person", {"name": "John Smith"})  # entered by hand meanwhile
    for _ in range(2):
        with engine_for(store_url, NO_KEYS) as engine:
            engine.sync()
    assert len(erp.records("Person")) <= 3  # never more than the two and the hand-made one
    with engine_for(store_url, NO_KEYS) as engine:
        kinds = {row["kind"] for row in engine.store().dead_letters()}
        assert kinds <= {"ambiguous"}


def _linked_twenty(store_url: str, flows: str) -> None:
    crm = dataset("crm")
    for n in range(20):
        crm.insert("Customer", {"name": f"C{n}", "org": str(910000000 + n)})
    with engine_for(store_url, flows) as engine:
        assert engine.sync().to_dict()["created"] == 20


@pytest.mark.parametrize("side", ["crm", "erp"])
def test_a_system_emptied_for_a_moment_does_not_unlink_everything(
    store_url: str, side: str
) -> None:
    flows = ACCOUNTS.format(policy="unlink")
    _linked_twenty(store_url, flows)
    system = dataset(side)
    etype = "Customer" if side == "crm" else "Account"
    for rid in list(system.records(etype)):
        system.remove(etype, rid)
    with engine_for(store_url, flows) as engine:
        with pytest.raises(CircuitBreakerTripped, match="max_delete_share"):
            engine.sync()
        assert len(engine.store().all_links()) == 20


def test_a_share_of_zero_allows_no_change(store_url: str) -> None:
    flows = ACCOUNTS.format(policy="propagate").replace(
        "    on_delete: propagate\n", "    on_delete: propagate\n    max_delete_share: 0\n"
    )
    _linked_twenty(store_url, flows)
    dataset("crm").remove("Customer", "1")
    with engine_for(store_url, flows) as engine, pytest.raises(CircuitBreakerTripped):
        engine.sync()
    assert len(dataset("erp").records("Account")) == 20


def test_an_interrupted_run_is_recorded_as_interrupted(store_url: str) -> None:
    crm = dataset("crm")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    crm.inject_failure("read", Killed("Ctrl-C"), "Customer")
    flows = ACCOUNTS.format(policy="unlink")
    with engine_for(store_url, flows) as engine, pytest.raises(Killed):
        engine.sync()
    # and a run left "running" by a process of this machine that is gone
    with engine_for(store_url, flows) as engine:
        with engine.store().tx() as conn:
            conn.execute(
                schema.runs.insert().values(
                    started_at="2026-01-01",
                    status="running",
                    dry_run=False,
                    owner=f"{socket.gethostname()}:{_dead_pid()}",
                )
            )
        engine.sync()
        statuses = [row["status"] for row in engine.store().table_rows(schema.runs)]
    assert statuses == ["interrupted", "interrupted", "ok"]


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_dry_run_neither_creates_the_store_nor_blocks_a_real_run(tmp_path: Path) -> None:
    crm = dataset("crm")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    store = tmp_path / "state.db"
    flows = ACCOUNTS.format(policy="unlink")
    with engine_for(f"sqlite:///{store}", flows) as engine:
        assert engine.sync(dry_run=True).to_dict()["created"] == 1
        assert not store.exists()
        engine.sync()
        crm.insert("Customer", {"name": "Fjord", "org": "2"})
        real: list[str] = []
        with engine_for(f"sqlite:///{store}", flows) as other:
            run_now = EditDuringTheRun(lambda: real.append(other.sync().status))
            preview = engine.sync(dry_run=True, progress=run_now)
        assert real == ["ok"]  # the scheduled run was not held up by the dry run
        assert preview.status == "dry-run"
    assert len(dataset("erp").records("Account")) == 2
