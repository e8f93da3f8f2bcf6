"""The systems' health on the overview, the API metrics of the connectors, and the
notice of refused credentials: a ``kind: rest`` system served by its sandbox with a wrong
token, then the right one, then a wrong one again; and a sandbox that answers 429."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from samband.connectors import _observe
from samband.kinds.rest.sandbox import CustomCrmSandbox
from samband.sandbox._base import SandboxServer
from samband.service import Service, create_app
from samband.service.notify import Notifier
from tests.support.service import SECRET, TestClient, webhook_receiver
from tests.support.service import signed_events as _events

receiver = webhook_receiver  # the fixture, by the name the tests use
TOKEN = "the-right-token-4711"


@pytest.fixture
def crm() -> Iterator[tuple[CustomCrmSandbox, SandboxServer]]:
    box = CustomCrmSandbox(token=TOKEN)
    for i in range(1, 4):
        box.insert("Customer", {"name": f"Kunde {i} AS", "org_no": f"91000000{i}"})
    server = box.serve()
    yield box, server
    server.stop()


def _config(folder: Path, url: str) -> Path:
    settings = CustomCrmSandbox().system_settings(url, "HEALTH_CRM_TOKEN")
    settings["entity_types"] = {"Customer": settings["entity_types"]["Customer"]}
    config = {
        "store": "sqlite:///state.db",
        "systems": {
            "crm": settings,
            "erp": {
                "kind": "memory",
                "path": "erp.json",
                "entity_types": {"Account": {"external_ref": "ext"}},
            },
        },
        "dataflows": [
            {
                "id": "customers",
                "source": "crm.Customer",
                "target": "erp.Account",
                "properties": [{"from": "name", "to": "name", "type": "string"}],
            }
        ],
    }
    path = folder / "samband.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_refused_token_is_told_once_shown_and_counted_until_it_works_again(
    tmp_path: Path,
    crm: tuple[CustomCrmSandbox, SandboxServer],
    receiver: tuple[str, list[tuple[dict[str, str], bytes]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    box, server = crm
    url, received = receiver
    monkeypatch.setenv("HEALTH_CRM_TOKEN", "a-wrong-token-0815")
    service = Service(_config(tmp_path, server.url), every=3600, notifier=Notifier(url, SECRET))
    with TestClient(create_app(service)) as client:
        assert service.scheduler.wait_runs(1, timeout=60)
        for runs in (2, 3):  # the schedule tries again and again
            service.run_now()
            assert service.scheduler.wait_runs(runs, timeout=60)
        kinds = [event["kind"] for event in _events(received)]
        assert kinds == ["auth_failed"], kinds
        told = _events(received)[0]
        assert "crm" in told["message"] and "401" in told["message"]
        assert "a-wrong-token" not in json.dumps(told)

        overview = client.get("/api/overview").json()
        crm_health = next(row for row in overview["systems"] if row["system"] == "crm")
        assert crm_health["health"] == "authentication failed"
        assert crm_health["last_read"] is None and crm_health["attention"]
        assert [row["system"] for row in overview["attention"]] == ["crm"]
        page = client.get("/").text
        assert 'data-system="crm"' in page and "authentication failed" in page
        assert "a-wrong-token" not in page
        samples = _samples(client.get("/metrics").text)
        assert samples[("samband_api_requests_total", (("status", "401"), ("system", "crm")))] >= 3
        durations = ("samband_api_request_duration_seconds_count", (("system", "crm"),))
        assert samples[durations] >= 3

        box.token = "a-wrong-token-0815"  # the system now takes what the config sends
        service.run_now()
        assert service.scheduler.wait_runs(4, timeout=60)
        assert [e["kind"] for e in _events(received)] == ["auth_failed", "run_recovered"]
        overview = client.get("/api/overview").json()
        crm_health = next(row for row in overview["systems"] if row["system"] == "crm")
        assert crm_health["health"] == "connected" and crm_health["last_read"]
        assert overview["attention"] == []
        assert "Everything is in sync" in client.get("/").text

        box.token = "rotated-token-4712"  # refused again: told again, once
        for runs in (5, 6):
            service.run_now()
            assert service.scheduler.wait_runs(runs, timeout=60)
        kinds = [e["kind"] for e in _events(received)]
        assert kinds == ["auth_failed", "run_recovered", "auth_failed"], kinds
        last_read = next(r for r in client.get("/api/systems").json() if r["system"] == "crm")
        assert last_read["health"] == "authentication failed" and last_read["last_read"]
    assert _observe.listeners == ()  # a stopped service listens no more


def test_429_answers_are_counted_as_waits_and_shown_without_an_alarm(
    tmp_path: Path, crm: tuple[CustomCrmSandbox, SandboxServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    box, server = crm
    monkeypatch.setenv("HEALTH_CRM_TOKEN", TOKEN)
    box.faults.update(burst_429=2)
    service = Service(_config(tmp_path, server.url), every=3600)
    with TestClient(create_app(service)) as client:
        assert service.scheduler.wait_runs(1, timeout=60)
        assert service.scheduler.state.last is not None
        assert service.scheduler.state.last.status == "ok"
        samples = _samples(client.get("/metrics").text)
        assert samples[("samband_api_requests_total", (("status", "429"), ("system", "crm")))] == 2
        waits = (("reason", "429"), ("system", "crm"))
        assert samples[("samband_rate_limit_waits_total", waits)] == 2
        assert samples[("samband_rate_limit_wait_seconds_total", waits)] > 0
        overview: dict[str, Any] = client.get("/api/overview").json()
        crm_health = next(row for row in overview["systems"] if row["system"] == "crm")
        assert crm_health["health"] == "rate limited" and not crm_health["attention"]
        assert "429" in crm_health["message"]
        assert overview["attention"] == []
