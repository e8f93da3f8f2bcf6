"""One log line per request served (info on ``samband.service.http``): method, path,
status, milliseconds, and who asked.  The query string is left out (a search holds a
name or an e-mail); the probes and ``/metrics`` log at debug (they come every few
seconds)."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("samband.service.http")
QUIET = ("/healthz", "/readyz", "/metrics")


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = scope.get("path", "")
            level = logging.DEBUG if path in QUIET else logging.INFO
            if log.isEnabledFor(level):
                ms = round((time.perf_counter() - started) * 1000, 1)
                user = (scope.get("session") or {}).get("user")
                fields = {
                    "event": "request",
                    "method": scope.get("method"),
                    "path": path,
                    "status": status["code"],
                    "ms": ms,
                    "user": user,
                }
                log.log(
                    level,
                    "%s %s %s %.1f ms",
                    scope.get("method"),
                    path,
                    status["code"],
                    ms,
                    extra={"fields": fields},
                )
