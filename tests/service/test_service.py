"""``samband serve``: the scheduler, the JSON API, /metrics, /healthz, /readyz and the
overview page, against a real store and the memory kind, through the ASGI app; and the
command itself in a subprocess, stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from samband.kinds.memory.connector import dataset
from samband.service import Service, create_app
from samband.service.masking import mask_secrets
from samband.service.scheduler import MAX_BACKOFF, Scheduler
from samband.service.web import check_bind
from tests.support.docs_examples import DOCS, block_after
from tests.support.service import TestClient, csrf_of
from tests.support.service import free_port as _free_port
from tests.support.service import world as _world


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Service, TestClient]]:
    service = Service(_world(tmp_path), every=3600)
    with TestClient(create_app(service)) as client:
        assert service.scheduler.wait_runs(1, timeout=60), "the first run did not finish"
        yield service, client


def test_the_first_run_is_scheduled_at_start_and_shown(served: tuple[Service, TestClient]) -> None:
    service, client = served
    overview = client.get("/api/overview").json()
    assert overview["dataflows"][0]["links"] == 2
    assert overview["runs"][0]["status"] == "ok"
    assert overview["runs"][0]["created"] == 2
    erp = json.loads((service.config_path.parent / "erp.json").read_text())
    assert sorted(r["data"]["name"] for r in erp["types"]["Account"].values()) == [
        "Acme AS",
        "Fjord AS",
    ]
    page = client.get("/")
    assert page.status_code == 200
    assert "Everything is in sync" in page.text


def test_run_now_queues_a_run_that_picks_up_an_edit(
    served: tuple[Service, TestClient],
) -> None:
    service, client = served
    folder = service.config_path.parent
    dataset("crm").edit("Customer", "1", {"name": "Acme Holding AS"})
    assert client.post("/api/run").status_code == 403  # a browser POST needs the page's token
    token = csrf_of(client.get("/").text)
    assert client.post("/api/run", headers={"X-CSRF-Token": token}).status_code == 202
    assert service.scheduler.wait_runs(2, timeout=60), "run now did not run"
    erp = json.loads((folder / "erp.json").read_text())
    names = sorted(r["data"]["name"] for r in erp["types"]["Account"].values())
    assert names == ["Acme Holding AS", "Fjord AS"]
    assert client.get("/api/run").status_code == 405  # an action is never a GET


def test_metrics_follow_the_prometheus_conventions(served: tuple[Service, TestClient]) -> None:
    _, client = served
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    written = (
        "samband_records_written_total",
        (("dataflow", "customers"), ("operation", "created")),
    )
    assert samples[written] == 2
    assert (
        samples[("samband_records_read_total", (("entity_type", "Customer"), ("system", "crm")))]
        == 2
    )
    assert samples[("samband_runs_total", (("status", "ok"),))] == 1
    assert samples[("samband_quarantined_records", ())] == 0
    assert samples[("samband_links", (("dataflow", "customers"),))] == 2
    assert samples[("samband_run_duration_seconds_count", ())] == 1
    assert (
        samples[("samband_last_successful_run_timestamp_seconds", (("dataflow", "customers"),))] > 0
    )
    allowed = {"dataflow", "operation", "system", "entity_type", "status", "le"}
    assert {label for _, labels in samples for label, _ in labels} <= allowed


def test_readyz_says_not_ready_with_the_reason_when_the_last_run_failed(tmp_path: Path) -> None:
    service = Service(_world(tmp_path, crm="not json"), every=3600)
    with TestClient(create_app(service)) as client:
        assert service.scheduler.wait_runs(1, timeout=60)
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "crm.json cannot be read" in ready.json()["reason"]
        page = client.get("/").text
        assert 'role="alert"' in page and "crm.json cannot be read" in page


def test_the_api_takes_the_bearer_token_when_one_is_set(
    served: tuple[Service, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMBAND_API_TOKEN", "s3cret-token")
    client = TestClient(create_app(served[0], manage_service=False))
    assert client.get("/api/status").status_code == 401
    assert client.post("/api/run").status_code == 401
    wrong = client.get("/api/status", headers={"Authorization": "Bearer s3cret-tokex"})
    assert wrong.status_code == 401
    assert "s3cret" not in wrong.text
    right = client.get("/api/status", headers={"Authorization": "Bearer s3cret-token"})
    assert right.status_code == 200 and right.json()["links"][0]["links"] == 2
    assert client.get("/healthz").status_code == 200  # probes stay open


def test_records_and_history_by_ref(served: tuple[Service, TestClient]) -> None:
    _, client = served
    group = client.get("/api/records/crm:Customer:1").json()
    assert {member["ref"].split(":")[0] for member in group} == {"crm", "erp"}
    history = client.get("/api/history/crm:Customer:1").json()
    assert isinstance(history, list)
    assert client.get("/api/history/not-a-ref").status_code == 400


def test_the_page_escapes_what_the_config_names(tmp_path: Path) -> None:
    service = Service(_world(tmp_path, flow_id="<script>alert(1)</script>"), every=3600)
    with TestClient(create_app(service)) as client:
        assert service.scheduler.wait_runs(1, timeout=60)
        page = client.get("/").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.org"])
def test_only_loopback_is_served_without_a_login(host: str) -> None:
    assert check_bind(host) is not None


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_addresses_are_served(host: str) -> None:
    assert check_bind(host) is None


def test_failed_runs_back_off_up_to_a_cap() -> None:
    scheduler = Scheduler(lambda: None, every=60)  # type: ignore[arg-type,return-value]
    waits = []
    for failures in range(0, 12):
        scheduler.state.failures_in_a_row = failures
        waits.append(scheduler._next_wait())
    assert waits[:4] == [60, 120, 240, 480]
    assert max(waits) == MAX_BACKOFF
    assert waits == sorted(waits)


def test_serve_runs_until_sigterm_and_exits_cleanly(tmp_path: Path) -> None:
    config = _world(tmp_path)
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "samband.cli", "serve", "-c", str(config), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        assert "serving" in process.stdout.readline()  # printed once it listens
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            overview: dict[str, Any] = {"runs": []}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    overview = client.get("/api/overview").json()
                except httpx.TransportError:
                    time.sleep(0.05)  # paces the polls of a listener coming up
                    continue
                if overview["runs"] and overview["runs"][0]["status"] != "running":
                    break
            assert overview["runs"][0]["status"] == "ok"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert "Traceback" not in (process.stderr.read() if process.stderr else "")
    finally:
        if process.poll() is None:
            process.kill()


def test_serve_refuses_a_network_address_without_the_login(tmp_path: Path) -> None:
    config = _world(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "samband.cli", "serve", "-c", str(config), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "bind 127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_python_example_of_the_service_page_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _world(tmp_path)
    monkeypatch.chdir(tmp_path)
    example = block_after(DOCS / "service.md", "## From Python", "python")
    names: dict[str, object] = {}
    exec(compile(example.code, example.where, "exec"), names)
    service = names["service"]
    assert isinstance(service, Service)
    with TestClient(names["app"]) as client:  # type: ignore[arg-type]
        assert service.scheduler.wait_runs(1, timeout=60)
        assert client.get("/readyz").status_code == 200


def test_the_documents_are_listed_and_rendered(served: tuple[Service, TestClient]) -> None:
    _, client = served
    listing = client.get("/documents")
    assert listing.status_code == 200
    names = re.findall(r'<a href="/documents/([^"]+)"', listing.text)
    assert names and all(name.endswith(".html") for name in names)
    document = client.get(f"/documents/{names[0]}")
    assert document.status_code == 200 and "<table" in document.text
    assert client.get("/documents/..%2Fsamband.yaml").status_code == 404


def test_the_latest_qa_report_is_listed_and_rendered(served: tuple[Service, TestClient]) -> None:
    from samband.qa import run_qa

    service, client = served
    assert "No QA report yet" in client.get("/documents").text
    result = run_qa(service.config_path, echo=lambda line: None)  # the real `samband qa`
    assert result.passed
    listing = client.get("/documents").text
    names = re.findall(r'<a href="/documents/qa/([^"]+)"', listing)
    assert names == ["qa-crm-erp.html"]
    report = client.get(f"/documents/qa/{names[0]}")
    assert report.status_code == 200 and "PASSED" in report.text.upper()
    assert [row["name"] for row in client.get("/api/qa").json()] == names
    for outside in ("..%2Fsamband.yaml", "qa-crm-erp.rst", "qa-nothing.html"):
        assert client.get(f"/documents/qa/{outside}").status_code == 404


def test_the_config_page_masks_literal_secrets(tmp_path: Path) -> None:
    config = _world(tmp_path)
    text = config.read_text(encoding="utf-8")
    text += "# a comment\n"
    text = text.replace(
        "    kind: memory\n    path: crm.json",
        "    kind: memory\n    path: crm.json\n    label: Key Accounts",
    )
    config.write_text(text, encoding="utf-8")
    service = Service(config, every=3600)
    with TestClient(create_app(service, manage_service=False)) as client:
        page = client.get("/config").text
    assert "Key Accounts" in page and "crm.Customer" in page
    masked = mask_secrets(
        "credentials:\n  password: hunter2\n  api_token: ${TOKEN}\n"
        "url: postgresql://pms:pa55word@db/pms\n"
    )
    assert "hunter2" not in masked and "pa55word" not in masked
    assert "${TOKEN}" in masked and "postgresql://pms:***@db/pms" in masked


def test_the_runs_api_lists_runs_newest_first(served: tuple[Service, TestClient]) -> None:
    service, client = served
    assert (
        client.post("/api/run", headers={"X-CSRF-Token": csrf_of(client.get("/").text)}).status_code
        == 202
    )
    assert service.scheduler.wait_runs(2, timeout=60)
    runs = client.get("/api/runs?limit=5").json()
    assert [run["run"] for run in runs] == [2, 1]
    assert runs[1]["created"] == 2 and runs[1]["api_calls_by_system"]["erp"] > 0
    page = client.get("/runs").text
    assert "erp: " in page


def test_serve_on_a_port_in_use_says_so_in_one_line(tmp_path: Path) -> None:
    config = _world(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = subprocess.run(
            [sys.executable, "-m", "samband.cli", "serve", "-c", str(config), "--port", port],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert (
        result.stderr.strip().count("\n") == 0
        and f"cannot listen on 127.0.0.1:{port}" in result.stderr
    )
    assert result.stdout == ""  # nothing announced


def test_the_served_connections_send_without_waiting_for_acks() -> None:
    """The listening socket names TCP, so asyncio sets TCP_NODELAY on each connection; without
    it every response on a kept-alive connection waited ~40 ms (Nagle and delayed ACKs)."""
    import asyncio

    from samband.cli.serve_commands import _bound

    async def accepted_nodelay() -> int:
        sock = _bound("127.0.0.1", 0)
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("socket")
            seen.set_result(peer.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(connected, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            result = await asyncio.wait_for(seen, 10)
            writer.close()
            return result

    assert asyncio.run(accepted_nodelay()) != 0


def test_the_counts_follow_a_run_of_another_process_and_an_action(
    served: tuple[Service, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counts are kept between changes of the store (a million links take a while to
    count): a run the service did not make, and an action through the service, show."""
    from samband.engine.run import Engine
    from samband.service import service as service_module

    service, client = served
    assert client.get("/api/status").json()["links"][0]["links"] == 2
    dataset("crm").insert("Customer", {"name": "Nord AS", "org": "912345679"})
    with Engine.from_file(service.config_path) as engine:  # as `samband run` would
        assert engine.sync().to_dict()["created"] == 1
    monkeypatch.setattr(service_module._Counts, "FRESH", 0.0)
    assert client.get("/api/status").json()["links"][0]["links"] == 3
    quarantined = client.get("/api/status").json()["quarantined"]
    monkeypatch.setattr(service_module._Counts, "FRESH", 3600.0)  # only an action counts now
    with service._inspector_lock:
        inspector = service._opened()
        with inspector.store.tx():
            for ref in ("crm:Customer:3", "crm:Customer:4"):
                inspector.store.add_dead_letter(ref, "customers", "rejected", "no", None, 1)
    assert client.get("/api/status").json()["quarantined"] == quarantined  # kept
    token = csrf_of(client.get("/").text)
    dismissed = client.post(
        "/api/errors/dismiss", json={"ref": "crm:Customer:3"}, headers={"X-CSRF-Token": token}
    )
    assert dismissed.status_code == 200, dismissed.text
    assert client.get("/api/status").json()["quarantined"] == quarantined + 1
