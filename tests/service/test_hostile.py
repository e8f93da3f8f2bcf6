"""``samband serve`` attacked from outside: secrets written in odd places of the config,
the store gone, logins sent all at once, a web page of another name re-pointed at
127.0.0.1 (DNS rebinding)."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

from samband.service import Service, create_app
from samband.service.access import Access
from tests.support.service import ADMIN_PASSWORD, USERS, TestClient, csrf_of
from tests.support.service import world as _world

PAGES = ["/", "/runs", "/records?q=acme", "/conflicts", "/errors", "/errors.csv"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_config_page_masks_secrets_written_in_a_flow_mapping(tmp_path: Path) -> None:
    config = _world(tmp_path)
    text = config.read_text(encoding="utf-8").replace(
        "    kind: memory\n    path: crm.json",
        "    kind: memory\n    path: crm.json\n"
        "    credentials: {password: hunter2literal, api_key: 'abc SECRET key', token: \"${T}\"}",
    )
    config.write_text(text, encoding="utf-8")
    service = Service(config, every=3600)
    with TestClient(create_app(service, manage_service=False)) as client:
        page = client.get("/config").text
    assert "hunter2literal" not in page and "SECRET" not in page
    assert "${T}" in page and "crm.json" in page


def test_every_page_says_so_when_the_store_does_not_answer(tmp_path: Path) -> None:
    config = _world(tmp_path)
    gone = f"postgresql://bob:pw-of-bob@127.0.0.1:{_free_port()}/nothing"
    config.write_text(
        config.read_text(encoding="utf-8").replace("sqlite:///state.db", gone), encoding="utf-8"
    )
    assert gone in config.read_text(encoding="utf-8")
    service = Service(config, every=3600)
    with TestClient(create_app(service, manage_service=False)) as client:
        for path in PAGES:
            answer = client.get(path)
            assert answer.status_code in (200, 503), (path, answer.status_code)
            assert "cannot open the store" in answer.text, path
            assert "pw-of-bob" not in answer.text
        assert client.get("/readyz").status_code == 503


def test_logins_sent_together_are_throttled_as_one_by_one(tmp_path: Path) -> None:
    service = Service(_world(tmp_path), every=3600)
    app = create_app(service, Access({"SAMBAND_USERS": USERS}), manage_service=False)

    async def burst() -> Counter[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
            token = csrf_of((await client.get("/login")).text)
            answers = await asyncio.gather(
                *[
                    client.post("/login", data={"name": "ada", "password": f"no{i}", "csrf": token})
                    for i in range(12)
                ]
            )
            right = await client.post(
                "/login", data={"name": "ada", "password": ADMIN_PASSWORD, "csrf": token}
            )
            assert right.status_code == 429  # the name is locked for now, even rightly
            return Counter(answer.status_code for answer in answers)

    counts = asyncio.run(burst())
    assert counts == {401: 5, 429: 7}


def test_serve_answers_only_to_loopback_names_without_a_login(tmp_path: Path) -> None:
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
        assert "serving" in process.stdout.readline()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
            for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example"):
                for path in ("/", "/api/overview", "/config"):
                    answer = client.get(path, headers={"Host": host})
                    assert answer.status_code == 421, (host, path)
                    assert "Acme" not in answer.text
                answer = client.post("/api/run", headers={"Host": host})
                assert answer.status_code == 421
            for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost"):
                assert client.get("/api/overview", headers={"Host": host}).status_code == 200
            # a receiver is reached through a proxy under the public name: not refused here
            assert client.post("/hooks/crm", headers={"Host": "sync.example"}).status_code == 404
    finally:
        process.terminate()
        try:
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()


@pytest.mark.parametrize("host", ["[::1]:8080", "localhost:8080", "127.0.0.1"])
def test_a_host_header_names_its_host_without_the_port(host: str) -> None:
    from samband.service.web import host_name, is_loopback

    assert is_loopback(host_name(host))


def test_an_unknown_dataflow_in_a_link_is_never_served_as_html(tmp_path: Path) -> None:
    service = Service(_world(tmp_path), every=3600)
    script = "/dataflows/%3Cscript%3Ealert(1)%3C%2Fscript%3E"
    with TestClient(create_app(service, manage_service=False)) as client:
        token = csrf_of(client.get("/").text)
        for answer in (
            client.get(script),
            client.post(script + "/preview", data={"csrf": token}),
        ):
            assert answer.status_code == 404
            assert answer.headers["content-type"].startswith("text/plain")
            assert answer.headers["x-content-type-options"] == "nosniff"


def test_no_page_can_be_framed_by_another_site(tmp_path: Path) -> None:
    service = Service(_world(tmp_path), every=3600)
    with TestClient(create_app(service, manage_service=False)) as client:
        for path in ("/", "/dataflows/customers", "/api/overview", "/login"):
            answer = client.get(path)
            assert answer.headers["x-frame-options"] == "DENY", path
            assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_a_port_out_of_range_is_a_usage_error_not_a_defect(tmp_path: Path, port: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "samband.cli", "serve", "-c", str(_world(tmp_path)), "--port", port],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--port" in result.stderr and "defect" not in result.stderr


def test_an_action_on_a_locked_store_says_so_and_the_next_one_works(tmp_path: Path) -> None:
    import sqlite3

    service = Service(_world(tmp_path), every=3600)
    with TestClient(create_app(service, manage_service=False)) as client:
        token = csrf_of(client.get("/").text)  # opens the service's store connection
        assert service._inspector is not None
        # another program holds the store's write lock longer than the store waits
        service._inspector.store.db.conn.exec_driver_sql("PRAGMA busy_timeout=50")
        other = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            answer = client.post("/api/dataflows/customers/pause", headers={"X-CSRF-Token": token})
            assert answer.status_code == 503
            assert "did not answer" in answer.json()["error"]
            assert client.get("/api/dataflows").status_code == 200  # reads go on meanwhile
            service._inspector.store.db.conn.exec_driver_sql("PRAGMA busy_timeout=50")
            form = client.post(
                "/dataflows/customers/pause", data={"csrf": token}, follow_redirects=False
            )
            assert form.status_code == 303 and "error=" in form.headers["location"]
        finally:
            other.execute("ROLLBACK")
            other.close()
        answer = client.post("/api/dataflows/customers/pause", headers={"X-CSRF-Token": token})
        assert answer.status_code == 200, answer.text
        controls = client.get("/api/dataflows").json()
        assert [row["paused"] for row in controls if row["dataflow"] == "customers"] == [True]


class _Refusing(http.server.BaseHTTPRequestHandler):
    """A system that refuses every call and echoes what it was sent, the URL included."""

    def do_GET(self) -> None:
        body = json.dumps({"error": "unauthorized", "url": self.path}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_secret_in_a_setting_is_in_no_page_answer_or_stored_run(tmp_path: Path) -> None:
    secret = "qs-SECRET-value-3"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = _world(tmp_path)
        text = config.read_text(encoding="utf-8")
        config.write_text(
            text.replace(
                "systems:\n",
                "systems:\n"
                "  api:\n"
                "    kind: rest\n"
                f"    base_url: http://127.0.0.1:{server.server_port}/v1?k=${{CRM_KEY}}\n"
                "    auth: bearer\n"
                '    credentials: {token: "${CRM_TOKEN}"}\n'
                "    entity_types:\n"
                "      Account: {path: accounts, properties: {name: string, org: string}}\n",
                1,
            ).replace("target: erp.Account", "target: api.Account"),
            encoding="utf-8",
        )
        environ = {**os.environ, "CRM_KEY": secret, "CRM_TOKEN": "tok-SECRET-value-1"}
        service = Service(config, every=3600, environ=environ)
        with TestClient(create_app(service)) as client:
            assert service.scheduler.wait_runs(1, timeout=60)
            assert service.scheduler.state.last is not None
            assert service.scheduler.state.last.status == "failed"
            answers = [client.get(path).text for path in ("/readyz", "/", "/runs")]
            answers += [client.get(path).text for path in ("/api/overview", "/api/runs")]
            stored = json.dumps(service.read("runs", 5))
        assert "401" in stored  # the failure is there, without the secret
        for said in [*answers, stored]:
            assert secret not in said and "tok-SECRET" not in said
    finally:
        server.shutdown()


def test_a_copy_of_the_session_cookie_is_refused_after_the_logout(tmp_path: Path) -> None:
    service = Service(_world(tmp_path), every=3600)
    app = create_app(service, Access({"SAMBAND_USERS": USERS}), manage_service=False)
    with TestClient(app, base_url="https://testserver") as client:
        token = csrf_of(client.get("/login").text)
        client.post("/login", data={"name": "ada", "password": ADMIN_PASSWORD, "csrf": token})
        token = csrf_of(client.get("/").text)
        copied = dict(client.cookies)
        assert client.post("/logout", data={"csrf": token}).status_code == 200
        with TestClient(app, base_url="https://testserver", cookies=copied) as thief:
            assert thief.get("/api/overview").status_code == 401
            assert thief.post("/api/run", headers={"X-CSRF-Token": token}).status_code == 401
            assert thief.get("/", follow_redirects=False).status_code == 303
        token = csrf_of(client.get("/login").text)  # the user logs in again: a new session
        client.post("/login", data={"name": "ada", "password": ADMIN_PASSWORD, "csrf": token})
        assert client.get("/api/overview").status_code == 200


def test_a_malformed_or_unknown_record_ref_is_answered_400_or_404(tmp_path: Path) -> None:
    service = Service(_world(tmp_path), every=3600)
    with TestClient(create_app(service)) as client:
        assert service.scheduler.wait_runs(1, timeout=60)
        assert client.get("/api/records/crm:Customer:1").status_code == 200
        for malformed in ("/api/records/nothing", "/api/records/%00", "/api/history/a:b"):
            answer = client.get(malformed)
            assert answer.status_code == 400, malformed
            assert "SYSTEM:TYPE:ID" in answer.json()["error"]
        for unknown in ("/api/records/crm:Customer:999", "/api/records/nope:Nope:1"):
            assert client.get(unknown).status_code == 404, unknown


def test_an_action_on_an_unknown_id_is_404_and_a_wrong_one_400(tmp_path: Path) -> None:
    service = Service(_world(tmp_path), every=3600)
    with TestClient(create_app(service)) as client:
        assert service.scheduler.wait_runs(1, timeout=60)
        headers = {"X-CSRF-Token": csrf_of(client.get("/").text)}
        for path, body, status in [
            ("/api/conflicts/99999/resolve", {"take": "source"}, 404),
            ("/api/conflicts/99999/resolve", {"take": "<b>"}, 400),
            ("/api/errors/dismiss", {"ref": "crm:Customer:999"}, 404),
        ]:
            answer = client.post(path, json=body, headers=headers)
            assert answer.status_code == status, (path, body, answer.text)


def test_a_form_with_a_conflict_id_that_is_no_number_says_so(tmp_path: Path) -> None:
    service = Service(_world(tmp_path), every=3600)
    with TestClient(create_app(service, manage_service=False)) as client:
        token = csrf_of(client.get("/").text)
        answer = client.post(
            "/conflicts/resolve",
            data={"csrf": token, "id": "abc", "take": "source"},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        assert "is+not+a+conflict+id" in answer.headers["location"]
        assert "int%28%29" not in answer.headers["location"]
