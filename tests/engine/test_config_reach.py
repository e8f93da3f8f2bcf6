"""A config change reaches the records synced before it: a new dataflow for a type already
read, ``create`` turned on, a filter removed or changed, a merge combination added (the
adversary's f1).  Each run after the change applies the new rules to every live source
record, not only to the ones edited since."""

from __future__ import annotations

import pytest

from samband.config import parse_config
from samband.engine.run import Engine
from samband.kinds.memory.connector import dataset

SYSTEMS = """
systems:
  crm: {kind: memory, entity_types: {Customer: {}}}
  erp: {kind: memory, entity_types: {Account: {external_ref: ext}}}
  shop: {kind: memory, entity_types: {Client: {external_ref: ext}}}
dataflows:
"""


def flow(target: str = "erp.Account", extra: str = "") -> str:
    return f"""  - source: crm.Customer
    target: {target}
{extra}    properties:
      - {{from: name, to: name, type: string}}
      - {{from: active, to: active, type: boolean}}
      - {{from: email, to: email, type: string}}
"""


def run(store: str, flows: str) -> dict[str, object]:
    with Engine(parse_config(f"store: {store}\n{SYSTEMS}{flows}").config) as engine:
        report = engine.sync()
        assert report.status == "ok", report.messages
        return report.to_dict()


FILTER = "    filter: {text: active ones, where: {active: %s}}\n"
NO_CREATE = "    create: false\n"
BY_ORG = "    create: false\n    match: [[{from: name, to: org}]]\n"
BY_ORG_OR_EMAIL = (
    "    create: false\n    match: [[{from: name, to: org}], [{from: email, to: email}]]\n"
)
CASES = {
    "new dataflow": (flow(), flow() + flow("shop.Client"), "shop", "Client", ["A", "B"]),
    "create turned on": (flow(extra=NO_CREATE), flow(), "erp", "Account", ["A", "B"]),
    "filter removed": (flow(extra=FILTER % "true"), flow(), "erp", "Account", ["A", "B"]),
    # A was created under the first filter and stays linked; B passes the new one
    "filter changed": (
        flow(extra=FILTER % "true"),
        flow(extra=FILTER % "false"),
        "erp",
        "Account",
        ["A", "B"],
    ),
    "merge combination added": (
        flow(extra=BY_ORG),
        flow(extra=BY_ORG_OR_EMAIL),
        "erp",
        "Account",
        ["A"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_config_change_reaches_the_records_synced_before(store: str, case: str) -> None:
    before, after, system, etype, want = CASES[case]
    crm = dataset("crm")
    crm.insert("Customer", {"name": "A", "active": True, "email": "a@x.no"})
    crm.insert("Customer", {"name": "B", "active": False})
    if case == "merge combination added":
        dataset("erp").insert("Account", {"name": "old name", "email": "a@x.no"})
    run(store, before)
    report = run(store, after)
    assert any("planned again" in message for message in report["messages"]), report
    assert sorted(r["name"] for r in dataset(system).records(etype).values()) == want
    # and the change is applied once: the next run has nothing to do
    again = run(store, after)
    assert again["created"] == 0 and again["updated"] == 0
    assert sorted(r["name"] for r in dataset(system).records(etype).values()) == want


def test_an_unchanged_config_plans_nothing_again(store: str) -> None:
    dataset("crm").insert("Customer", {"name": "A", "active": True})
    run(store, flow(extra=FILTER % "true"))
    report = run(store, flow(extra=FILTER % "true"))
    assert not any("planned again" in m for m in report["messages"]), report
    assert report["created"] == 0 and report["updated"] == 0
