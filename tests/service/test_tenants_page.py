"""The tenants page of ``samband serve --tenants-dir DIR --queue URL`` (and
``/api/tenants``): every tenant of the registry, its interval, its config's problems with
file and line, and — from a real queue a worker ran jobs on — its latest runs and its
waiting jobs; nothing a tenant keeps secret, and everything escaped."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from samband.queue.connect import connector
from samband.queue.runlog import PostgresRunLog
from samband.queue.tasks import build_app
from samband.service import Service, create_app
from tests.support import tenants as t
from tests.support.cluster import run_due_jobs
from tests.support.service import TestClient, free_port
from tests.support.service import world as _world

SECRET = "s3cr3t-crm-key-42"


def _registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    registry = tmp_path / "tenants"
    for name in ("acme", "broken"):
        for key, value in t.make_tenant(registry, name, every="1h").items():
            monkeypatch.setenv(key, value)
    (registry / "acme" / ".env").write_text(f"CRM_KEY={SECRET}\n", encoding="utf-8")
    # line 2 names a system the config does not have
    text = (registry / "broken" / "samband.yaml").read_text(encoding="utf-8")
    (registry / "broken" / "samband.yaml").write_text(
        "dataflows:\n- {source: nowhere.Company, target: pms.Customer}\n"
        + text.split("systems:", 1)[1].join(["systems:", ""]),
        encoding="utf-8",
    )
    return registry


def _a_run_that_echoed_a_credential(queue: str) -> None:
    app = build_app(connector(queue, min_size=1, max_size=2))

    async def log() -> None:
        async with app.open_async():
            runs = PostgresRunLog(app)
            row = await runs.begin("acme", None, "targeted", "host:1")
            await runs.finish(
                row, "failed", f"crm refused https://crm.example/?x={SECRET} <script>x</script>"
            )

    asyncio.run(log())


@pytest.mark.postgres
def test_the_tenants_page_lists_each_tenant_its_problems_runs_and_jobs(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = _registry(tmp_path, monkeypatch)
    run_due_jobs(postgres_url, registry)  # each tenant's run; its next one waits an hour
    _a_run_that_echoed_a_credential(postgres_url)
    service = Service(_world(tmp_path), every=3600, tenants_dir=registry, queue_url=postgres_url)
    with TestClient(create_app(service, manage_service=False)) as client:
        overview = client.get("/").text
        page = client.get("/tenants")
        api = client.get("/api/tenants").json()
    assert 'href="/tenants"' in overview  # the navigation links it
    assert page.status_code == 200
    html = page.text
    by_name = {tenant["name"]: tenant for tenant in api["tenants"]}
    assert sorted(by_name) == ["acme", "broken"]
    acme, broken = by_name["acme"], by_name["broken"]
    assert acme["valid"] and acme["every"] == "1h"
    assert acme["warnings"] == 0  # its ${CRM_URL} is set in its own environment
    assert [(r["task"], r["status"]) for r in acme["runs"]] == [
        ("targeted", "failed"),
        ("scheduled", "ok"),
    ]
    assert acme["runs"][1]["worker"] and acme["runs"][1]["finished_at"]
    assert [(j["task"], j["state"]) for j in acme["jobs"]] == [("scheduled", "waiting")]
    # the broken config: said with its file and line, and its run failed for it
    assert not broken["valid"]
    assert any(
        re.search(r"broken/samband\.yaml:2:\d+: error: unknown system 'nowhere'", p)
        for p in broken["problems"]
    ), broken["problems"]
    assert [r["status"] for r in broken["runs"]] == ["failed"]
    assert "broken/samband.yaml:2" in broken["runs"][0]["message"]
    # the page shows the same, escaped, with no credential
    row = html[html.index('id="tenant-broken"') :]
    assert "does not validate" in row and "unknown system &#39;nowhere&#39;" in row
    assert "waiting: scheduled" in html and ">ok<" in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>x" not in html
    assert SECRET not in html and SECRET not in str(api)
    assert "crm.example" in html  # the message is there, its secret masked


def test_a_queue_that_cannot_be_read_is_said_and_the_tenants_still_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = _registry(tmp_path, monkeypatch)
    queue = "postgresql://samband:Pa55-queue-word@127.0.0.1:1/samband"
    service = Service(_world(tmp_path), every=3600, tenants_dir=registry, queue_url=queue)
    with TestClient(create_app(service, manage_service=False)) as client:
        html = client.get("/tenants").text
        api = client.get("/api/tenants").json()
    assert "the queue&#39;s database cannot be read" in html
    assert [tenant["name"] for tenant in api["tenants"]] == ["acme", "broken"]
    assert "Pa55-queue-word" not in html and "Pa55-queue-word" not in str(api)


def test_without_a_registry_there_is_no_tenants_page(tmp_path: Path) -> None:
    service = Service(_world(tmp_path), every=3600)
    with TestClient(create_app(service, manage_service=False)) as client:
        assert 'href="/tenants"' not in client.get("/").text
        page = client.get("/tenants")
        api = client.get("/api/tenants")
    assert page.status_code == 404 and "--tenants-dir DIR" in page.text
    assert api.status_code == 404 and "--tenants-dir DIR" in api.json()["error"]


def test_samband_serve_takes_the_registry_and_the_queue_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`samband serve` with $SAMBAND_TENANTS and $SAMBAND_QUEUE (the options' fallbacks):
    the page lists the tenants and says why the queue cannot be read, its password
    masked in the log and on the page."""
    registry = _registry(tmp_path, monkeypatch)
    port = free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "SAMBAND_TENANTS": str(registry),
        "SAMBAND_QUEUE": "postgresql://samband:Pa55-queue-word@127.0.0.1:1/samband",
    }
    command = [sys.executable, "-m", "samband.cli", "serve", "-c", str(_world(tmp_path))]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        assert "serving" in process.stdout.readline()  # printed once it listens
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            api = client.get("/api/tenants").json()
            html = client.get("/tenants").text
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        stderr = process.stderr.read() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()
    assert api["registry"] == str(registry)
    assert [tenant["name"] for tenant in api["tenants"]] == ["acme", "broken"]
    assert "cannot be read" in api["queue_error"]
    assert 'href="/tenants"' in html
    assert "Pa55-queue-word" not in html + str(api) + stderr
    assert "Traceback" not in stderr
