"""Starting the CRMOffice sandbox in-process, whatever uvicorn version is installed.

``SandboxServer.start`` calls ``uvicorn.Server.startup`` directly; uvicorn 0.54 needs
``config.load()`` and ``server.lifespan`` prepared first (``Server._serve`` does that).
Until the base class does it, :func:`serve` swaps in a ``Server`` that prepares itself,
only for the moment ``box.serve()`` builds its server.  Once the base class is fixed,
``serve`` is exactly ``box.serve()``.
"""

from __future__ import annotations

import inspect
import socket
import threading
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import uvicorn

from samband.config.model import Config
from samband.connectors.crmoffice import CrmOfficeConnector
from samband.sandbox._base import Sandbox, SandboxServer

BASE_PREPARES_LIFESPAN = "lifespan_class" in inspect.getsource(SandboxServer.start)


class _PreparedServer(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if not hasattr(self, "lifespan"):
            if not self.config.loaded:
                self.config.load()
            self.lifespan = self.config.lifespan_class(self.config)
        await super().startup(sockets=sockets)


def serve(box: Sandbox, **options: Any) -> SandboxServer:
    """``box.serve()``, with uvicorn's lifespan prepared when the base class does not."""
    if BASE_PREPARES_LIFESPAN:
        return box.serve(**options)
    with mock.patch.object(uvicorn, "Server", _PreparedServer):
        return box.serve(**options)


def browser_login(config: Config, system_id: str, state_dir: Path) -> None:
    """Run ``login`` and play the browser: open the URL it prints, follow the redirects."""
    urls: list[str] = []
    printed = threading.Event()

    def echo(message: str) -> None:
        urls.extend(line for line in message.splitlines() if line.startswith("http"))
        printed.set()

    errors: list[BaseException] = []

    def run() -> None:
        try:
            CrmOfficeConnector.login(
                system_id,
                config,
                port=0,
                open_browser=False,
                echo=echo,
                state_dir=str(state_dir),
                timeout=20,
            )
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)
            printed.set()

    thread = threading.Thread(target=run)
    thread.start()
    assert printed.wait(20)
    if urls:
        # the "browser": authorize redirects to the local listener (with a code or an error)
        httpx.get(urls[0], follow_redirects=True, timeout=10)
    thread.join(20)
    assert not thread.is_alive()
    if errors:
        raise errors[0]
