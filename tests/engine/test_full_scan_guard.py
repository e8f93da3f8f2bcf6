"""The full-scan guard: a complete read that returns far fewer records than the type had is
not taken as deletions until a person confirms them; everything else of the run (creates,
updates) goes through, the report and `samband status` say what was held and what to do,
and the confirmation is kept in the store."""

from __future__ import annotations

import pytest

from samband.config import parse_config
from samband.engine.inspect import Inspector
from samband.engine.run import Engine, RunReport
from samband.errors import CircuitBreakerTripped, SambandError
from samband.kinds.memory.connector import dataset
from samband.store import schema
from samband.store.store import Store, loads

CONFIG = """
systems:
  pms: {{kind: memory, {pms}entity_types: {{Project: {{incremental: false}}}}}}
  erp: {{kind: memory, entity_types: {{Project: {{external_ref: ext}}}}}}
dataflows:
  - source: pms.Project
    target: erp.Project
    on_delete: propagate
{flow}    properties:
      - {{from: name, to: name, type: string}}
{defaults}"""


def config(store: str, *, pms: str = "", flow: str = "", defaults: str = "") -> str:
    return f"store: {store}\n" + CONFIG.format(pms=pms, flow=flow, defaults=defaults)


def sync(text: str, **options: object) -> RunReport:
    with Engine(parse_config(text).config) as engine:
        return engine.sync(**options)  # type: ignore[arg-type]


def linked(text: str, count: int) -> list[str]:
    pms = dataset("pms")
    rids = [pms.insert("Project", {"name": f"Project {n}"}) for n in range(count)]
    assert sync(text).to_dict()["created"] == count
    return rids


def remove(rids: list[str]) -> None:
    for rid in rids:
        dataset("pms").remove("Project", rid)


def erp_names() -> set[str]:
    return {r["name"] for r in dataset("erp").records("Project").values()}


# the circuit breaker as configured by default, and one a user opened (it no longer guards)
BREAKERS = {"default breaker": "", "breaker at 100%": "    max_delete_share: 1\n"}


@pytest.mark.parametrize("flow", BREAKERS.values(), ids=BREAKERS.keys())
def test_a_read_far_short_holds_its_deletions_and_the_rest_goes_through(
    store: str, flow: str
) -> None:
    text = config(store, flow=flow)
    rids = linked(text, 10)
    remove(rids[3:])  # 7 of 10 no longer returned
    dataset("pms").edit("Project", rids[0], {"name": "Project 0 renamed"})
    dataset("pms").insert("Project", {"name": "Project new"})

    report = sync(text)

    data = report.to_dict()
    assert report.status == "ok", report.messages
    assert (data["created"], data["updated"], data["deleted"]) == (1, 1, 0)
    assert erp_names() == {f"Project {n}" for n in range(1, 10)} | {
        "Project 0 renamed",
        "Project new",
    }
    assert data["held_deletions"] == [
        {
            "type": "pms.Project",
            "read": 4,
            "expected": 11,
            "last_complete": 10,
            "unseen": 7,
            "share": 0.5,
        }
    ]
    assert data["collected"]["pms.Project"]["held"] == 7
    message = next(m for m in data["messages"] if m.startswith("pms.Project: deletions held"))
    assert "--confirm-deletions pms.Project" in message
    with Inspector(parse_config(text).config) as inspector:
        held = inspector.status()["held_deletions"]
    assert [(h["type"], h["read"], h["expected"], h["not_returned"]) for h in held] == [
        ("pms.Project", 4, 11, 7)
    ]
    assert held[0]["last_complete_read"] == 10
    assert held[0]["to_do"] == "samband sync --confirm-deletions pms.Project"

    # held until confirmed: the next run holds them again, --force does not confirm them
    assert sync(text).to_dict()["deleted"] == 0
    assert sync(text, force=True).to_dict()["deleted"] == 0
    assert len(erp_names()) == 11


def test_confirmed_deletions_are_applied_and_recorded(store: str) -> None:
    text = config(store, flow=BREAKERS["breaker at 100%"])
    rids = linked(text, 10)
    remove(rids[2:])
    assert sync(text).to_dict()["deleted"] == 0

    report = sync(text, confirm_deletions=["pms.Project"])

    data = report.to_dict()
    assert report.status == "ok", report.messages
    assert data["deleted"] == 8
    assert erp_names() == {"Project 0", "Project 1"}
    assert data["confirmed_deletions"] == [
        {"type": "pms.Project", "read": 2, "expected": 10, "last_complete": 10, "deleted": 8}
    ]
    with Inspector(parse_config(text).config) as inspector:
        assert inspector.status()["held_deletions"] == []
    state = Store(store)
    try:
        scan = state.full_scan("pms", "Project")
        assert scan is not None
        assert (scan.complete_count, scan.confirmed_run, scan.held) == (2, report.run_id, False)
        # the run's record in the history keeps what was confirmed
        (run,) = state.table_rows(schema.runs, where=schema.runs.c.id == report.run_id)
        assert loads(run["stats"])["confirmed_deletions"] == data["confirmed_deletions"]
    finally:
        state.close()
    # from now on two is what the type has: a run with no change holds nothing
    quiet = sync(text).to_dict()
    assert (quiet["deleted"], quiet["held_deletions"]) == (0, [])


def test_confirmed_deletions_still_count_for_the_circuit_breaker(store: str) -> None:
    text = config(store)
    rids = linked(text, 10)
    remove(rids[2:])
    assert sync(text).to_dict()["deleted"] == 0
    # the read is confirmed; the breaker then judges the plan, as for any deletion
    with pytest.raises(CircuitBreakerTripped, match="would end 8 of 10 links"):
        sync(text, confirm_deletions=["pms.Project"])
    assert len(erp_names()) == 10
    # the deletions were taken and stay queued: --force lets them through
    assert sync(text, force=True).to_dict()["deleted"] == 8
    assert erp_names() == {"Project 0", "Project 1"}


@pytest.mark.parametrize("removed", [1, 5])
def test_a_smaller_deletion_goes_through_as_before(store: str, removed: int) -> None:
    text = config(store)
    rids = linked(text, 10)
    remove(rids[:removed])
    data = sync(text).to_dict()
    assert (data["deleted"], data["held_deletions"]) == (removed, [])
    assert len(erp_names()) == 10 - removed


def test_a_dry_run_shows_the_hold_and_a_confirmed_dry_run_the_deletions(store: str) -> None:
    text = config(store)
    rids = linked(text, 10)
    remove(rids[4:])
    preview = sync(text, dry_run=True).to_dict()
    assert [h["unseen"] for h in preview["held_deletions"]] == [6]
    assert not any("deleted" in step["text"] for step in preview["plan"]), preview["plan"]
    confirmed = sync(text, dry_run=True, confirm_deletions=["pms.Project"]).to_dict()
    assert sum("deleted)" in step["text"] for step in confirmed["plan"]) == 6, confirmed["plan"]
    assert len(erp_names()) == 10  # a dry run writes nothing


@pytest.mark.parametrize(
    ("pms", "defaults", "removed", "deleted"),
    [
        ("min_full_scan_share: 0, ", "", 8, 8),  # 0 switches the guard off for the system
        ("min_full_scan_share: 0.1, ", "", 8, 8),  # 2 of 10 is not under 10%
        ("", "defaults: {min_full_scan_share: 0.9}\n", 2, 0),  # 8 of 10 is under 90%
        ("min_full_scan_share: 0.5, ", "defaults: {min_full_scan_share: 0.9}\n", 2, 2),
    ],
)
def test_the_share_is_set_per_system_or_for_all(
    store: str, pms: str, defaults: str, removed: int, deleted: int
) -> None:
    text = config(store, pms=pms, flow="    max_delete_share: 1\n", defaults=defaults)
    rids = linked(text, 10)
    remove(rids[:removed])
    assert sync(text).to_dict()["deleted"] == deleted


@pytest.mark.parametrize("count", [2])
def test_a_type_too_small_for_shares_is_not_held(store: str, count: int) -> None:
    text = config(store)
    rids = linked(text, count)
    remove(rids)
    assert sync(text).to_dict()["deleted"] == count


def test_confirming_a_type_no_dataflow_reads_is_refused(store: str) -> None:
    text = config(store)
    with pytest.raises(SambandError, match=r"--confirm-deletions pms\.Projects: no dataflow"):
        sync(text, confirm_deletions=["pms.Projects"])


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_a_share_out_of_range_is_refused_with_its_place(store: str, share: float) -> None:
    with pytest.raises(SambandError, match=r"min_full_scan_share must be from 0 to 1"):
        parse_config(config(store, pms=f"min_full_scan_share: {share}, "))
    with pytest.raises(SambandError, match=r":\d+:\d+: error: defaults.min_full_scan_share"):
        parse_config(config(store, defaults=f"defaults: {{min_full_scan_share: {share}}}\n"))


TARGET_SCANNED = """
store: {store}
systems:
  crm: {{kind: memory, entity_types: {{Customer: {{}}}}}}
  pms: {{kind: memory, entity_types: {{Project: {{incremental: false, external_ref: ext}}}}}}
dataflows:
  - source: crm.Customer
    target: pms.Project
    on_delete: propagate
    max_delete_share: 1
    properties:
      - {{from: name, to: name, type: string}}
"""


def test_deletions_made_since_the_last_complete_read_lower_what_is_expected(
    store: str,
) -> None:
    """The engine deleted 8 of the 10 records a complete read returned (propagated from the
    other system); one more deleted by a person is one of the two the type has, not one of
    ten: it goes through."""
    text = TARGET_SCANNED.format(store=store)
    crm = dataset("crm")
    rids = [crm.insert("Customer", {"name": f"Customer {n}"}) for n in range(10)]
    assert sync(text).to_dict()["created"] == 10
    assert sync(text).to_dict()["held_deletions"] == []  # a complete read of the ten
    for rid in rids[2:]:
        crm.remove("Customer", rid)
    assert sync(text).to_dict()["deleted"] == 8
    assert len(dataset("pms").records("Project")) == 2
    dataset("pms").remove("Project", next(iter(dataset("pms").records("Project"))))

    report = sync(text).to_dict()

    assert report["held_deletions"] == [], report["messages"]
    assert report["collected"]["pms.Project"]["deleted"] == 1
