"""A run raises the cyclic collector's threshold while it runs, and puts it back."""

from __future__ import annotations

import gc
import threading

from samband.engine._gc import THRESHOLD, fewer_collections
from samband.kinds.memory.connector import dataset
from tests.support.engine import ACCOUNTS, engine_for


def test_a_run_collects_less_often_and_restores_the_setting(store: str) -> None:
    before = gc.get_threshold()
    seen: list[int] = []
    crm = dataset("crm")
    crm.insert("Customer", {"name": "Acme", "org": "1"})
    dataset("erp").inject_failure("create", lambda: seen.append(gc.get_threshold()[0]))
    with engine_for(store, ACCOUNTS) as engine:
        assert engine.sync().to_dict()["created"] == 1
    assert seen == [max(before[0], THRESHOLD)]
    assert gc.get_threshold() == before


def test_overlapping_runs_restore_the_setting_the_first_found() -> None:
    before = gc.get_threshold()
    inside, leave = threading.Event(), threading.Event()

    def other_run() -> None:
        with fewer_collections():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=other_run)
    with fewer_collections():
        thread.start()
        assert inside.wait(10)
    assert gc.get_threshold()[0] >= THRESHOLD  # the other run is still going on
    leave.set()
    thread.join(10)
    assert gc.get_threshold() == before
