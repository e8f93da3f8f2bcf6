"""A tenant's webhook (``POST /tenants/NAME/hooks/SYSTEM``) queues a targeted run of that
tenant's dataflows: signed with the tenant's own secret only, one waiting job per set of
dataflows, and a push the queue could not take answered 503 and taken when sent again."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from procrastinate import App
from procrastinate.testing import InMemoryConnector
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from samband.queue.connect import conninfo, ensure_schema
from samband.queue.tasks import TARGETED, build_app, defer_targeted
from samband.service import Service, create_app
from samband.service.push import PushMetrics
from samband.service.tenant_hooks import TenantHooks
from samband.tenants import Registry
from tests.support.cluster import run_due_jobs
from tests.support.service import TestClient, world
from tests.support.webhooks import rest_request

CONFIG = """\
store: sqlite:///state.db
systems:
  crm:
    kind: rest
    base_url: http://127.0.0.1:9
    auth: bearer
    credentials: {token: "${CRM_TOKEN}", webhook_secret: "${CRM_WEBHOOK_SECRET}"}
    entity_types:
      Customer: {path: customers, properties: {name: string}}
      Note: {path: notes, properties: {text: string}}
  pms:
    kind: memory
    dataset: tenant-hooks-{name}
    entity_types: {Org: {external_ref: ext}}
dataflows:
  - source: crm.Customer
    target: pms.Org
    match: [[{from: name, to: name}]]
    properties: [{from: name, to: name, type: string}]
"""
SECRETS = {"acme": "acme-webhook-secret-0123456789", "beta": "beta-webhook-secret-0123456789"}


class Flaky:
    """Queues through ``app``, or fails while ``down``."""

    def __init__(self, app: App) -> None:
        self.app, self.down = app, False

    async def __call__(self, tenant: str, flows: list[str]) -> bool:
        if self.down:
            raise ConnectionError("the queue's database is down")
        return await defer_targeted(self.app, tenant, flows)


@dataclass
class Tenants:
    client: TestClient
    queue: App
    defer: Flaky
    hooks: TenantHooks


@pytest.fixture
def tenants(tmp_path: Path) -> Iterator[Tenants]:
    registry = Registry(tmp_path / "tenants")
    environ: dict[str, str] = {}
    for name, secret in SECRETS.items():
        folder = registry.root / name
        folder.mkdir(parents=True)
        (folder / "samband.yaml").write_text(CONFIG.replace("{name}", name), encoding="utf-8")
        environ[f"SAMBAND_TENANT_{name.upper()}__CRM_TOKEN"] = "crm-api-token-0123"
        environ[f"SAMBAND_TENANT_{name.upper()}__CRM_WEBHOOK_SECRET"] = secret
    queue = build_app(InMemoryConnector())
    defer = Flaky(queue)
    hooks = TenantHooks(registry, defer, PushMetrics(CollectorRegistry()), process_environ=environ)
    with queue.open(), TestClient(Starlette(routes=hooks.routes())) as client:
        yield Tenants(client, queue, defer, hooks)


def _jobs(app: App) -> list[tuple[Any, ...]]:
    connector = app.connector
    assert isinstance(connector, InMemoryConnector)
    return sorted(
        (job["task_name"], job["args"]["tenant"], tuple(job["args"]["dataflows"]), job["lock"])
        for job in connector.jobs.values()
        if job["status"] == "todo"
    )


def _event(number: int) -> dict[str, Any]:
    return {"type": "Customer", "id": str(number), "action": "updated"}


def test_a_push_queues_its_tenants_dataflows_signed_with_its_own_secret(
    tenants: Tenants,
) -> None:
    client, queue = tenants.client, tenants.queue
    body, headers = rest_request(_event(1), secret=SECRETS["acme"])
    answer = client.post("/tenants/acme/hooks/crm", content=body, headers=headers)
    assert (answer.status_code, answer.json()) == (200, {"accepted": True})
    expected = (TARGETED, "acme", ("crm.Customer->pms.Org",), "tenant:acme")
    assert _jobs(queue) == [expected]
    # beta's secret is not acme's, and a tenant that is not there is not said to be
    body, headers = rest_request(_event(2), secret=SECRETS["beta"])
    assert client.post("/tenants/acme/hooks/crm", content=body, headers=headers).status_code == 401
    assert client.post("/tenants/gone/hooks/crm", content=body, headers=headers).status_code == 404
    assert client.post("/tenants/a__b/hooks/crm", content=body, headers=headers).status_code == 404
    # another change while the run waits: the waiting run covers it
    body, headers = rest_request(_event(3), secret=SECRETS["acme"])
    assert client.post("/tenants/acme/hooks/crm", content=body, headers=headers).status_code == 200
    # a change no dataflow reads queues nothing
    body, headers = rest_request(
        {"type": "Note", "id": "9", "action": "updated"}, secret=SECRETS["acme"]
    )
    assert client.post("/tenants/acme/hooks/crm", content=body, headers=headers).status_code == 200
    assert _jobs(queue) == [expected]
    body, headers = rest_request(_event(4), secret=SECRETS["beta"])
    assert client.post("/tenants/beta/hooks/crm", content=body, headers=headers).status_code == 200
    assert [job[1] for job in _jobs(queue)] == ["acme", "beta"]


def test_a_push_the_queue_could_not_take_is_taken_when_sent_again(
    tenants: Tenants,
) -> None:
    client, queue, defer = tenants.client, tenants.queue, tenants.defer
    body, headers = rest_request(_event(1), secret=SECRETS["acme"])
    defer.down = True
    answer = client.post("/tenants/acme/hooks/crm", content=body, headers=headers)
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "30")
    assert _jobs(queue) == []
    defer.down = False
    # the same request again (the vendor's retry) is not refused as a replay
    assert client.post("/tenants/acme/hooks/crm", content=body, headers=headers).status_code == 200
    assert [job[1] for job in _jobs(queue)] == ["acme"]
    assert client.post("/tenants/acme/hooks/crm", content=body, headers=headers).status_code == 400


def test_a_rotated_secret_is_used_from_the_next_request(
    tenants: Tenants,
) -> None:
    client = tenants.client
    body, headers = rest_request(_event(1), secret=SECRETS["acme"])
    assert client.post("/tenants/acme/hooks/crm", content=body, headers=headers).status_code == 200
    # the secret now comes from the tenant's .env (no process variable names it)
    (tenants.hooks.registry.root / "acme" / ".env").write_text(
        "CRM_WEBHOOK_SECRET=rotated-secret-0123456789abcdef\n"
    )
    tenants.hooks.process_environ = {"SAMBAND_TENANT_ACME__CRM_TOKEN": "crm-api-token-0123"}
    body, headers = rest_request(_event(2), secret=SECRETS["acme"])
    assert client.post("/tenants/acme/hooks/crm", content=body, headers=headers).status_code == 401
    body, headers = rest_request(_event(3), secret="rotated-secret-0123456789abcdef")
    assert client.post("/tenants/acme/hooks/crm", content=body, headers=headers).status_code == 200


def test_a_replay_is_refused_also_after_the_tenants_config_changed(
    tenants: Tenants,
) -> None:
    client, queue = tenants.client, tenants.queue
    body, headers = rest_request(_event(1), secret=SECRETS["acme"])
    assert client.post("/tenants/acme/hooks/crm", content=body, headers=headers).status_code == 200
    assert [job[1] for job in _jobs(queue)] == ["acme"]
    for job in list(queue.connector.jobs.values()):  # type: ignore[attr-defined]
        job["status"] = "succeeded"  # the run was taken: another push would queue one
    # the tenant's receivers are made again from its edited config: the same request,
    # replayed within the window, is still refused
    config = tenants.hooks.registry.root / "acme" / "samband.yaml"
    config.write_text(config.read_text() + "# edited\n")
    assert client.post("/tenants/acme/hooks/crm", content=body, headers=headers).status_code == 400
    assert _jobs(queue) == []


@pytest.mark.postgres
def test_samband_serve_queues_a_tenants_push_a_worker_then_runs(
    postgres_url: str, tmp_path: Path
) -> None:
    registry = tmp_path / "tenants"
    (registry / "acme").mkdir(parents=True)
    (registry / "acme" / "samband.yaml").write_text(CONFIG.replace("{name}", "acme"))
    (registry / "acme" / ".env").write_text(
        f"CRM_TOKEN=crm-api-token-0123\nCRM_WEBHOOK_SECRET={SECRETS['acme']}\n"
    )
    ensure_schema(postgres_url)
    service = Service(world(tmp_path), every=3600, tenants_dir=registry, queue_url=postgres_url)
    # served as `samband serve` serves it: a webhook names the public host, not a loopback one
    app = create_app(service, manage_service=False, loopback_hosts=True)
    with TestClient(app, base_url="https://sync.example.com") as client:
        assert client.get("/tenants").status_code == 421
        body, headers = rest_request(_event(1), secret=SECRETS["acme"])
        answer = client.post("/tenants/acme/hooks/crm", content=body, headers=headers)
        assert (answer.status_code, answer.json()) == (200, {"accepted": True})
    with psycopg.connect(conninfo(postgres_url)) as conn:
        jobs = conn.execute(
            "SELECT task_name, args, lock, status FROM procrastinate_jobs"
        ).fetchall()
    assert jobs == [
        (
            TARGETED,
            {"tenant": "acme", "dataflows": ["crm.Customer->pms.Org"]},
            "tenant:acme",
            "todo",
        )
    ]
    run_due_jobs(postgres_url, registry)
    with psycopg.connect(conninfo(postgres_url)) as conn:
        tasks = conn.execute("SELECT tenant, task FROM samband_tenant_runs").fetchall()
    assert ("acme", "targeted") in tasks
