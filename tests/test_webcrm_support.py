"""Shared helpers of the WebCRM tests (no tests here).

``serve(box)`` starts a sandbox on 127.0.0.1 in a background thread.  It is
``box.serve()`` once ``SandboxServer`` prepares uvicorn's lifespan itself; with uvicorn
0.54 the base class's ``start`` calls ``Server.startup`` before ``Config.load`` and the
server never comes up, so until that is fixed this helper starts the same uvicorn server
the way ``Server.serve`` does.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading
from typing import Any

import uvicorn

from samband.config.model import SystemConfig
from samband.kinds.webcrm.connector import WebCrmConnector
from samband.kinds.webcrm.sandbox import SANDBOX_API_TOKEN, WebCrmSandbox
from samband.sandbox._base import Sandbox, SandboxServer

_BASE_STARTS = "lifespan" in inspect.getsource(SandboxServer.start).replace('lifespan="off"', "")


class _Live:
    def __init__(self, box: Sandbox) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(box.app, log_level="warning", access_log=False, lifespan="off")
        config.load()
        self._server = uvicorn.Server(config)
        self._server.lifespan = config.lifespan_class(config)
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()

            async def main() -> None:
                await self._server.startup(sockets=[sock])
                ready.set()
                await self._server.main_loop()
                await self._server.shutdown(sockets=[sock])

            loop.run_until_complete(main())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(15):
            raise RuntimeError("sandbox did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


def serve(box: Sandbox) -> Any:
    return box.serve() if _BASE_STARTS else _Live(box)


def connector(
    url: str,
    *,
    token: str = SANDBOX_API_TOKEN,
    types: dict[str, Any] | None = None,
    sleeps: list[float] | None = None,
    box: WebCrmSandbox | None = None,
    **settings: Any,
) -> WebCrmConnector:
    """A connector on the sandbox; ``sleeps`` records every back-off wait, which moves
    the sandbox clock instead of the test's time (nothing waits for real)."""
    settings.setdefault("rate_limit", 0)  # the 250/minute pacing has its own test
    config = SystemConfig(kind="webcrm", base_url=url, entity_types=types or {}, **settings)

    def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)
        if box is not None:
            box.clock.advance(seconds)

    return WebCrmConnector("webcrm", config, {"api_token": token}, sleep=sleep, overlap_seconds=5.0)
