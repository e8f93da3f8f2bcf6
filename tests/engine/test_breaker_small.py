"""The circuit breaker of a small dataflow (fewer links than shares need): one empty answer
must not delete every target (the adversary's f16), while a small deletion still goes
through."""

from __future__ import annotations

import pytest

from samband.config import parse_config
from samband.engine.run import Engine
from samband.errors import CircuitBreakerTripped
from samband.kinds.memory.connector import dataset

CONFIG = """
systems:
  pms: {kind: memory, entity_types: {Project: {}}}
  erp: {kind: memory, entity_types: {Project: {external_ref: ext}}}
dataflows:
  - source: pms.Project
    target: erp.Project
    on_delete: propagate
    properties:
      - {from: name, to: name, type: string}
"""


def engine_for(store: str) -> Engine:
    return Engine(parse_config(f"store: {store}\n{CONFIG}").config)


def linked(store: str, count: int) -> None:
    for number in range(count):
        dataset("pms").insert("Project", {"name": f"Project {number}"})
    with engine_for(store) as engine:
        assert engine.sync().to_dict()["created"] == count


@pytest.mark.parametrize("count", [3, 9])
def test_every_record_of_a_small_dataflow_gone_at_once_trips_the_breaker(
    store: str, count: int
) -> None:
    linked(store, count)
    pms = dataset("pms")
    for rid in list(pms.records("Project")):
        pms.remove("Project", rid)
    with engine_for(store) as engine:
        with pytest.raises(CircuitBreakerTripped, match=f"would end {count} of {count} links"):
            engine.sync()
        assert len(engine.store().all_links()) == count
    assert len(dataset("erp").records("Project")) == count
    # when it is intended, --force deletes them
    with engine_for(store) as engine:
        assert engine.sync(force=True).to_dict()["deleted"] == count
    assert dataset("erp").records("Project") == {}


@pytest.mark.parametrize(("count", "removed"), [(9, 5), (2, 2), (3, 1)])
def test_a_small_deletion_in_a_small_dataflow_goes_through(
    store: str, count: int, removed: int
) -> None:
    linked(store, count)
    pms = dataset("pms")
    for rid in list(pms.records("Project"))[:removed]:
        pms.remove("Project", rid)
    with engine_for(store) as engine:
        report = engine.sync()
        assert report.status == "ok", report.messages
        assert report.to_dict()["deleted"] == removed
    assert len(dataset("erp").records("Project")) == count - removed
