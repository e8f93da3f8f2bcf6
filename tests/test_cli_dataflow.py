"""``samband dataflow list|pause|resume|share|full-sync`` and ``samband sync --dataflow``,
end to end through real runs (memory systems kept in JSON files, a SQLite store)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from samband.kinds.memory.connector import MemoryDataset, forget_dataset

CONFIG = """
store: sqlite:///state.db
systems:
  crm: {kind: memory, path: crm.json, entity_types: {Customer: {}}}
  erp: {kind: memory, path: erp.json, entity_types: {Account: {}}}
  pms: {kind: memory, path: pms.json, entity_types: {Client: {}}}
dataflows:
  - id: accounts
    source: crm.Customer
    target: erp.Account
    properties: [{from: name, to: name, type: string}]
  - id: clients
    source: crm.Customer
    target: pms.Client
    properties: [{from: name, to: name, type: string}]
"""


runner = CliRunner()


def _run(workdir: Path, *args: str) -> tuple[int, str]:
    from samband.cli import app

    for name in ("crm", "erp", "pms"):
        forget_dataset(name)
    result = runner.invoke(app, [*args, "-c", str(workdir / "samband.yaml")])
    return result.exit_code, result.output


def _names(workdir: Path, name: str, etype: str) -> list[str]:
    path = workdir / f"{name}.json"
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    return sorted(r["data"]["name"] for r in data["types"].get(etype, {}).values())


def test_the_controls_from_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "samband.yaml").write_text(CONFIG)
    crm = MemoryDataset("crm-file")
    crm.insert("Customer", {"name": "Acme"})
    crm.save(str(tmp_path / "crm.json"))
    code, output = _run(tmp_path, "dataflow", "pause", "accounts")
    assert code == 0 and "pause" in output, output
    assert _run(tmp_path, "sync")[0] == 0
    assert _names(tmp_path, "erp", "Account") == [] and _names(tmp_path, "pms", "Client") == [
        "Acme"
    ]
    code, output = _run(tmp_path, "dataflow", "list", "--json")
    rows = {row["dataflow"]: row for row in json.loads(output)}
    assert rows["accounts"]["paused"] is True and rows["accounts"]["missed"] == 1
    assert _run(tmp_path, "dataflow", "resume", "accounts")[0] == 0
    code, output = _run(tmp_path, "dataflow", "share", "accounts", "--off", "--json")
    assert json.loads(output)["writes"] is False
    assert _run(tmp_path, "sync")[0] == 0
    assert _names(tmp_path, "erp", "Account") == []  # held
    assert _run(tmp_path, "dataflow", "share", "accounts", "--on")[0] == 0
    code, output = _run(tmp_path, "sync", "--dataflow", "accounts", "--json")
    assert code == 0 and json.loads(output)["ran"] == ["accounts"]
    assert _names(tmp_path, "erp", "Account") == ["Acme"]
    code, output = _run(tmp_path, "dataflow", "full-sync", "clients", "--off", "--json")
    assert json.loads(output)["full_sync"] is False
    code, output = _run(tmp_path, "dataflow", "pause", "nope")
    assert code != 0 and "no dataflow 'nope'" in output and "Traceback" not in output
    code, output = _run(tmp_path, "sync", "--dataflow", "nope")
    assert code != 0 and "not in the config" in output and "Traceback" not in output
    code, output = _run(tmp_path, "history", "dataflow:accounts", "--json")
    assert [row["op"] for row in json.loads(output)] == ["pause", "resume", "share", "share"]
