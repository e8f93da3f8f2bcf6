"""Connector breaks an adversarial tester found (round 2), each through the engine where
the harm showed: records never read, a value changed in another row, a duplicate, a
truncated text, one bad item that stopped a system or a table.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from samband.config import parse_config
from samband.engine.run import Engine
from samband.kinds.memory.connector import dataset

Handler = Callable[[dict[str, str]], bytes]


@pytest.fixture
def api() -> Iterator[Callable[[Handler], str]]:
    """Serve a tiny JSON API (a function of the query parameters) on 127.0.0.1."""
    servers: list[ThreadingHTTPServer] = []

    def serve(answer: Handler) -> str:
        class H(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
                body = answer(query)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def _sync(text: str) -> dict[str, Any]:
    with Engine(parse_config(text).config) as engine:
        return engine.sync().to_dict()


# -- f4: a REST API that caps its page size ------------------------------------------------


def test_rest_a_page_shorter_than_asked_is_not_the_last_page(
    api: Callable[[Handler], str], tmp_path: Path
) -> None:
    """Asked for 25 a page, the API answers 20 (its own cap) and says nothing of more
    pages: the connector reads on until an empty page, so with a full read and propagated
    deletes no live record is deleted in the other system."""
    rows = [
        {"id": i, "name": f"Customer {i}", "updated_at": "2026-01-01T00:00:00Z"}
        for i in range(1, 31)
    ]
    cap = {"n": 1000}

    def answer(query: dict[str, str]) -> bytes:
        page, size = int(query.get("page", "1")), min(int(query["page_size"]), cap["n"])
        return json.dumps({"items": rows[(page - 1) * size : page * size]}).encode()

    base_url = api(answer)
    config = f"""
store: "sqlite:///{tmp_path / "s.db"}"
systems:
  shop:
    kind: rest
    base_url: {base_url}
    auth: none
    entity_types:
      Customer: {{path: customers, paging: page, page_size: 25, incremental: false,
                  deleted: null}}
  erp: {{kind: memory, entity_types: {{Account: {{external_ref: ext}}}}}}
dataflows:
  - source: shop.Customer
    target: erp.Account
    on_delete: propagate
    properties:
      - {{from: name, to: name, type: string}}
"""
    assert _sync(config)["created"] == 30
    cap["n"] = 20
    report = _sync(config)
    assert report["deleted"] == 0, report["messages"]
    assert len(dataset("erp").records("Account")) == 30
