"""Workers sharing one store (``samband worker``, ``Engine.work``): reading is divided by
entity type, one worker plans at a time, and what one worker read another plans."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from samband.engine.inspect import Inspector
from samband.engine.leases import RUN_LEASE, collect_lease
from samband.engine.run import Engine
from samband.errors import RunLocked
from samband.kinds.memory.connector import dataset
from tests.support.engine import ACCOUNTS, engine_for


@contextmanager
def two_workers(store: str) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one store, as two worker processes would be; neither waits for a
    lease another holds."""
    with (
        engine_for(store, ACCOUNTS, lease_wait=0) as first,
        engine_for(store, ACCOUNTS, lease_wait=0) as second,
    ):
        yield first, second


def test_workers_divide_reading_and_one_plans_what_another_read(store: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    for index in range(5):
        crm.insert("Customer", {"name": f"C{index}", "org": str(100 + index)})
    with two_workers(store) as (first, second):
        first.compile()
        first_store = first.store()

        # the first worker is reading crm.Customer: the second leaves that type to it
        assert first.leases.claim(first_store, collect_lease("crm", "Customer"))
        report = second.work()
        assert report.status == "collected"
        assert "crm.Customer" not in report.collected
        assert "erp.Account" in report.collected
        assert any("crm.Customer: being read by another worker" in m for m in report.messages)
        assert report.to_dict()["created"] == 0 and erp.records("Account") == {}
        first.leases.release(first_store, collect_lease("crm", "Customer"))

        # the first worker is planning: the second reads, and leaves the plan to it
        assert first.leases.claim(first_store, RUN_LEASE)
        report = second.work()
        assert report.status == "collected"
        assert report.collected["crm.Customer"]["changed"] == 5
        assert erp.records("Account") == {}
        # samband status shows what waits to be planned and who holds the run lease
        with Inspector(first.config) as inspector:
            status = inspector.status()
        assert {"type": "crm.Customer", "records": 5} in status["queued"]
        assert [(lease["lease"], lease["held_by"]) for lease in status["leases"]] == [
            (RUN_LEASE, first.leases.owner)
        ]
        first.leases.release(first_store, RUN_LEASE)

        # the planner creates what the other worker read (it reads nothing new itself)
        report = first.work()
        assert report.status == "ok"
        assert report.collected["crm.Customer"]["changed"] == 0
        assert report.to_dict()["created"] == 5
        assert sorted(a["org"] for a in erp.records("Account").values()) == [
            str(100 + i) for i in range(5)
        ]
        assert second.work().writes == 0
        assert first.work().writes == 0
        assert len(erp.records("Account")) == 5


def test_a_worker_takes_over_the_claims_of_a_dead_one(store: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    with engine_for(store, ACCOUNTS) as engine:
        db = engine.store()
        dead = f"{os.uname().nodename}:999999999:1"  # a pid no process has
        assert db.acquire_lease(collect_lease("crm", "Customer"), dead, 600)
        assert db.acquire_lease(RUN_LEASE, dead, 600)
        report = engine.work()
        assert report.status == "ok" and report.to_dict()["created"] == 1
        assert len(erp.records("Account")) == 1
        assert db.lease_holder(RUN_LEASE) is None


def test_no_worker_plans_while_another_is_still_reading_a_type_it_matches_against(
    store: str,
) -> None:
    """Records not read yet are missing from the merge-criteria index: planning against
    a half-read target type would create what should have been matched."""
    crm, erp = dataset("crm"), dataset("erp")
    for index in range(5):
        crm.insert("Customer", {"name": f"C{index}", "org": str(100 + index)})
        erp.insert("Account", {"name": f"C{index}", "org": str(100 + index)})
    with two_workers(store) as (first, second):
        first.compile()
        first_store = first.store()

        # the first worker is reading erp.Account: the second reads crm.Customer only,
        # and must not plan it against an index of accounts that is not read yet
        assert first.leases.claim(first_store, collect_lease("erp", "Account"))
        report = second.work()
        assert report.status == "collected"
        assert report.collected["crm.Customer"]["changed"] == 5
        assert any("erp.Account" in m and "being read" in m for m in report.messages)
        assert report.to_dict()["created"] == 0 and len(erp.records("Account")) == 5
        first.leases.release(first_store, collect_lease("erp", "Account"))

        report = second.work()
        assert report.status == "ok"
        assert report.to_dict()["created"] == 0 and report.to_dict()["linked"] == 5
        assert len(erp.records("Account")) == 5
        assert first.work().writes == 0


def test_nothing_is_read_into_the_store_while_a_worker_plans(store: str) -> None:
    """A page another worker read before one of the planner's writes and stored after it
    would put the record back as it was before the write (and look like an edit)."""
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    with two_workers(store) as (planner, other):
        assert planner.work().to_dict()["created"] == 1
        (account_id,) = erp.records("Account")
        crm.edit("Customer", "1", {"name": "Acme Holding"})
        erp.edit("Account", account_id, {"email": "post@acme.no"})
        turns: list[Any] = []
        # the other worker takes its turn while the planner writes the account
        erp.inject_failure("update", lambda: turns.append(other.work()), "Account")

        report = planner.work()
        assert report.status == "ok" and report.to_dict()["updated"] == 2
        (turn,) = turns
        assert turn.status == "collected"
        assert turn.collected == {}, "a type was read while another worker planned"
        assert any("is planning" in m for m in turn.messages)
        assert erp.records("Account")[account_id]["name"] == "Acme Holding"
        assert crm.records("Customer")["1"]["email"] == "post@acme.no"
        assert other.work().writes == 0
        assert planner.work().writes == 0


def test_a_sync_does_not_plan_while_a_worker_reads_a_type(store: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    erp.insert("Account", {"name": "Acme", "org": "1"})
    with engine_for(store, ACCOUNTS, lease_wait=0) as engine:
        db = engine.store()
        worker = f"{os.uname().nodename}:1:other"  # this machine's pid 1: alive
        assert db.acquire_lease(collect_lease("erp", "Account"), worker, 600)
        with pytest.raises(RunLocked, match=r"erp\.Account: being read by another"):
            engine.sync()
        assert len(erp.records("Account")) == 1
        db.release_lease(collect_lease("erp", "Account"), worker)
        report = engine.sync()
        assert report.to_dict()["linked"] == 1 and len(erp.records("Account")) == 1


def test_the_planner_waits_for_a_type_being_read(store: str) -> None:
    with engine_for(store, ACCOUNTS) as engine:
        db = engine.store()
        name = collect_lease("erp", "Account")
        assert db.acquire_lease(name, f"{os.uname().nodename}:1:other", 0.5)
        assert engine.leases.claim_all(db, [name], 0, lambda: False) == [name]
        # the other reader's lease runs out (it would release it when done reading)
        assert engine.leases.claim_all(db, [name], 30, lambda: False) == []
        assert db.lease_holder(name)[0] == engine.leases.owner


def test_a_run_that_lost_its_lease_stops_before_its_next_write(store: str) -> None:
    """A process that stalled longer than its lease's lifetime finds another process
    holding it: it must stop, not plan alongside."""
    crm, erp = dataset("crm"), dataset("erp")
    for index in range(5):
        crm.insert("Customer", {"name": f"C{index}", "org": str(100 + index)})
    with engine_for(store, ACCOUNTS) as engine:
        db = engine.store()
        engine.leases.ttl = 0  # every keep-alive renews
        other = f"{os.uname().nodename}:1:other"

        def taken_over() -> None:  # after the first create, another process has the lease
            db.release_lease(RUN_LEASE, engine.leases.owner)
            assert db.acquire_lease(RUN_LEASE, other, 600)

        erp.inject_failure("after_create", taken_over, "Account")
        with pytest.raises(RunLocked, match="lost its lease samband-run"):
            engine.sync()
        assert len(erp.records("Account")) == 1
        assert db.lease_holder(RUN_LEASE)[0] == other


def test_every_lease_of_a_run_is_kept_alive_through_a_long_read(store: str) -> None:
    crm = dataset("crm")
    for index in range(6):
        crm.insert("Customer", {"name": f"C{index}", "org": str(100 + index)})
    with engine_for(store, ACCOUNTS) as engine:
        db = engine.store()
        engine.leases.ttl = 0  # every keep-alive renews
        connector = engine.connector("crm")
        connector.page_size = 2  # type: ignore[attr-defined]
        read = connector.read
        other = f"{os.uname().nodename}:1:other"

        pages: list[int] = []

        def read_and_lose_the_run_lease(etype: str, cursor: str | None) -> Any:
            for number, page in enumerate(read(etype, cursor)):
                pages.append(number)
                yield page
                if number == 0:  # while this type is read, the run lease is taken over
                    db.release_lease(RUN_LEASE, engine.leases.owner)
                    assert db.acquire_lease(RUN_LEASE, other, 600)

        connector.read = read_and_lose_the_run_lease  # type: ignore[method-assign]
        with pytest.raises(RunLocked, match="lost its lease samband-run"):
            engine.sync()
        assert pages == [0, 1], "the read went on after the run lease was lost"
