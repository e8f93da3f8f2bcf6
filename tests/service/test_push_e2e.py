"""Pushed changes end to end, over HTTP: a record edited in a sandbox (or a row written in
PostgreSQL) reaches the other system through the push and the run it asks for, not the
schedule (which is an hour here).  Also: a burst of pushes while a run is held is one
more run; the LISTEN connection dropped by the server comes back."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from samband.config.validate import load_valid
from samband.kinds.exact_online.sandbox import ExactOnlineSandbox
from samband.kinds.memory.connector import MemoryDataset, dataset
from samband.kinds.rest.sandbox import DEFAULT_TOKEN, CustomCrmSandbox
from samband.kinds.sql.connector import install_tracking
from samband.sandbox._base import SandboxServer
from samband.secrets import TokenStore
from samband.service import Service, create_app
from tests.support.sandbox import serve

SECRET = "exact-webhook-secret-0123456789"
REST_SECRET = "rest-webhook-secret-0123456789"
MEMORY_TYPE = """
      {name}:
        external_ref: ext
        properties: {{name: {{type: string}}, email: {{type: string}}, ext: {{type: string}}}}"""


def until(service: Service, check: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait, run by run, until ``check()`` holds (no sleeping: each wait ends with a run)."""
    deadline = time.monotonic() + timeout
    while True:
        runs = service.scheduler.state.runs
        if check():
            return
        left = deadline - time.monotonic()
        if left <= 0 or not service.scheduler.wait_runs(runs + 1, left):
            last = service.scheduler.state.last
            pytest.fail(f"not reached within {timeout} s; last run: {last}")


@pytest.fixture
def serving() -> Iterator[Callable[[Service], SandboxServer]]:
    """Start a service and serve it over HTTP on 127.0.0.1 (stopped afterwards)."""
    started: list[tuple[Service, SandboxServer]] = []

    def start(service: Service) -> SandboxServer:
        server = SandboxServer(create_app(service, manage_service=False)).start()
        service.start()
        started.append((service, server))
        return server

    yield start
    for service, server in started:
        service.stop(30)
        server.stop()


# -- Exact Online ---------------------------------------------------------------------------
EXACT = """\
store: sqlite:///state.db
systems:
  exact:
    kind: exact-online
    base_url: {url}
    division: {division}
    credentials:
      client_id: ${{EXACT_CLIENT_ID}}
      client_secret: ${{EXACT_CLIENT_SECRET}}
      webhook_secret: ${{EXACT_WEBHOOK_SECRET}}
  pms:
    kind: memory
    dataset: {dataset}
    entity_types:{customer}
dataflows:
  - source: exact.Accounts
    target: pms.Customer
    match: [[{{from: Email, to: email, normalize: email}}]]
    properties:
      - {{from: Name, to: name, type: string}}
      - {{from: Email, to: email, type: string}}
"""


def exact_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SAMBAND_TOKEN_KEY", Fernet.generate_key().decode())
    box = ExactOnlineSandbox(webhook_secret=SECRET, minutely_limit=1_000_000, daily_limit=1_000_000)
    server = serve(box)
    name = f"pms-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "samband.yaml"
    path.write_text(
        EXACT.format(
            url=server.url,
            division=box.division,
            dataset=name,
            customer=MEMORY_TYPE.format(name="Customer"),
        ),
        encoding="utf-8",
    )
    issued = box.issue_tokens()
    now = box.clock.time()
    TokenStore("exact", tmp_path / ".samband").save(
        {
            "access_token": issued["access_token"],
            "refresh_token": issued["refresh_token"],
            "expires_at": now + 600,
            "requested_at": now,
        }
    )
    environ = {
        "EXACT_CLIENT_ID": box.client_id,
        "EXACT_CLIENT_SECRET": box.client_secret,
        "EXACT_WEBHOOK_SECRET": SECRET,
    }
    return box, server, path, environ, dataset(name)


def names(pms: MemoryDataset, entity_type: str) -> set[str]:
    return {str(r.get("name")) for r in pms.records(entity_type).values()}


def test_an_edit_in_exact_arrives_through_its_webhook(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    serving: Callable[[Service], SandboxServer],
) -> None:
    box, exact_server, path, environ, pms = exact_world(tmp_path, monkeypatch)
    try:
        account = box.insert("crm/Accounts", {"Name": "Acme BV", "Email": "post@acme.nl"})
        service = Service(path, every=3600, environ=environ)
        app = serving(service)
        until(service, lambda: names(pms, "Customer") == {"Acme BV"})
        done = service.subscribe(app.url)
        assert done == [f"exact: subscribed {app.url}/hooks/exact to Accounts"]
        assert service.subscribe(app.url) == [
            f"exact: Accounts already sent to {app.url}/hooks/exact"
        ]
        assert [s["Topic"] for s in box.subscriptions.values()] == ["Accounts"]
        pushed_before = service.pushes

        box.edit("crm/Accounts", account["ID"], {"Name": "Acme Holding BV"})

        until(service, lambda: names(pms, "Customer") == {"Acme Holding BV"})
        assert service.pushes > pushed_before
        assert box.webhooks.wait_idle(30)
        assert (f"{app.url}/hooks/exact", 200) in box.webhooks.outcomes
    finally:
        exact_server.stop()


def test_the_sandbox_refuses_a_subscription_as_exact_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = ExactOnlineSandbox(webhook_secret=SECRET)
    server = serve(box)
    seen: list[bytes] = []

    async def receiver(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        seen.append(message.get("body", b""))
        status = 200 if scope["path"] == "/ok" else 503
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    callback = SandboxServer(receiver).start()
    token = box.issue_tokens()["access_token"]
    api = f"{server.url}/api/v1/{box.division}/webhooks/WebhookSubscriptions"
    headers = {"Authorization": f"Bearer {token}"}

    def post(body: dict[str, Any]) -> httpx.Response:
        return httpx.post(api, json=body, headers=headers, timeout=30)

    def message(answer: httpx.Response) -> str:
        return str(answer.json()["error"]["message"]["value"])

    try:
        assert httpx.post(api, json={}, timeout=30).status_code == 401
        assert message(post({"Topic": "Accounts"})) == "Mandatory: CallbackURL"
        assert message(post({"CallbackURL": f"{callback.url}/ok"})) == "Mandatory: Topic"
        wrong = post({"CallbackURL": f"{callback.url}/ok", "Topic": "Customers"})
        assert (wrong.status_code, message(wrong)) == (400, "Invalid topic: Customers")
        plain = post({"CallbackURL": "http://example.com/hook", "Topic": "Accounts"})
        assert "https" in message(plain)
        extra = post({"CallbackURL": f"{callback.url}/ok", "Topic": "Accounts", "Secret": "x"})
        assert "Secret" in message(extra)
        failing = post({"CallbackURL": f"{callback.url}/down", "Topic": "Accounts"})
        assert failing.status_code == 500
        assert message(failing) == "Invalid: Post to callback URL endpoint returns 503"
        assert seen == [b""]  # the validation request is an empty POST
        made = post({"CallbackURL": f"{callback.url}/ok", "Topic": "Accounts"})
        assert made.status_code == 201
        sid = made.json()["d"]["ID"]
        twice = post({"CallbackURL": f"{callback.url}/ok", "Topic": "Accounts"})
        assert twice.status_code == 400 and "already exists" in message(twice)
        listed = httpx.get(api, params={"$select": "ID,Topic"}, headers=headers).json()
        assert [(r["ID"], r["Topic"]) for r in listed["d"]["results"]] == [(sid, "Accounts")]
        one = f"{api}(guid'{sid}')"
        assert httpx.put(one, json={"Topic": "Items"}, headers=headers).status_code == 405
        assert httpx.delete(one, headers=headers).status_code == 204
        assert httpx.delete(one, headers=headers).status_code == 404
        assert box.subscriptions == {}
    finally:
        callback.stop()
        server.stop()


# -- the REST contract ----------------------------------------------------------------------
REST = """\
store: sqlite:///state.db
systems:
  crm:
    kind: rest
    base_url: {url}
    auth: bearer
    credentials: {{token: "${{CRM_TOKEN}}", webhook_secret: "${{CRM_WEBHOOK_SECRET}}"}}
    entity_types:
      Customer:
        path: customers
        external_ref: external_ref
        properties: {{name: string, email: string}}
  erp:
    kind: memory
    dataset: {dataset}
    entity_types:{org}
dataflows:
  - source: crm.Customer
    target: erp.Org
    match: [[{{from: email, to: email, normalize: email}}]]
    properties:
      - {{from: name, to: name, type: string}}
      - {{from: email, to: email, type: string}}
"""


@pytest.fixture
def rest_world(tmp_path: Path) -> Iterator[tuple[CustomCrmSandbox, Path, dict, MemoryDataset]]:
    box = CustomCrmSandbox()
    server = serve(box)
    name = f"erp-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "samband.yaml"
    path.write_text(
        REST.format(url=server.url, dataset=name, org=MEMORY_TYPE.format(name="Org")),
        encoding="utf-8",
    )
    environ = {"CRM_TOKEN": DEFAULT_TOKEN, "CRM_WEBHOOK_SECRET": REST_SECRET}
    yield box, path, environ, dataset(name)
    server.stop()


def test_an_edit_in_the_rest_system_arrives_through_its_webhook(
    rest_world: tuple[CustomCrmSandbox, Path, dict, MemoryDataset],
    serving: Callable[[Service], SandboxServer],
) -> None:
    box, path, environ, erp = rest_world
    customer = box.insert("Customer", {"name": "Fjord AS", "email": "post@fjord.no"})
    service = Service(path, every=3600, environ=environ)
    app = serving(service)
    until(service, lambda: names(erp, "Org") == {"Fjord AS"})
    sandbox_url = path.read_text().split("base_url: ")[1].split()[0]
    answer = httpx.put(
        f"{sandbox_url}/_sandbox/webhook",
        json={"url": f"{app.url}/hooks/crm", "secret": REST_SECRET},
    )
    assert answer.json() == {"url": f"{app.url}/hooks/crm", "signed": True}

    box.edit("Customer", customer["id"], {"name": "Fjord Holding AS"})

    until(service, lambda: names(erp, "Org") == {"Fjord Holding AS"})
    assert box.webhooks.wait_idle(30)
    assert box.webhooks.outcomes[-1] == (f"{app.url}/hooks/crm", 200)


def test_a_burst_of_pushes_during_a_run_is_one_more_run(
    rest_world: tuple[CustomCrmSandbox, Path, dict, MemoryDataset],
    serving: Callable[[Service], SandboxServer],
) -> None:
    box, path, environ, erp = rest_world
    customer = box.insert("Customer", {"name": "Fjord AS", "email": "post@fjord.no"})
    service = Service(path, every=3600, environ=environ)
    app = serving(service)
    until(service, lambda: names(erp, "Org") == {"Fjord AS"})
    box.webhook_url, box.webhook_secret = f"{app.url}/hooks/crm", REST_SECRET
    started, gate = threading.Event(), threading.Event()

    def hold() -> None:  # the run reading erp.Org waits here until the burst is in
        started.set()
        gate.wait(60)

    erp.inject_failure("read", hold, "Org")
    runs = service.scheduler.state.runs
    service.run_now()
    assert started.wait(60), "the run did not start"
    try:
        for number in range(50):
            box.edit("Customer", customer["id"], {"name": f"Fjord {number} AS"})
        assert box.webhooks.wait_idle(60)
        assert [status for _, status in list(box.webhooks.outcomes)[-50:]] == [200] * 50
        assert service.scheduler.state.running_since is not None
        assert service.scheduler.requested
    finally:
        gate.set()
    assert service.scheduler.wait_runs(runs + 2, 60)
    until(service, lambda: names(erp, "Org") == {"Fjord 49 AS"})
    assert service.scheduler.state.runs == runs + 2  # the held run and one more
    assert not service.scheduler.requested
    assert service.scheduler.state.last is not None
    assert service.scheduler.state.last.status == "ok"


# -- PostgreSQL LISTEN/NOTIFY ---------------------------------------------------------------
SQL = """\
store: sqlite:///state.db
systems:
  pms:
    kind: sql
    url: {url}
    entity_types:
      customers:
        id: id
        updated: updated_at
        external_ref: ext
  crm:
    kind: memory
    dataset: {dataset}
    entity_types:{customer}
dataflows:
  - source: pms.customers
    target: crm.Customer
    match: [[{{from: email, to: email, normalize: email}}]]
    properties:
      - {{from: name, to: name, type: string}}
      - {{from: email, to: email, type: string}}
"""


def test_a_row_written_in_postgresql_arrives_through_notify_also_after_a_reconnect(
    postgres_url: str, tmp_path: Path, serving: Callable[[Service], SandboxServer]
) -> None:
    database = create_engine(postgres_url)
    with database.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE customers (id SERIAL PRIMARY KEY, name TEXT, email TEXT, "
                "ext TEXT, updated_at TIMESTAMPTZ)"
            )
        )
    name = f"crm-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "samband.yaml"
    path.write_text(
        SQL.format(url=postgres_url, dataset=name, customer=MEMORY_TYPE.format(name="Customer")),
        encoding="utf-8",
    )
    install_tracking(load_valid(path).config, "pms", "customers")
    crm = dataset(name)
    service = Service(path, every=3600, environ={})
    serving(service)
    try:
        assert service.listeners.wait_connected("pms", 1, 60), "no LISTEN"
        until(service, lambda: True)
        with database.begin() as conn:
            conn.execute(
                text("INSERT INTO customers (name, email) VALUES ('Nord AS', 'a@nord.no')")
            )
        until(service, lambda: names(crm, "Customer") == {"Nord AS"})

        with database.begin() as conn:  # the server drops the listener, as a restart does
            dropped = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'samband-listen:pms' "
                    "AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()"
                )
            ).all()
        assert dropped, "the listener's connection was not found"
        assert service.listeners.wait_connected("pms", 2, 60), "the listener did not come back"
        with database.begin() as conn:
            conn.execute(text("UPDATE customers SET name = 'Nord Holding AS'"))
        until(service, lambda: names(crm, "Customer") == {"Nord Holding AS"})
        received = service.push_metrics.received.labels("pms", "listen")._value.get()
        assert received >= 2
        assert service.push_metrics.reconnects.labels("pms")._value.get() == 1
    finally:
        database.dispose()
