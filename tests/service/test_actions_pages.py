"""The conflicts and quarantine pages of ``samband serve`` and their actions: the same
Inspector actions the CLI calls, recorded in history with the user who acted; the JSON
API's versions; the CSV export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from samband.kinds.memory.connector import dataset
from samband.service import Service, create_app
from samband.service.access import Access
from tests.support.service import TestClient, csrf_of

PASSWORD = "correct horse battery"
_hash = PasswordHasher().hash(PASSWORD)
USERS = f"ada admin {_hash}\nvic viewer {_hash}"
CONFIG = """\
store: sqlite:///state.db
systems:
  crm: {kind: memory, path: crm.json, entity_types: {Customer: {external_ref: ext}}}
  erp: {kind: memory, path: erp.json, entity_types: {Account: {external_ref: ext}}}
dataflows:
  - id: customers
    source: crm.Customer
    target: erp.Account
    match: [[{from: org, to: org}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
      - {from: staff, to: staff, type: integer}
"""


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    records = {
        str(i): {
            "data": {"id": i, "name": f"Company {i} AS", "org": f"90000000{i}", "staff": staff},
            "version": 1,
            "modified": "2026-01-01T00:00:00+00:00",
            "deleted": False,
        }
        for i, staff in enumerate([5, "=cmd|' /C calc'!A0", 9], 1)
    }
    (tmp_path / "crm.json").write_text(
        json.dumps({"version": 1, "types": {"Customer": records}}), encoding="utf-8"
    )
    (tmp_path / "samband.yaml").write_text(CONFIG, encoding="utf-8")
    served = Service(tmp_path / "samband.yaml", every=3600)
    served.start()
    assert served.scheduler.wait_runs(1, timeout=60)
    yield served
    served.stop()


def _logged_in(service: Service, name: str) -> tuple[TestClient, str]:
    app = create_app(service, Access({"SAMBAND_USERS": USERS}), manage_service=False)
    client = TestClient(app)
    token = csrf_of(client.get("/login").text)
    client.post("/login", data={"name": name, "password": PASSWORD, "csrf": token})
    page = client.get("/errors").text
    return client, csrf_of(page)


def _run(service: Service) -> None:
    runs = service.scheduler.state.runs
    service.run_now()
    assert service.scheduler.wait_runs(runs + 1, timeout=60)


def test_quarantine_lists_exports_and_dismisses_as_the_user(service: Service) -> None:
    client, token = _logged_in(service, "ada")
    page = client.get("/errors").text
    assert "crm:Customer:2" in page and 'id="retry-all"' in page
    exported = list(csv.DictReader(io.StringIO(client.get("/errors.csv").text)))
    assert [row["ref"] for row in exported] == ["crm:Customer:2"]
    assert not any(cell.startswith("=") for row in exported for cell in row.values())

    answer = client.post(
        "/errors/dismiss", data={"csrf": token, "ref": "crm:Customer:2"}, follow_redirects=False
    )
    assert answer.status_code == 303 and "done=" in answer.headers["location"]
    assert "crm:Customer:2" not in client.get("/errors").text
    history = client.get("/api/history/crm:Customer:2").json()
    assert [(h["op"], h["after"].get("by")) for h in history if h["op"] == "dismiss"] == [
        ("dismiss", "ada")
    ]


def test_a_conflict_is_resolved_from_the_page_and_the_next_run_applies_it(
    service: Service,
) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    account = next(rid for rid, r in erp.records("Account").items() if r["org"] == "900000001")
    crm.edit("Customer", "1", {"name": "Company One AS"})
    erp.edit("Account", account, {"name": "Company 1 Holding AS"})
    _run(service)
    client, token = _logged_in(service, "ada")
    conflicts = client.get("/api/conflicts").json()
    assert len(conflicts) == 1 and conflicts[0]["property"] == "name"
    winner = conflicts[0]["winner"]
    take = "target" if winner == "source" else "source"
    answer = client.post(
        "/conflicts/resolve",
        data={"csrf": token, "id": str(conflicts[0]["id"]), "take": take},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and "error=" not in answer.headers["location"]
    _run(service)
    losing = conflicts[0][f"{take}_value"]
    assert crm.records("Customer")["1"]["name"] == losing
    assert erp.records("Account")[account]["name"] == losing
    history = client.get("/api/history/crm:Customer:1").json()
    assert any(h["op"] == "resolve" and h["after"].get("by") == "ada" for h in history)


def test_a_viewer_cannot_act_and_a_bad_action_says_why(service: Service) -> None:
    client, token = _logged_in(service, "vic")
    page = client.get("/errors").text
    assert "Dismiss" not in page and 'id="retry-all"' not in page
    assert client.post("/errors/retry", data={"csrf": token}).status_code == 403
    assert (
        client.post(
            "/api/errors/retry", json={"refs": None}, headers={"X-CSRF-Token": token}
        ).status_code
        == 403
    )
    admin, admin_token = _logged_in(service, "ada")
    answer = admin.post(
        "/conflicts/resolve",
        data={"csrf": admin_token, "id": "999", "take": "source"},
        follow_redirects=False,
    )
    assert "there+is+no+conflict+999" in answer.headers["location"]
    page = admin.get(answer.headers["location"]).text
    assert "there is no conflict 999" in page


def test_the_api_retries_with_the_token(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(
        service,
        Access({"SAMBAND_USERS": USERS, "SAMBAND_API_TOKEN": "tok-123"}),
        manage_service=False,
    )
    client = TestClient(app)
    headers = {"Authorization": "Bearer tok-123"}
    assert client.post("/api/errors/retry", json={"refs": "x"}, headers=headers).status_code == 400
    answer = client.post("/api/errors/retry", json={}, headers=headers)
    assert answer.status_code == 200 and answer.json() == {"queued": 1}
    assert client.post("/api/errors/retry", content=b"{", headers=headers).status_code == 400


def test_csv_cells_a_spreadsheet_would_run_are_quoted() -> None:
    from samband.service.web import _csv

    text = _csv(
        [{"ref": "=1+1", "reason": "-2", "kind": "@SUM(A1)", "ok": "fine"}],
        ["ref", "reason", "kind", "ok"],
    )
    assert list(csv.reader(io.StringIO(text)))[1] == ["'=1+1", "'-2", "'@SUM(A1)", "fine"]


def test_the_cli_records_the_os_user_as_the_actor(service: Service) -> None:
    import getpass
    import subprocess
    import sys

    service.stop()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "samband.cli",
            "errors",
            "dismiss",
            "crm:Customer:2",
            "-c",
            str(service.config_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    history = service.read("history", "crm:Customer:2")
    assert [h["after"].get("by") for h in history if h["op"] == "dismiss"] == [getpass.getuser()]
