"""``samband backup`` and ``samband restore`` of the embedded store, through the CLI: a
backup taken while the store is in use, a restore to an older state followed by runs
that bring back every link without a duplicate, and the refusals."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
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


def test_a_backup_taken_while_a_writer_commits_holds_whole_transactions(tmp_path: Path) -> None:
    """The online backup copies one consistent state: every transaction a writer commits
    meanwhile is in the copy whole, or not at all."""
    import threading

    config = _world(tmp_path)
    dataset("crm", str(tmp_path / "crm.json")).insert("Customer", {"name": "Acme AS"})
    _sync(config)
    stop, committed = threading.Event(), [0]

    def write() -> None:
        with sqlite3.connect(tmp_path / "state.db", timeout=30) as db:
            while not stop.is_set():
                db.executemany(
                    "INSERT INTO samband_audit (run_id, at, ref, dataflow, op) VALUES"
                    " (NULL, '2026-12-01T00:00:00+00:00', ?, 'customers', 'update')",
                    [(f"crm:Customer:{n}",) for n in range(100)],
                )
                db.commit()
                committed[0] += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        deadline = time.monotonic() + 60
        while committed[0] < 5 and time.monotonic() < deadline:
            time.sleep(0.01)  # paces the wait for the writer's first commits
        backup = tmp_path / "busy.db"
        before = committed[0]
        result = _samband(tmp_path, "backup", "-c", "samband.yaml", "-o", str(backup))
        during = committed[0] - before
    finally:
        stop.set()
        writer.join(60)
    assert result.returncode == 0, result.stderr
    assert during > 0, "the writer did not commit while the backup ran"
    with sqlite3.connect(backup) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        written = db.execute("SELECT count(*) FROM samband_audit WHERE op = 'update'").fetchone()
    assert written[0] % 100 == 0 and written[0] > 0
