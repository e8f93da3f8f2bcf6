"""A target that does not keep a value written to it (a field locked after creation that the
API ignores on update, a trigger that resets it) is refused for that property: quarantined
with the reason, never counted as updated, and its agreed value kept, so a later edit of
the target never takes the source's edit back (the adversary's f12 and f12b)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from samband.config import parse_config
from samband.engine.inspect import Inspector
from samband.engine.run import Engine
from samband.kinds.memory.connector import dataset

FLOW = """
store: {store}
systems:
  crm: {{kind: memory, entity_types: {{Customer: {{}}}}}}
  pms:
    kind: sql
    url: "sqlite:///{db}"
    entity_types:
      Customer: {{table: customer, id: id, updated: changed, external_ref: ext}}
dataflows:
  - source: crm.Customer
    target: pms.Customer
    properties:
      - {{from: name, to: name, type: string}}
      - {{from: org, to: org, type: string}}
"""


def test_a_value_the_target_resets_is_refused_and_never_reverts_the_source(
    store: str, tmp_path: Path
) -> None:
    db = tmp_path / "pms.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            """
            CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT, org TEXT, ext TEXT,
                                   changed TEXT);
            CREATE TRIGGER lock_org AFTER UPDATE OF org ON customer
            BEGIN UPDATE customer SET org = OLD.org WHERE id = NEW.id; END;
            """
        )
    config = parse_config(FLOW.format(store=store, db=db)).config

    def run() -> dict[str, object]:
        with Engine(config) as engine:
            report = engine.sync()
            assert report.status == "ok", report.messages
            return report.to_dict()

    crm = dataset("crm")
    rid = crm.insert("Customer", {"name": "Acme", "org": "111"})
    assert run()["created"] == 1
    crm.edit("Customer", rid, {"org": "222"})
    report = run()
    assert (report["updated"], report["errors"]) == (0, 1)
    with Inspector(config) as inspector:
        [error] = inspector.errors()
    assert error["kind"] == "not kept"
    wanted = "did not keep the value written to org (wrote '222', it holds '111')"
    assert wanted in error["reason"]
    # a later edit of the target's name flows to the source; the org edit stays
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE customer SET name = 'Acme PMS', changed = '2100-01-01T00:00:00Z'")
    run()
    assert crm.records("Customer")[rid]["org"] == "222"
    assert crm.records("Customer")[rid]["name"] == "Acme PMS"
