"""Start a sandbox in-process for a test: :func:`serve`.

``SandboxServer.start`` once failed with uvicorn 0.54 (it called ``Server.startup``
before ``Config.load`` and without ``server.lifespan``, and the server never came up).
Which way to start is decided by behaviour, not by reading the base class's code: the
first call starts the sandbox the ordinary way (``box.serve()``, which returns once the
server listens and raises when it never comes up); only if that fails does this helper
start the same uvicorn server the way ``Server.serve`` does, and it keeps doing so for the
rest of the process.
"""

from __future__ import annotations

import asyncio
import socket
import threading

import uvicorn

from samband.sandbox._base import Sandbox, SandboxServer

_base_starts: bool | None = None  # None: not tried yet in this process


class _PreparedServer(SandboxServer):
    """``SandboxServer`` with uvicorn's lifespan and config prepared before startup."""

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

        self._thread = threading.Thread(target=run, name=f"test-sandbox:{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(15):
            raise RuntimeError("sandbox did not start within 15 s")
        return self


def serve(box: Sandbox) -> SandboxServer:
    """Start ``box`` on 127.0.0.1 in a background thread; ``.stop()`` when done."""
    global _base_starts
    if _base_starts is None:
        try:
            server = box.serve()  # returns once uvicorn has started and listens
        except Exception:
            _base_starts = False
        else:
            _base_starts = True
            return server
    if _base_starts:
        return box.serve()
    return _PreparedServer(box.app).start()
