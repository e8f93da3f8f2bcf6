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
from typing import Any
from unittest import mock

import uvicorn

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
