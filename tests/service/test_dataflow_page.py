"""The dataflow page of ``samband serve`` and its JSON API: every control for an admin
(recorded in history as theirs), refused to a viewer, without a CSRF token and without a
login; run now for one dataflow; the dry-run preview; the per-dataflow schedule."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from samband.kinds.memory.connector import dataset
from samband.service import Service, create_app
from samband.service.access import Access
from samband.service.chart import counts_chart
from samband.service.dataflows import preview, url
from samband.service.scheduler import Scheduler
from tests.support.service import TestClient, csrf_of

PASSWORD = "correct horse battery"
_hash = PasswordHasher().hash(PASSWORD)
USERS = f"ada admin {_hash}\nvic viewer {_hash}"
TOKEN = "t0ken-for-the-api"
CONFIG = """\
store: sqlite:///state.db
systems:
  crm: {kind: memory, path: crm.json, entity_types: {Customer: {external_ref: ext}}}
  erp: {kind: memory, path: erp.json, entity_types: {Account: {external_ref: ext}}}
  pms: {kind: memory, path: pms.json, entity_types: {Client: {}}}
dataflows:
  - id: customers
    source: crm.Customer
    target: erp.Account
    match: [[{from: org, to: org}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
  - source: crm.Customer
    target: pms.Client
    every: 10m
    properties:
      - {from: name, to: name, type: string}
"""
CLIENTS = "crm.Customer->pms.Client"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    records = {
        "1": {
            "data": {"id": 1, "name": "Acme AS", "org": "900000001"},
            "version": 1,
            "modified": "2026-01-01T00:00:00+00:00",
            "deleted": False,
        }
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


def _client(service: Service, name: str | None) -> tuple[TestClient, str]:
    access = Access({"SAMBAND_USERS": USERS, "SAMBAND_API_TOKEN": TOKEN})
    client = TestClient(create_app(service, access, manage_service=False))
    token = csrf_of(client.get("/login").text)
    if name is not None:
        client.post("/login", data={"name": name, "password": PASSWORD, "csrf": token})
        token = csrf_of(client.get(url("customers")).text)
    return client, token


def _run(service: Service, dataflows: list[str] | None = None) -> None:
    runs = service.scheduler.state.runs
    service.run_now(dataflows, reason="test")
    assert service.scheduler.wait_runs(runs + 1, timeout=60)


def _names(system: str, etype: str) -> list[str]:
    return sorted(r["name"] for r in dataset(system).records(etype).values())


CONTROLS = [
    ("pause", {}),
    ("resume", {}),
    ("share", {"side": "target", "on": "off"}),
    ("full-sync", {"on": "off"}),
    ("run", {}),
    ("preview", {}),
]


def test_the_page_shows_the_dataflow(service: Service) -> None:
    client, _token = _client(service, "vic")
    assert f'href="{url("customers")}"' in client.get("/").text
    page = client.get(url("customers")).text
    assert 'data-state="in sync"' in page and "crm.Customer → erp.Account" in page
    assert "<svg" in page and "/documents/crm-erp.html" in page
    assert 'id="pause"' not in page  # a viewer sees no controls
    assert client.get(url(CLIENTS)).status_code == 200
    assert client.get(url("nope")).status_code == 404


@pytest.mark.parametrize(("control", "fields"), CONTROLS)
def test_a_viewer_and_a_forged_token_are_refused(
    service: Service, control: str, fields: dict[str, str]
) -> None:
    viewer, token = _client(service, "vic")
    path = f"{url('customers')}/{control}"
    assert viewer.post(path, data={"csrf": token, **fields}).status_code == 403
    admin, _admin_token = _client(service, "ada")
    assert admin.post(path, data={"csrf": "forged", **fields}).status_code == 403
    nobody, _ = _client(service, None)
    answer = nobody.post(path, data=fields, follow_redirects=False)
    assert answer.status_code in (303, 403)
    api = f"/api{path}"
    body = {"on": False} if control in ("share", "full-sync") else {}
    assert viewer.post(api, json=body, headers={"X-CSRF-Token": token}).status_code == 403
    assert admin.post(api, json=body).status_code == 403  # a session without the header
    assert nobody.post(api, json=body).status_code == 401
    control = service.read("control", "customers")
    assert (control["paused"], control["write_target"], control["full_sync"]) == (
        False,
        True,
        True,
    )
    assert service.read("history", "dataflow:customers") == []


def test_pause_and_resume_from_the_page(service: Service) -> None:
    client, token = _client(service, "ada")
    answer = client.post(f"{url('customers')}/pause", data={"csrf": token}, follow_redirects=False)
    assert answer.status_code == 303 and "done=" in answer.headers["location"]
    page = client.get(url("customers")).text
    assert 'data-state="paused"' in page and 'id="resume"' in page
    dataset("crm").edit("Customer", "1", {"name": "Acme Group AS"})
    _run(service)
    assert _names("erp", "Account") == ["Acme AS"]
    assert _names("pms", "Client") == ["Acme Group AS"]
    client.post(f"{url('customers')}/resume", data={"csrf": token})
    _run(service)
    assert _names("erp", "Account") == ["Acme Group AS"]
    history = client.get("/api/history/dataflow:customers").json()
    assert [(h["op"], h["after"]["by"]) for h in history] == [("pause", "ada"), ("resume", "ada")]


def test_every_control_through_the_api_with_the_token(service: Service) -> None:
    client, _ = _client(service, None)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    base = f"/api{url('customers')}"
    assert (
        client.post(f"{base}/share", json={"side": "target", "on": False}, headers=bearer).json()[
            "writes"
        ]
        is False
    )
    assert client.post(f"{base}/share", json={"side": "left"}, headers=bearer).status_code == 400
    dataset("crm").edit("Customer", "1", {"name": "Acme Holding"})
    _run(service)
    view = client.get(base, headers=bearer).json()
    assert view["held"] == 1 and view["state"] == "pending"
    assert (
        client.post(f"{base}/share", json={"side": "target", "on": True}, headers=bearer).json()[
            "queued"
        ]
        == 1
    )
    assert (
        client.post(f"{base}/full-sync", json={"on": False}, headers=bearer).json()["full_sync"]
        is False
    )
    assert client.post(f"{base}/pause", headers=bearer).json()["paused"] is True
    assert client.post(f"{base}/resume", headers=bearer).json()["paused"] is False
    runs = service.scheduler.state.runs
    assert client.post(f"{base}/run", headers=bearer).status_code == 202
    assert service.scheduler.wait_runs(runs + 1, timeout=60)
    assert service.scheduler.state.last is not None
    assert service.scheduler.state.last.dataflows == ["customers"]
    assert _names("erp", "Account") == ["Acme Holding"]
    listed = client.get("/api/dataflows", headers=bearer).json()
    assert [row["dataflow"] for row in listed] == ["customers", CLIENTS]
    assert client.post("/api/dataflows/nope/pause", headers=bearer).status_code == 400
    history = client.get("/api/history/dataflow:customers", headers=bearer).json()
    assert {h["after"]["by"] for h in history} == {"api token"}
    assert client.post("/api/run", json={"dataflows": "x"}, headers=bearer).status_code == 400
    assert client.post("/api/run", json={"dataflows": ["nope"]}, headers=bearer).status_code == 400


def test_the_preview_shows_the_plan_and_writes_nothing(service: Service) -> None:
    client, token = _client(service, "ada")
    dataset("crm").edit("Customer", "1", {"name": "Acme Preview AS"})
    page = client.post(f"{url('customers')}/preview", data={"csrf": token}).text
    assert 'id="plan"' in page and "Acme Preview AS" in page and "update" in page
    assert _names("erp", "Account") == ["Acme AS"]
    assert CLIENTS not in page  # only the dataflow asked for
    _run(service)
    assert _names("erp", "Account") == ["Acme Preview AS"]
    nothing = client.post(f"{url('customers')}/preview", data={"csrf": token}).text
    assert 'id="nothing"' in nothing


def test_a_preview_waits_for_the_run_in_progress(service: Service) -> None:
    lock = service.scheduler.run_lock
    lock.acquire()  # as a run does
    try:
        with pytest.raises(Exception, match="a run is in progress"):
            preview(service, "customers", wait=0.1)
        done: list[dict[str, object]] = []
        waiting = threading.Thread(target=lambda: done.append(preview(service, "customers")))
        waiting.start()
        assert not done
    finally:
        lock.release()
    waiting.join(timeout=60)
    assert done and done[0]["status"] == "dry-run"


def test_each_dataflow_runs_on_its_interval(service: Service) -> None:
    scheduler = service.scheduler
    assert scheduler.intervals == {"customers": 3600, CLIENTS: 600}
    due = {key: scheduler.due_at(key) for key in scheduler.intervals}
    assert due["customers"] and due[CLIENTS] and due[CLIENTS] < due["customers"]
    _run(service, [CLIENTS])
    assert scheduler.state.last is not None and scheduler.state.last.dataflows == [CLIENTS]
    assert scheduler.state.last.report and scheduler.state.last.report["ran"] == [CLIENTS]


def test_the_scheduler_runs_only_what_is_due() -> None:
    scheduler = Scheduler(lambda: None, every=60, intervals={"a": 60, "b": 600})  # type: ignore[arg-type,return-value]
    assert scheduler._take_due() == (None, "schedule")  # the first run: all
    scheduler._schedule(None)
    assert scheduler._take_due() is None
    scheduler._due["a"] = 0
    assert scheduler._take_due() == (["a"], "schedule")
    scheduler._schedule(["a"])
    scheduler.run_now(["b"], reason="push")
    assert scheduler._take_due() == (["b"], "push")
    scheduler.run_now(["b"], reason="push")
    scheduler.run_now(reason="person")
    assert scheduler._take_due() == (None, "push, person")


def test_the_chart_is_plain_svg() -> None:
    svg = counts_chart([{"run": 1, "created": 2}, {"run": 2, "updated": 1, "errors": 1}])
    assert svg.startswith("<svg") and svg.count("<polyline") == 4 and "<script" not in svg
    assert "run 2: 1 updated" in svg
    assert "No runs" in counts_chart([])


def test_the_python_example_of_the_docs_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.docs_examples import block_after

    docs = Path(__file__).resolve().parents[2] / "docs" / "service.md"
    example = block_after(docs, "## Dataflows: controls, schedules, preview", "python")
    (tmp_path / "samband.yaml").write_text(CONFIG, encoding="utf-8")
    dataset("crm", str(tmp_path / "crm.json")).insert("Customer", {"name": "Acme", "org": "1"})
    monkeypatch.chdir(tmp_path)
    names: dict[str, object] = {}
    exec(compile(example.code, example.where, "exec"), names)
    controls = names["controls"]
    assert isinstance(controls, dict)
    assert (controls["full_sync"], controls["paused"], controls["write_target"]) == (
        False,
        False,
        True,
    )
    preview, report = names["preview"], names["report"]
    # full sync is off before the first run: the record it reads existed, so not created
    assert [s.action for s in preview.plan] == ["skip"]  # type: ignore[attr-defined]
    assert report.ran == ["customers"] and report.dataflows["customers"].created == 0  # type: ignore[attr-defined]


def test_a_dataflow_left_out_of_a_run_keeps_its_last_success_time() -> None:
    from samband.service.metrics import Metrics
    from samband.service.scheduler import RunOutcome

    metrics = Metrics(dict)
    report = {"ran": ["b"], "dataflows": {"a": {}, "b": {}}}
    metrics.observe(RunOutcome("s", "f", "ok", 1.0, report), 1234.0)
    text = metrics.render().decode()
    assert 'samband_last_successful_run_timestamp_seconds{dataflow="b"} 1234.0' in text
    assert 'dataflow="a"' not in text


@pytest.mark.parametrize("every", ["0s", "soon"])
def test_a_bad_interval_is_a_config_error(every: str) -> None:
    from samband.config import parse_config
    from samband.errors import ConfigError

    with pytest.raises(ConfigError, match="every"):
        parse_config(CONFIG.replace("every: 10m", f"every: {every}"))


def test_the_overview_shows_each_dataflows_state(service: Service) -> None:
    client, token = _client(service, "ada")
    client.post(f"{url(CLIENTS)}/pause", data={"csrf": token})
    flows = {f["key"]: f for f in client.get("/api/overview").json()["dataflows"]}
    assert flows[CLIENTS]["state"] == "paused" and flows[CLIENTS]["controls"] == "paused"
    assert flows["customers"]["state"] == "in sync"
    client.post(f"{url('customers')}/share", data={"csrf": token, "side": "target", "on": "off"})
    dataset("crm").edit("Customer", "1", {"name": "Acme Held AS"})
    _run(service)
    flows = {f["key"]: f for f in client.get("/api/overview").json()["dataflows"]}
    assert flows["customers"]["state"] == "pending"
    assert flows["customers"]["controls"] == "writes to target held"
    assert 'data-state="pending"' in client.get("/").text
