"""``samband backup`` and ``samband restore`` of the embedded store, through the CLI: a
backup taken while the store is in use, a restore to an older state followed by runs
that bring back every link without a duplicate, and the refusals."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from samband.engine.run import Engine
from samband.kinds.memory.connector import dataset

CONFIG = """\
store: sqlite:///state.db
systems:
  crm: {kind: memory, path: crm.json, entity_types: {Customer: {external_ref: ext}}}
  erp: {kind: memory, path: erp.json, entity_types: {Account: {external_ref: ext}}}
dataflows:
  - id: customers
    source: crm.Customer
    target: erp.Account
    properties:
      - {from: name, to: name, type: string}
"""


def _samband(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "samband.cli", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _world(folder: Path) -> Path:
    (folder / "samband.yaml").write_text(CONFIG, encoding="utf-8")
    return folder / "samband.yaml"


def _sync(config: Path) -> dict[str, object]:
    with Engine.from_file(config) as engine:
        return engine.sync().to_dict()


def test_a_restore_to_an_older_state_brings_back_every_link_without_a_duplicate(
    tmp_path: Path,
) -> None:
    config = _world(tmp_path)
    crm = dataset("crm", str(tmp_path / "crm.json"))
    for index in range(5):
        crm.insert("Customer", {"name": f"Company {index} AS"})
    assert _sync(config)["created"] == 5
    backup = tmp_path / "before.db"
    result = _samband(tmp_path, "backup", "-c", "samband.yaml", "-o", str(backup))
    assert result.returncode == 0, result.stderr
    assert backup.stat().st_mode & 0o077 == 0  # the store holds the records' values

    for index in range(5, 8):  # created after the backup: the restored store forgets them
        crm.insert("Customer", {"name": f"Company {index} AS"})
    crm.edit("Customer", "1", {"name": "Company 0 Holding AS"})
    assert _sync(config)["created"] == 3
    _sync(config)

    result = _samband(tmp_path, "restore", "-c", "samband.yaml", str(backup), "--yes")
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("SELECT count(*) FROM samband_links").fetchone()[0] == 5

    first, second = _sync(config), _sync(config)
    assert first["created"] == 0 and second["created"] == 0
    accounts = dataset("erp").records("Account")
    names = sorted(record["name"] for record in accounts.values())
    assert len(accounts) == 8, names
    assert "Company 0 Holding AS" in names
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("SELECT count(*) FROM samband_links").fetchone()[0] == 8


def test_restore_refuses_what_is_not_a_store_and_a_store_in_use(tmp_path: Path) -> None:
    config = _world(tmp_path)
    dataset("crm", str(tmp_path / "crm.json")).insert("Customer", {"name": "Acme AS"})
    _sync(config)
    not_a_store = tmp_path / "notes.db"
    with sqlite3.connect(not_a_store) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    for bad, message in [
        (not_a_store, "not a Samband store"),
        (garbage, "not a Samband store"),
        (tmp_path / "missing.db", "does not exist"),
    ]:
        result = _samband(tmp_path, "restore", "-c", "samband.yaml", str(bad), "--yes")
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    good = tmp_path / "good.db"
    assert _samband(tmp_path, "backup", "-c", "samband.yaml", "-o", str(good)).returncode == 0
    again = _samband(tmp_path, "backup", "-c", "samband.yaml", "-o", str(good))
    assert again.returncode == 1 and "exists" in again.stderr
    with sqlite3.connect(tmp_path / "state.db") as db:  # a run in progress (or killed)
        db.execute("UPDATE samband_runs SET status = 'running'")
    busy = _samband(tmp_path, "restore", "-c", "samband.yaml", str(good), "--yes")
    assert busy.returncode == 1 and "a run is in progress" in busy.stderr
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("SELECT count(*) FROM samband_links").fetchone()[0] == 1


def test_a_server_store_is_sent_to_its_own_tools(tmp_path: Path) -> None:
    config = CONFIG.replace("sqlite:///state.db", "postgresql://postgres@127.0.0.1:5432/test")
    (tmp_path / "samband.yaml").write_text(config, encoding="utf-8")
    result = _samband(tmp_path, "backup", "-c", "samband.yaml")
    assert result.returncode == 1 and "pg_dump" in result.stderr
    assert json.dumps(result.stderr).count("Traceback") == 0
