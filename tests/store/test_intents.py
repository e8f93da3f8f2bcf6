"""Create intents are stored one row per chunk; each intent still opens and closes on its
own, also when another process (another store) closes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from samband.store import schema
from samband.store.store import Store

AT = "2026-11-22T00:00:00+00:00"


def _intent(number: int) -> dict[str, Any]:
    return {
        "key": f"companies|crm:Company:{number}",
        "source_ref": f"crm:Company:{number}",
        "external_ref": f"crm:Company:{number}",
        "values": {"Name": f"Company {number}", "Amount": "12.50"},
    }


def _add(store: Store, *numbers: int) -> None:
    with store.durable_tx():
        store.add_intents("companies", ("erp", "Customer"), [_intent(n) for n in numbers], 7, AT)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return str(request.getfixturevalue("postgres_url"))


def _rows(store: Store) -> int:
    return int(store.conn.execute(select(func.count()).select_from(schema.intents)).scalar_one())


def _open(store: Store) -> list[str]:
    return sorted(intent["key"] for intent in store.open_intents())


def test_a_chunk_of_intents_is_one_row_and_each_closes_alone(store_url: str) -> None:
    first, second = Store(store_url), Store(store_url)
    try:
        _add(first, 1, 2, 3)
        assert _rows(first) == 1
        listed = {i["key"]: i for i in second.open_intents()}
        assert listed["companies|crm:Company:2"] == {
            **_intent(2),
            "dataflow": "companies",
            "target_system": "erp",
            "target_etype": "Customer",
            "values": '{"Amount":"12.50","Name":"Company 2"}',
            "run_id": 7,
            "created_at": AT,
        }
        with first.tx():
            first.remove_intents(["companies|crm:Company:1"])
        assert _open(second) == ["companies|crm:Company:2", "companies|crm:Company:3"]
        # a store that never saw the chunk (another process) closes one of its intents
        third = Store(store_url)
        try:
            with third.tx():
                third.remove_intents(["companies|crm:Company:3"])
        finally:
            third.close()
        assert _open(first) == ["companies|crm:Company:2"]
        with first.tx():
            first.remove_intents(["companies|crm:Company:3", "companies|crm:Company:2"])
        assert _open(second) == [] and _rows(second) == 0
    finally:
        first.close()
        second.close()


def test_intents_of_two_chunks_close_independently(store_url: str) -> None:
    store = Store(store_url)
    try:
        _add(store, 1, 2)
        _add(store, 3)
        assert _rows(store) == 2
        with store.tx():
            store.remove_intents(["companies|crm:Company:3", "companies|crm:Company:1"])
        assert _open(store) == ["companies|crm:Company:2"] and _rows(store) == 1
    finally:
        store.close()
