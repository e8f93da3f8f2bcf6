"""The HTTP client every API connector uses, against a real local HTTP server."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from samband.connectors._http import HttpClient


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"items": [' + b",".join(b'{"id": %d}' % i for i in range(1000)) + b"]}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_read_response_is_freed_without_the_cyclic_collector(server_url: str) -> None:
    """A page's body must go as soon as the page is done with, not when the collector
    next runs (runs raise its threshold: bodies would pile up)."""
    client = HttpClient("test", server_url)
    gc.disable()
    try:
        response = client.request("GET", "/items")
        assert len(client.json(response, "GET", "/items")["items"]) == 1000
        gone = weakref.ref(response)
        del response
        assert gone() is None, "the response is kept alive by a reference cycle"
    finally:
        gc.enable()
        client.close()
