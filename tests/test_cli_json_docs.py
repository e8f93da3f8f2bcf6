"""The JSON shapes docs/cli.md shows are those the commands print: each example's keys
(nested) are the keys of real output, made here by real runs on memory systems."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from samband.cli import app
from samband.kinds.memory.connector import MemoryDataset, forget_dataset

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
CONFIG = """
store: sqlite:///state.db
systems:
  crm: {kind: memory, path: crm.json, entity_types: {Customer: {external_ref: ext}}}
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


def _examples() -> dict[str, Any]:
    text = DOC.read_text(encoding="utf-8")
    found = re.findall(r"<!-- shape: (\w+) -->\n```json\n(.*?)\n```", text, re.S)
    return {name: json.loads(body) for name, body in found}


def _shape(value: Any) -> Any:
    """The keys of ``value``, nested (a list: the shape of its first item)."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return None


def _same_shape(example: Any, real: Any) -> bool:
    """Every key of the example is in the real output (nested), and every top-level key
    of the real output is in the example; an empty list in either matches any list."""
    if isinstance(example, dict) and isinstance(real, dict):
        if set(example) != set(real):
            return False
        return all(_same_shape(example[k], real[k]) for k in example)
    if isinstance(example, list) and isinstance(real, list):
        return not example or not real or _same_shape(example[0], real[0])
    return True


def _run(workdir: Path, *args: str) -> tuple[int, Any]:
    for name in ("crm", "erp"):
        forget_dataset(name)
    result = CliRunner().invoke(app, [*args, "--json", "-c", str(workdir / "samband.yaml")])
    return result.exit_code, json.loads(result.stdout)


def _edit(workdir: Path, system: str, etype: str, rid: str, **changes: Any) -> None:
    path = str(workdir / f"{system}.json")
    dataset = MemoryDataset.load(f"edit-{system}", path)
    dataset.edit(etype, rid, changes)
    dataset.save(path)


def _real_outputs(workdir: Path) -> dict[str, Any]:
    (workdir / "samband.yaml").write_text(CONFIG)
    crm = MemoryDataset("docs-crm")
    crm.insert("Customer", {"name": "Acme", "org": "912345678"})
    crm.insert("Customer", {"name": "Far too long a name", "org": "987654321"})
    for number in range(11):
        crm.insert("Customer", {"name": f"C{number}", "org": f"{number:09d}"})
    crm.save(str(workdir / "crm.json"))
    MemoryDataset("docs-erp").save(str(workdir / "erp.json"))
    outputs: dict[str, Any] = {}
    _run(workdir, "sync")
    _edit(workdir, "crm", "Customer", "1", name="Acme AS")
    outputs["sync"] = _run(workdir, "sync", "--dry-run")[1]
    outputs["errors"] = _run(workdir, "errors")[1]
    (account,) = [
        link["ref"]
        for link in _run(workdir, "links", "crm:Customer:1")[1]
        if link["ref"].startswith("erp:")
    ]
    _edit(workdir, "erp", "Account", account.rsplit(":", 1)[1], name="ERP side")
    _edit(workdir, "crm", "Customer", "1", name="CRM side")
    _run(workdir, "sync")
    outputs["conflicts"] = _run(workdir, "conflicts")[1]
    conflict = outputs["conflicts"][0]["id"]
    outputs["resolve"] = _run(workdir, "conflicts", "resolve", str(conflict), "--take", "target")[1]
    code, outputs["failure"] = _run(workdir, "link", "crm:Customer:1", "erp:Account:999")
    assert code == 1
    dataset = MemoryDataset.load("docs-gone", str(workdir / "crm.json"))
    for rid in list(dataset.records("Customer")):
        dataset.remove("Customer", rid)
    dataset.save(str(workdir / "crm.json"))
    code, outputs["breaker"] = _run(workdir, "sync")
    assert code == 1
    return outputs


def test_the_documented_json_shapes_are_the_real_ones(tmp_path: Path) -> None:
    examples = _examples()
    assert set(examples) == {"sync", "conflicts", "errors", "resolve", "failure", "breaker"}
    real = _real_outputs(tmp_path)
    for name, example in examples.items():
        assert _same_shape(example, real[name]), (
            f"docs/cli.md shape {name!r} differs from the real output:\n"
            f"documented {_shape(example)}\nreal       {_shape(real[name])}"
        )
