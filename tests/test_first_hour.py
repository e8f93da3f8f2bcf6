"""The first hour of a new user, scripted through the CLI as the README shows it:
init → sandbox → validate → check → sync → an edit on both sides → conflicts → resolve →
a record the other side refuses → errors → fix and retry → status.  Each step is a real
`samband` process; the sandbox is the real PowerOffice GO emulator over HTTP, the PMS a
SQLite file."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from samband.demo import token_key
from samband.plugin import get_kind
from tests.support.sandbox import serve


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # as SQLite's own stamps


class _User:
    def __init__(self, folder: Path, environ: dict[str, str]) -> None:
        self.folder, self.environ = folder, environ

    def run(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "samband.cli", *args],
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=300,
            env=self.environ,
        )
        assert result.returncode == expect, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def json(self, *args: str, expect: int = 0) -> Any:
        return json.loads(self.run(*args, "--json", expect=expect).stdout)

    def pms(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.folder / "pms.db") as db:
            return db.execute(sql, params).fetchall()


def test_the_first_hour(tmp_path: Path) -> None:
    box = get_kind("poweroffice-go").create_sandbox()
    box.seed(5, 1)
    server = serve(box)
    try:
        with token_key():
            # the sandbox listens where the test could open a port, not on the starter's
            environ = {**os.environ, "POWEROFFICE_BASE_URL": f"{server.url}/v2"}
            environ.pop("SAMBAND_CONFIG", None)
            _first_hour(_User(tmp_path, environ), box)
    finally:
        server.stop()


def _first_hour(user: _User, box: Any) -> None:
    assert (
        "samband sandbox poweroffice-go"
        in user.run("init", "poweroffice-go", "sql", "--sandbox").stdout
    )
    user.run("validate")
    checked = user.json("check")
    assert checked["ok"] is True, checked

    first = user.json("sync")
    customers = box.records("Customers")
    assert first["created"] == len(customers) == len(user.pms("SELECT id FROM customer"))

    # the same customer renamed in both systems before the next run: a conflict
    edited, org = next((cid, c["OrganizationNumber"]) for cid, c in customers.items())
    box.edit("Customers", edited, {"Name": "Renamed in PowerOffice AS"})
    user.pms(
        "UPDATE customer SET name = 'Renamed in the PMS AS', updated_at = ? WHERE org_no = ?",
        _now(),
        org,
    )
    assert user.json("sync")["conflicts"] == 1
    (conflict,) = user.json("conflicts")
    assert {conflict["source_value"], conflict["target_value"]} == {
        "Renamed in PowerOffice AS",
        "Renamed in the PMS AS",
    }
    loser = "source" if conflict["winner"] == "target" else "target"
    user.run("conflicts", "resolve", str(conflict["id"]), "--take", loser)
    user.json("sync")
    wanted = conflict[f"{loser}_value"]
    assert box.records("Customers")[edited]["Name"] == wanted
    assert user.pms("SELECT name FROM customer WHERE org_no = ?", org) == [(wanted,)]

    # a customer without a name: the PMS's name column refuses it, the record is set aside
    nameless = next(cid for cid in box.records("Customers") if cid != edited)
    box.edit("Customers", nameless, {"Name": None})
    assert user.json("sync")["errors"] == 1
    (error,) = user.json("errors")
    pms_id = user.pms(
        "SELECT id FROM customer WHERE external_ref = ?", f"poweroffice:Customers:{nameless}"
    )
    assert error["ref"] == f"pms:Customer:{pms_id[0][0]}"  # the record that refused
    assert "name" in error["reason"].lower()
    box.edit("Customers", nameless, {"Name": "Named again AS"})
    assert user.json("retry")["queued"] == 1
    assert user.json("sync")["errors"] == 0
    assert user.json("errors") == []
    assert ("Named again AS",) in user.pms("SELECT name FROM customer")

    status = user.json("status")
    assert status["quarantined"] == 0
    assert status["runs"][0]["status"] == "ok"
    assert user.json("sync")["updated"] == 0  # and then it is quiet
