"""A tiny JSON API for connector tests: ``serve_json`` answers every GET with what a
function of the query parameters returns, on 127.0.0.1, in a thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

Handler = Callable[[dict[str, str]], bytes]


@contextmanager
def json_apis() -> Iterator[Callable[[Handler], str]]:
    """Yield ``serve(answer) -> base_url``; every server started is stopped on exit."""
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

    try:
        yield serve
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
