"""Helpers of the Exact Online tests (no tests here): start a sandbox in-process.

``SandboxServer.start`` calls ``uvicorn.Server.startup`` without preparing
``server.lifespan`` and ``config.load()``, which uvicorn 0.54 needs; until the base class
does that itself, :func:`serve` starts the same server with those two steps added.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading

import uvicorn

from samband.sandbox._base import Sandbox, SandboxServer

_BASE_PREPARES = "lifespan_class" in inspect.getsource(SandboxServer.start)


class _Server(SandboxServer):
    def start(self) -> SandboxServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        config.load()
        server = self._server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)

            async def serve() -> None:
                await server.startup(sockets=[sock])
                ready.set()
                await server.main_loop()
                await server.shutdown(sockets=[sock])

            loop.run_until_complete(serve())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"exact-sandbox:{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(15):
            raise RuntimeError("sandbox did not start within 15 s")
        return self


def serve(box: Sandbox) -> SandboxServer:
    """``box.serve()``, or the same with uvicorn's lifespan prepared."""
    return box.serve() if _BASE_PREPARES else _Server(box.app).start()
