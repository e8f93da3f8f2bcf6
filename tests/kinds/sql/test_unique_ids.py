"""``kind: sql``: an ``id`` column that is not unique is refused (validate, engine,
connector), and an update or delete by id that would reach two rows is rolled back."""

from __future__ import annotations

from pathlib import Path

import pytest

from samband.config import parse_config
from samband.engine.run import Engine
from samband.kinds.memory.connector import dataset

COMPOSITE = """
CREATE TABLE line (order_no INTEGER NOT NULL, line_no INTEGER NOT NULL, product TEXT,
                   qty INTEGER, updated_at TIMESTAMP, PRIMARY KEY (order_no, line_no));
INSERT INTO line VALUES (1, 1, 'Bolt', 5, '2026-01-01 00:00:00'),
                        (1, 2, 'Nut', 7, '2026-01-01 00:00:00'),
                        (2, 1, 'Screw', 3, '2026-01-01 00:00:00');
"""


def _line_config(tmp_path: Path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(
        f"""
store: "sqlite:///{tmp_path / "state.db"}"
systems:
  pms:
    kind: sql
    url: "sqlite:///{tmp_path / "pms.db"}"
    entity_types:
      Line: {{table: line, id: order_no, updated: updated_at}}
  erp: {{kind: memory, entity_types: {{OrderLine: {{external_ref: ext}}}}}}
dataflows:
  - source: pms.Line
    target: erp.OrderLine
    properties:
      - {{from: product, to: product, type: string}}
      - {{from: qty, to: qty, type: integer}}
"""
    )
    return path


def test_sql_an_id_column_that_is_not_unique_is_refused(tmp_path: Path) -> None:
    """``id: order_no`` of a table keyed by (order_no, line_no): validate says so in one
    line naming the table and the column, and a run stops before reading or writing."""
    import sqlite3

    import samband
    from samband.errors import ConfigError, ConnectorError

    with sqlite3.connect(tmp_path / "pms.db") as db:
        db.executescript(COMPOSITE)
    path = _line_config(tmp_path)
    errors = [p for p in samband.validate(str(path)) if p.severity == "error"]
    assert len(errors) == 1, [str(p) for p in samband.validate(str(path))]
    text = str(errors[0])
    assert "\n" not in text
    assert "'order_no'" in text and "'line'" in text and "not unique" in text
    assert "unique constraint" in text
    assert "system 'pms'" in text
    with pytest.raises(ConfigError, match="not unique"):
        Engine.from_file(path)
    config = parse_config(path.read_text()).config
    with pytest.raises(ConnectorError, match="not unique"), Engine(config) as engine:
        engine.sync()
    assert dataset("erp").records("OrderLine") == {}


def test_sql_an_update_that_would_reach_two_rows_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where keys cannot be reflected (a view, say), an update by id that reaches more
    than one row is rolled back and refused: another row's value never changes."""
    import sqlite3

    from samband.config.model import SystemConfig
    from samband.errors import RecordError
    from samband.kinds.sql.connector import SqlConnector
    from samband.kinds.sql.connector import _schema as sql_schema

    with sqlite3.connect(tmp_path / "pms.db") as db:
        db.executescript(COMPOSITE)
    monkeypatch.setattr(sql_schema, "check_unique_id", lambda *args: None, raising=False)
    config = SystemConfig.model_validate(
        {
            "kind": "sql",
            "url": f"sqlite:///{tmp_path / 'pms.db'}",
            "entity_types": {"Line": {"table": "line", "id": "order_no"}},
        }
    )
    connector = SqlConnector("pms", config, {})
    try:
        with pytest.raises(RecordError, match="2 rows have order_no = '1'"):
            connector.update("Line", "1", {"qty": 9})
        with pytest.raises(RecordError, match="2 rows have order_no = '1'"):
            connector.delete("Line", "1")
    finally:
        connector.close()
    with sqlite3.connect(tmp_path / "pms.db") as db:
        rows = db.execute("SELECT order_no, line_no, qty FROM line ORDER BY 1, 2").fetchall()
    assert rows == [(1, 1, 5), (1, 2, 7), (2, 1, 3)]
