"""The full-scan guard from the command line: `samband sync` says which type's deletions
are held and how to confirm them, `samband status` (and `--json`) lists them, and
`samband sync --confirm-deletions SYSTEM.TYPE` applies them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from samband.cli import app
from samband.kinds.memory.connector import MemoryDataset, forget_dataset

CONFIG = """
store: sqlite:///state.db
systems:
  crm: {kind: memory, path: crm.json, entity_types: {Customer: {incremental: false}}}
  erp: {kind: memory, path: erp.json, entity_types: {Account: {external_ref: ext}}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    on_delete: propagate
    max_delete_share: 1
    properties:
      - {from: name, to: name, type: string}
"""

runner = CliRunner()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "samband.yaml").write_text(CONFIG)
    crm = MemoryDataset("crm-guard-file")
    for number in range(10):
        crm.insert("Customer", {"name": f"Customer {number}"})
    crm.save(str(tmp_path / "crm.json"))
    MemoryDataset("erp-guard-file").save(str(tmp_path / "erp.json"))
    return tmp_path


def run(workdir: Path, *args: str) -> tuple[int, str]:
    for name in ("crm", "erp"):
        forget_dataset(name)  # each command is a new process for the memory systems
    result = runner.invoke(app, [*args, "-c", str(workdir / "samband.yaml")])
    return result.exit_code, result.output


def accounts(workdir: Path) -> int:
    data = json.loads((workdir / "erp.json").read_text())
    return sum(1 for row in data["types"]["Account"].values() if not row.get("deleted"))


def test_held_deletions_are_shown_and_confirmed_from_the_cli(workdir: Path) -> None:
    assert run(workdir, "sync")[0] == 0
    crm = json.loads((workdir / "crm.json").read_text())
    customers = crm["types"]["Customer"]
    for rid in list(customers)[2:]:
        del customers[rid]  # as if the API answered two records only
    (workdir / "crm.json").write_text(json.dumps(crm))

    code, output = run(workdir, "sync")
    assert code == 0, output
    assert "crm.Customer: deletions held" in output
    assert "samband sync --confirm-deletions crm.Customer" in output
    assert accounts(workdir) == 10

    code, output = run(workdir, "status", "--json")
    assert code == 0, output
    (held,) = json.loads(output)["held_deletions"]
    assert (held["type"], held["read"], held["not_returned"]) == ("crm.Customer", 2, 8)
    code, output = run(workdir, "status")
    assert "held_deletions" in output and "crm.Customer" in output

    code, output = run(workdir, "sync", "--confirm-deletions", "crm.Customr")
    assert code == 1 and "no dataflow reads that type" in output, output
    code, output = run(workdir, "sync", "--json", "--confirm-deletions", "crm.Customer")
    assert code == 0, output
    report = json.loads(output)
    assert report["deleted"] == 8 and report["confirmed_deletions"][0]["type"] == "crm.Customer"
    assert accounts(workdir) == 2
    assert json.loads(run(workdir, "status", "--json")[1])["held_deletions"] == []
