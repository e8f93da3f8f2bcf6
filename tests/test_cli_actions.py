"""Acting on what a run shows, end to end through real runs (memory systems kept in JSON
files, a SQLite store): conflicts resolved, quarantined records dismissed, wrong links
undone and records linked by hand, a type read again; each recorded in history.  And the
JSON scripts read: the dry-run plan as objects, the circuit breaker's refusal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from samband.cli import app
from samband.kinds.memory.connector import MemoryDataset, forget_dataset

CONFIG = """
store: sqlite:///state.db
systems:
  crm:
    kind: memory
    path: crm.json
    entity_types: {Customer: {external_ref: ext}}
  erp:
    kind: memory
    path: erp.json
    entity_types:
      Account:
        external_ref: ext
        properties: {name: {type: string, max_length: 10}, org: {type: string}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    match: [[{from: org, to: org}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
"""
FLOW = "crm.Customer->erp.Account"
runner = CliRunner()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "samband.yaml").write_text(CONFIG)
    crm = MemoryDataset("crm-file")
    crm.insert("Customer", {"name": "Acme", "org": "912345678"})  # 1
    crm.insert("Customer", {"name": "Far too long a name", "org": "987654321"})  # 2
    crm.save(str(tmp_path / "crm.json"))
    erp = MemoryDataset("erp-file")
    erp.insert("Account", {"name": "Other", "org": "111"})  # 1
    erp.save(str(tmp_path / "erp.json"))
    return tmp_path


def run(workdir: Path, *args: str) -> tuple[int, str]:
    for name in ("crm", "erp"):
        forget_dataset(name)  # each command is a new process for the memory systems
    result = runner.invoke(app, [*args, "-c", str(workdir / "samband.yaml")])
    return result.exit_code, result.stdout


def run_json(workdir: Path, *args: str) -> Any:
    code, output = run(workdir, *args, "--json")
    assert code == 0, output
    return json.loads(output)


def records(workdir: Path, system: str, etype: str) -> dict[str, dict[str, Any]]:
    payload = json.loads((workdir / f"{system}.json").read_text())
    return {
        rid: row["data"]
        for rid, row in payload["types"].get(etype, {}).items()
        if not row["deleted"]
    }


def edit(workdir: Path, system: str, etype: str, rid: str, **changes: Any) -> None:
    """An edit made in the system itself (a new version, modified now)."""
    path = str(workdir / f"{system}.json")
    dataset = MemoryDataset.load(f"edit-{system}", path)
    dataset.edit(etype, rid, changes)
    dataset.save(path)


def history_ops(workdir: Path, ref: str) -> list[str]:
    return [row["op"] for row in run_json(workdir, "history", ref)]


def test_a_conflict_resolved_for_the_target_puts_its_value_in_the_source(
    workdir: Path,
) -> None:
    run_json(workdir, "sync")
    accounts = records(workdir, "erp", "Account")
    (account_id,) = [k for k, v in accounts.items() if v["name"] == "Acme"]
    edit(workdir, "erp", "Account", account_id, name="ERP side")
    edit(workdir, "crm", "Customer", "1", name="CRM side")  # later: the source wins
    assert run_json(workdir, "sync")["conflicts"] == 1
    assert records(workdir, "erp", "Account")[account_id]["name"] == "CRM side"

    (conflict,) = run_json(workdir, "conflicts")
    assert conflict["winner"] == "source" and isinstance(conflict["id"], int)
    done = run_json(workdir, "conflicts", "resolve", str(conflict["id"]), "--take", "target")
    assert done["take"] == "target" and done["value"] == "ERP side"

    report = run_json(workdir, "sync")
    assert report["conflicts"] == 0 and report["updated"] == 2
    assert records(workdir, "crm", "Customer")["1"]["name"] == "ERP side"
    assert records(workdir, "erp", "Account")[account_id]["name"] == "ERP side"
    (conflict,) = run_json(workdir, "conflicts")
    assert conflict["resolved"] == "take target (applied)"
    assert "resolve" in history_ops(workdir, "crm:Customer:1")
    # applied once: the next run is quiet, and the value stays
    report = run_json(workdir, "sync")
    assert (report["updated"], report["conflicts"]) == (0, 0)
    assert records(workdir, "crm", "Customer")["1"]["name"] == "ERP side"


def test_resolving_an_unknown_conflict_fails_in_one_line(workdir: Path) -> None:
    run_json(workdir, "sync")
    code, output = run(workdir, "conflicts", "resolve", "999", "--take", "source", "--json")
    assert code == 1 and "no conflict 999" in json.loads(output)["error"]


def test_a_dismissed_record_is_not_listed_nor_retried_and_stays_in_history(
    workdir: Path,
) -> None:
    assert run_json(workdir, "sync")["errors"] == 1
    done = run_json(workdir, "errors", "dismiss", "crm:Customer:2")
    assert done["action"] == "dismiss"
    assert run_json(workdir, "errors") == []
    assert run_json(workdir, "retry")["queued"] == 0
    report = run_json(workdir, "sync")
    assert (report["errors"], report["created"]) == (0, 0)
    assert "dismiss" in history_ops(workdir, "crm:Customer:2")
    # a change in the system is planned again (and fails again: shown again)
    edit(workdir, "crm", "Customer", "2", name="Still far too long")
    assert run_json(workdir, "sync")["errors"] == 1
    assert [r["ref"] for r in run_json(workdir, "errors")] == ["crm:Customer:2"]


def test_unlink_is_never_linked_again_nor_created_until_decided(workdir: Path) -> None:
    run_json(workdir, "sync")
    accounts = records(workdir, "erp", "Account")
    (account_id,) = [k for k, v in accounts.items() if v["name"] == "Acme"]
    done = run_json(workdir, "unlink", "crm:Customer:1")
    assert done["unlinked"] == [
        {"dataflow": FLOW, "source": "crm:Customer:1", "target": f"erp:Account:{account_id}"}
    ]
    # the same org number (merge criteria) and the stamped ref still point at the account
    edit(workdir, "crm", "Customer", "1", name="Acme 2")
    report = run_json(workdir, "sync")
    assert (report["linked"], report["created"]) == (0, 0)
    assert len(records(workdir, "erp", "Account")) == 2
    assert [m["ref"] for m in run_json(workdir, "links", "crm:Customer:1")] == ["crm:Customer:1"]
    held = [r for r in run_json(workdir, "errors") if r["ref"] == "crm:Customer:1"]
    assert held and held[0]["kind"] == "unlinked"
    assert "unlink" in history_ops(workdir, "crm:Customer:1")
    assert "unlink" in history_ops(workdir, f"erp:Account:{account_id}")
    # `retry` lets the run create its own counterpart, never linking the old one again
    assert run_json(workdir, "retry", "crm:Customer:1")["queued"] == 1
    assert run_json(workdir, "sync")["created"] == 1
    members = {m["ref"] for m in run_json(workdir, "links", "crm:Customer:1")}
    assert len(members) == 2 and f"erp:Account:{account_id}" not in members


def test_link_two_records_created_separately(workdir: Path) -> None:
    run_json(workdir, "sync")
    (acme,) = [k for k, v in records(workdir, "erp", "Account").items() if v["name"] == "Acme"]
    run_json(workdir, "unlink", "crm:Customer:1")
    # the account "Other" is the customer's real counterpart
    done = run_json(workdir, "link", "crm:Customer:1", "erp:Account:1")
    assert done["dataflows"] == [FLOW]
    code, output = run(workdir, "link", "crm:Customer:1", "erp:Account:1", "--json")
    assert code == 1 and "linked already" in json.loads(output)["error"]
    report = run_json(workdir, "sync")
    assert report["created"] == 0
    accounts = records(workdir, "erp", "Account")
    assert len(accounts) == 2
    assert (accounts["1"]["name"], accounts["1"]["org"]) == ("Acme", "912345678")
    members = {m["ref"]: m["values"] for m in run_json(workdir, "links", "crm:Customer:1")}
    assert set(members) == {"crm:Customer:1", "erp:Account:1"}
    assert "link" in history_ops(workdir, "erp:Account:1")
    assert f"erp:Account:{acme}" not in members
    report = run_json(workdir, "sync")
    assert (report["created"], report["updated"], report["linked"]) == (0, 0, 0)
    # an edit flows as in any link
    edit(workdir, "crm", "Customer", "1", name="Acme AS")
    run_json(workdir, "sync")
    assert records(workdir, "erp", "Account")["1"]["name"] == "Acme AS"


def test_resync_reads_a_type_from_the_start_without_duplicates(workdir: Path) -> None:
    run_json(workdir, "sync")
    before = records(workdir, "erp", "Account")
    report = run_json(workdir, "sync")
    assert report["collected"]["crm.Customer"]["read"] == 0  # the change feed: nothing new
    run_json(workdir, "resync", "crm.Customer")
    cursors = {c["type"]: c["cursor"] for c in run_json(workdir, "status")["cursors"]}
    assert cursors["crm.Customer"] is None
    report = run_json(workdir, "sync")
    assert report["collected"]["crm.Customer"]["read"] == 2
    assert (report["created"], report["updated"], report["linked"]) == (0, 0, 0)
    assert records(workdir, "erp", "Account") == before
    assert "resync" in history_ops(workdir, "crm:Customer:*")
    code, output = run(workdir, "resync", "crm.Nothing", "--json")
    assert code == 1 and "in no dataflow" in json.loads(output)["error"]


def test_dry_run_plan_is_a_list_of_objects(workdir: Path) -> None:
    report = run_json(workdir, "sync", "--dry-run")
    creates = {step["source"]: step for step in report["plan"] if step["action"] == "create"}
    create = creates["crm:Customer:1"]
    assert create["dataflow"] == FLOW
    assert create["target"] is None
    assert create["changes"]["name"] == {"old": None, "new": "Acme"}
    run_json(workdir, "sync")
    edit(workdir, "crm", "Customer", "1", name="Acme AS")
    report = run_json(workdir, "sync", "--dry-run")
    (update,) = [step for step in report["plan"] if step["action"] == "update"]
    assert update["source"] == "crm:Customer:1" and update["target"].startswith("erp:Account:")
    assert update["changes"] == {"name": {"old": "Acme", "new": "Acme AS"}}


def test_a_tripped_circuit_breaker_prints_its_json(workdir: Path) -> None:
    crm = MemoryDataset("crm-many")
    for number in range(12):
        crm.insert("Customer", {"name": f"C{number}", "org": f"{number:09d}"})
    crm.save(str(workdir / "crm.json"))
    assert run_json(workdir, "sync")["created"] == 12
    dataset = MemoryDataset.load("crm-gone", str(workdir / "crm.json"))
    for rid in list(dataset.records("Customer")):
        dataset.remove("Customer", rid)
    dataset.save(str(workdir / "crm.json"))
    code, output = run(workdir, "sync", "--json")
    assert code == 1
    refused = json.loads(output)
    assert refused["status"] == "refused" and "--dry-run --force" in refused["error"]
    breaker = refused["circuit_breaker"]
    assert breaker["dataflow"] == FLOW and breaker["check"] == "max_delete_share"
    assert len(breaker["deleted"]["source"]) == 12
    assert len(breaker["would"]["target"]["refs"]) == 12
    assert breaker["next"]["preview"] == "samband sync --dry-run --force"
    # nothing was written; the preview it names shows the plan
    assert len(records(workdir, "erp", "Account")) == 13
    report = run_json(workdir, "sync", "--dry-run", "--force")
    assert sum(1 for step in report["plan"] if step["action"] == "unlink") == 12
