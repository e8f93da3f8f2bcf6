"""``kind: sql`` on SQLite: a row whose text is not UTF-8 (Latin-1 bytes written by a
legacy program) is that row's error with the column named; the table syncs all the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from samband.config import parse_config
from samband.config.model import SystemConfig
from samband.engine.run import Engine
from samband.kinds.memory.connector import dataset
from samband.kinds.sql.connector import SqlConnector


def _sql_connector(url: str, types: dict[str, Any]) -> SqlConnector:
    config = SystemConfig.model_validate({"kind": "sql", "url": url, "entity_types": types})
    return SqlConnector("pms", config, {})


def test_sqlite_a_latin1_row_is_quarantined_the_table_syncs(tmp_path: Path) -> None:
    """One name stored as Latin-1 bytes (``b'Caf\\xe9'``) by a legacy program: the table
    is read all the same, that row is quarantined with a reason naming the column, the
    other rows sync (it was reported as "a lock, a deadlock or a timeout" and the whole
    table was never read)."""
    import sqlite3

    with sqlite3.connect(tmp_path / "pms.db") as db:
        db.execute(
            "CREATE TABLE customer (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, "
            "updated_at TIMESTAMP)"
        )
        stamp = "2026-01-01 00:00:00"
        db.execute("INSERT INTO customer (name, updated_at) VALUES ('Good', ?)", (stamp,))
        db.execute(
            "INSERT INTO customer (name, updated_at) VALUES (CAST(? AS TEXT), ?)",
            (b"Caf\xe9", stamp),
        )
        db.execute("INSERT INTO customer (name, updated_at) VALUES ('Good 2', ?)", (stamp,))
    config = f"""
store: "sqlite:///{tmp_path / "s.db"}"
systems:
  pms:
    kind: sql
    url: "sqlite:///{tmp_path / "pms.db"}"
    entity_types: {{Customer: {{table: customer, id: id, updated: updated_at}}}}
  crm: {{kind: memory, entity_types: {{Company: {{external_ref: ext}}}}}}
dataflows:
  - source: pms.Customer
    target: crm.Company
    properties:
      - {{from: name, to: name, type: string}}
"""
    with Engine(parse_config(config).config) as engine:
        report = engine.sync().to_dict()
        dead = engine.store().dead_letters()
    assert report["status"] != "failed", report["messages"]
    assert report["created"] == 2 and report["errors"] == 1
    names = sorted(c["name"] for c in dataset("crm").records("Company").values())
    assert names == ["Good", "Good 2"]
    assert [d["ref"] for d in dead] == ["pms:Customer:2"]
    assert "customer.name" in dead[0]["reason"] and "not UTF-8" in dead[0]["reason"]
    assert "Caf\\xe9" in dead[0]["reason"]


def test_sqlite_a_latin1_row_asked_for_alone_is_a_record_error(tmp_path: Path) -> None:
    """The same row asked for by id (a check before an update, a refresh) is that
    record's error with the reason, never a record whose text was changed."""
    import sqlite3

    from samband.errors import RecordError

    with sqlite3.connect(tmp_path / "pms.db") as db:
        db.execute("CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO customer VALUES (1, CAST(? AS TEXT))", (b"Caf\xe9",))
        db.execute("INSERT INTO customer VALUES (2, 'Good')")
    pms = _sql_connector(
        f"sqlite:///{tmp_path / 'pms.db'}", {"Customer": {"table": "customer", "id": "id"}}
    )
    try:
        with pytest.raises(RecordError, match=r"customer\.name .*not UTF-8"):
            pms.get("Customer", "1")
        good = pms.get("Customer", "2")
        assert good is not None and good.data["name"] == "Good"
    finally:
        pms.close()
