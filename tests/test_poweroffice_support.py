"""Shared helpers of the PowerOffice GO tests (no tests here).

``serve(box)`` is ``box.serve()`` once ``SandboxServer.start`` prepares uvicorn's config
and lifespan itself.  With uvicorn 0.54 it calls ``Server.startup`` before
``Config.load`` and the server never comes up; until that is fixed in
``sandbox/_base.py``, :class:`_Server` starts the same server with those two steps added.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading

import uvicorn

from samband.sandbox._base import Sandbox, SandboxServer

_SOURCE = inspect.getsource(SandboxServer.start)
BASE_WORKS = ".load()" in _SOURCE or "lifespan_class" in _SOURCE

KEYS = {
    "application_key": "sandbox-application-key",
    "client_key": "sandbox-client-key",
    "subscription_key": "sandbox-subscription-key",
}


class _Server(SandboxServer):
    def start(self) -> SandboxServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        config.load()
        server = self._server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()

            async def main() -> None:
                await server.startup(sockets=[sock])
                ready.set()
                await server.main_loop()
                await server.shutdown(sockets=[sock])

            loop.run_until_complete(main())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"sandbox:{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(15):
            raise RuntimeError("sandbox did not start within 15 s")
        return self


def serve(box: Sandbox) -> SandboxServer:
    """Start ``box`` on 127.0.0.1 in a background thread; ``.stop()`` when done."""
    return box.serve() if BASE_WORKS else _Server(box.app).start()
