"""A flag a source keeps as text or a number ("yes"/"no", "Y"/"N", 1/0) and maps as a
boolean is written back in the source's own spelling (plan's ``boolean_in_spelling_of``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from samband.kinds.memory.connector import dataset
from tests.support.engine import sync


@pytest.mark.parametrize(
    ("yes", "no"), [("yes", "no"), ("Y", "N"), ("On", "Off"), ("1", "0"), (1, 0)]
)
def test_a_boolean_flows_back_in_the_spelling_the_source_uses(
    tmp_path: Path, yes: Any, no: Any
) -> None:
    """A source keeps a flag as "yes"/"no" (or "Y"/"N", 1/0), mapped as a boolean: an
    edit in the target comes back in that spelling, not as "false"."""
    kind = "string" if isinstance(yes, str) else "integer"
    config = f"""
store: "sqlite:///{tmp_path / "s.db"}"
systems:
  crm: {{kind: memory, entity_types: {{Customer: {{properties: {{name: {{type: string}},
                                                           active: {{type: {kind}}}}}}}}}}}
  erp: {{kind: memory, entity_types: {{Account: {{external_ref: ext, properties: {{
         name: {{type: string}}, active: {{type: boolean}}}}}}}}}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    properties:
      - {{from: name, to: name, type: string}}
      - {{from: active, to: active, type: boolean}}
"""
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "active": yes})
    crm.insert("Customer", {"name": "Beta", "active": no})
    sync(config)
    accounts = {a["name"]: rid for rid, a in erp.records("Account").items()}
    erp.edit("Account", accounts["Acme"], {"active": False})
    erp.edit("Account", accounts["Beta"], {"active": True})
    sync(config)
    assert [c["active"] for c in crm.records("Customer").values()] == [no, yes]
    assert sync(config)["updated"] == 0  # and it stays so
