"""What the tests of ``samband serve`` share: Starlette's in-process TestClient and the
CSRF token of a page."""

from __future__ import annotations

import json
import re
import socket
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from samband.service.notify import sign

with warnings.catch_warnings():
    # the TestClient runs the app's lifespan in-process; its httpx backend is deprecated in
    # favour of httpx2, which this project does not use yet
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

__all__ = [
    "ADMIN_PASSWORD",
    "SECRET",
    "USERS",
    "VIEWER_PASSWORD",
    "TestClient",
    "csrf_of",
    "customers",
    "free_port",
    "login",
    "signed_events",
    "webhook_receiver",
    "world",
]


def csrf_of(page: str) -> str:
    """The CSRF token a page's forms carry."""
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "the page has no CSRF token"
    return match[1]


ADMIN_PASSWORD = "correct horse battery"
VIEWER_PASSWORD = "viewer password 42"
_HASHER = PasswordHasher()
USERS = (
    f"ada admin {_HASHER.hash(ADMIN_PASSWORD)}\n"
    f"# a comment\nvic viewer {_HASHER.hash(VIEWER_PASSWORD)}\n"
)


def login(client: TestClient, name: str, password: str) -> str:
    token = csrf_of(client.get("/login").text)
    answer = client.post(
        "/login",
        data={"name": name, "password": password, "csrf": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/").text)


WORLD_CONFIG = """\
store: sqlite:///state.db
systems:
  crm:
    kind: memory
    path: crm.json
    entity_types: {Customer: {external_ref: ext}}
  erp:
    kind: memory
    path: erp.json
    entity_types: {Account: {external_ref: ext}}
dataflows:
  - id: FLOW_ID
    source: crm.Customer
    target: erp.Account
    match: [[{from: org, to: org}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
"""


def customers(*names: str) -> str:
    records = {
        str(i): {
            "data": {"id": i, "name": name, "org": f"91234567{i}"},
            "version": 1,
            "modified": "2026-01-01T00:00:00+00:00",
            "deleted": False,
        }
        for i, name in enumerate(names, 1)
    }
    return json.dumps({"version": 1, "types": {"Customer": records}})


def world(folder: Path, flow_id: str = "customers", crm: str | None = None) -> Path:
    (folder / "crm.json").write_text(crm or customers("Acme AS", "Fjord AS"), encoding="utf-8")
    path = folder / "samband.yaml"
    path.write_text(WORLD_CONFIG.replace("FLOW_ID", json.dumps(flow_id)), encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SECRET = "webhook-secret-value"


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook_receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def signed_events(received: list[tuple[dict[str, str], bytes]]) -> list[dict[str, Any]]:
    events = []
    for headers, body in received:
        timestamp = headers["X-Samband-Timestamp"]
        assert headers["X-Samband-Signature"] == sign(SECRET, timestamp, body)
        assert headers["X-Samband-Signature"] != sign("another secret", timestamp, body)
        events.append(json.loads(body))
    return events
