"""A run that yields between chunks (``Engine.sync(max_chunks=..., max_seconds=...)``): a
big initial load is done in turns, each committed, and ends where one uninterrupted run
ends — no record twice, none lost, nothing read again that was read already."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samband.engine.run import RunReport, TurnBudget
from samband.errors import SambandError
from samband.kinds.memory.connector import _DATASETS, dataset
from samband.store import schema
from tests.support.engine import engine_for

FLOWS = """
dataflows:
  - source: crm.Customer
    target: erp.Account
    match: [[{from: org, to: org}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
      - {from: email, to: email, type: string}
      - {from: amount, to: amount, type: decimal}
  - source: crm.Contact
    target: erp.Person
    properties:
      - {from: name, to: name, type: string}
      - {from: customer_id, to: account_id, type: reference, source_ref: Customer,
         target_ref: Account}
"""


def seed(customers: int, contacts: int) -> None:
    crm = dataset("crm")
    for i in range(customers):
        crm.put(
            "Customer",
            str(i),
            {
                "id": str(i),
                "name": f"Customer {i}"[:20],
                "org": f"{900000000 + i}",
                "email": f"c{i}@example.no",
                "amount": str(Decimal(i) / 100),
            },
        )
    for i in range(contacts):
        crm.put(
            "Contact", str(i), {"id": str(i), "name": f"Contact {i}", "customer_id": str(i * 3)}
        )


def final_state() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """What erp holds, without its own ids: accounts, and persons with their account's org."""
    accounts = dataset("erp").records("Account")
    org_of = {rid: row.get("org") for rid, row in accounts.items()}
    return (
        sorted(
            (row.get("name"), row.get("org"), row.get("email"), str(row.get("amount")))
            for row in accounts.values()
        ),
        sorted(
            (row.get("name"), org_of.get(str(row.get("account_id"))))
            for row in dataset("erp").records("Person").values()
        ),
    )


def in_turns(store: str, **budget: Any) -> list[RunReport]:
    """Runs until one does not yield, each on a new engine (as a queue's jobs would)."""
    reports: list[RunReport] = []
    while True:
        with engine_for(store, FLOWS, chunk_size=500) as engine:
            report = engine.sync(**budget)
        reports.append(report)
        if report.status != "yielded":
            return reports
        assert len(reports) < 500, "the turns never end"


def read(reports: list[RunReport], key: str) -> int:
    return sum(report.collected.get(key, {}).get("read", 0) for report in reports)


def test_a_20000_record_initial_load_in_turns_ends_as_one_run_does(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/turns.db"
    customers, contacts = 16_000, 4_000
    seed(customers, contacts)
    turns = in_turns(store, max_chunks=10)
    assert [r.status for r in turns[:-1]] == ["yielded"] * (len(turns) - 1)
    assert turns[-1].status == "ok"
    assert len(turns) >= 3
    assert all(r.committed_writes > 0 for r in turns)
    # every source record was read once, by the first turn; the others only read changes
    assert read(turns, "crm.Customer") == customers
    assert read(turns, "crm.Contact") == contacts
    assert sum(r.total().created for r in turns) == customers + contacts
    in_turns_state = final_state()
    accounts, persons = in_turns_state
    assert len(accounts) == customers and len(set(accounts)) == customers
    assert len(persons) == contacts and all(org is not None for _, org in persons)

    # the same load in one run, from scratch
    _DATASETS.clear()
    seed(customers, contacts)
    with engine_for(f"sqlite:///{tmp_path}/one.db", FLOWS, chunk_size=500) as engine:
        one = engine.sync()
    assert one.status == "ok"
    assert final_state() == in_turns_state


def test_a_turn_of_records_that_only_wait_does_not_count() -> None:
    budget = TurnBudget(max_chunks=1)
    budget.count(moved=False)
    assert not budget.spent()
    budget.count(moved=True)
    assert budget.spent()
    with pytest.raises(SambandError):
        TurnBudget(max_chunks=0)
    with pytest.raises(SambandError):
        TurnBudget(max_seconds=0)


def _waiting_dead_letters(store: str) -> list[str]:
    with engine_for(store, FLOWS) as engine:
        rows = engine.store().table_rows(schema.dead_letters)
    return [row["ref"] for row in rows if row["kind"] == "waiting"]


@pytest.mark.parametrize("yielding", [True, False])
def test_waiting_for_a_parent_counts_runs_not_turns(store: str, yielding: bool) -> None:
    """A contact whose customer cannot be synchronized waits; it is set aside after
    three runs (max_parent_wait_runs) — and a series of turns counts as one run."""
    crm = dataset("crm")
    seed(2, 0)
    crm.edit("Customer", "0", {"name": "A name far too long for the account"})  # refused
    crm.put("Contact", "0", {"id": "0", "name": "Waits", "customer_id": "0"})
    budget = {"max_chunks": 1} if yielding else {}
    statuses = []
    for turn in range(1, 6):
        for i in range(turn * 10, turn * 10 + 6):  # new work in every turn
            crm.put("Contact", str(i), {"id": str(i), "name": f"C{i}", "customer_id": "1"})
        with engine_for(store, FLOWS, chunk_size=7) as engine:
            statuses.append(engine.sync(**budget).status)
    if yielding:
        assert statuses == ["yielded"] * 5
        assert _waiting_dead_letters(store) == []
    else:
        assert statuses == ["ok"] * 5
        assert _waiting_dead_letters(store) == ["crm:Contact:0"]  # the test can fail


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    budgets=st.lists(st.integers(1, 4), min_size=1, max_size=12),
    edits=st.lists(
        st.tuples(st.integers(0, 11), st.integers(0, 59), st.text("abcxyz ", max_size=8)),
        max_size=12,
    ),
)
def test_any_yield_points_with_edits_between_turns_converge(
    tmp_path_factory: pytest.TempPathFactory, budgets: list[int], edits: list[Any]
) -> None:
    _DATASETS.clear()
    store = f"sqlite:///{tmp_path_factory.mktemp('yield')}/store.db"
    seed(60, 20)
    crm = dataset("crm")
    for turn, max_chunks in enumerate(budgets):
        for when, customer, name in edits:
            if when == turn:
                crm.edit("Customer", str(customer), {"name": f"Edited {name}"[:20]})
        with engine_for(store, FLOWS, chunk_size=7) as engine:
            report = engine.sync(max_chunks=max_chunks)
        assert report.status in ("yielded", "ok")
    for when, customer, name in edits:
        if when >= len(budgets):
            crm.edit("Customer", str(customer), {"name": f"Edited {name}"[:20]})
    with engine_for(store, FLOWS, chunk_size=7) as engine:
        last = engine.sync()
    assert last.status == "ok"
    accounts, persons = final_state()
    expected = sorted(
        (row["name"], row["org"], row["email"], str(row["amount"]))
        for row in crm.records("Customer").values()
    )
    assert accounts == expected  # one account per customer, as the customer is now
    assert len(persons) == 20 and all(org is not None for _, org in persons)
    with engine_for(store, FLOWS, chunk_size=7) as engine:
        assert engine.sync().writes == 0  # quiescent


def test_a_turn_of_some_seconds_yields_after_a_chunk_that_moved(tmp_path: Path) -> None:
    seed(100, 0)
    with engine_for(f"sqlite:///{tmp_path}/s.db", FLOWS, chunk_size=10) as engine:
        report = engine.sync(max_seconds=1e-6)
    assert report.status == "yielded" and not report.failed
    assert report.total().created == 10
    assert report.to_dict()["status"] == "yielded"


def test_the_docs_example_takes_turns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.support.docs_examples import DOCS, block_after
    from tests.support.docs_examples import run_python as _run_python

    example = block_after(DOCS / "shared-quotas.md", "## Runs that take turns", "python")
    _run_python(example, tmp_path)
    assert capsys.readouterr().out.strip() == "4 turns, 2000 accounts"  # 4 chunks of 500
