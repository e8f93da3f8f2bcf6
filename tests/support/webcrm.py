"""Shared helpers of the WebCRM tests: a sandbox in-process and a connector on it."""

from __future__ import annotations

from typing import Any

from samband.config.model import SystemConfig
from samband.kinds.webcrm.connector import WebCrmConnector
from samband.kinds.webcrm.sandbox import SANDBOX_API_TOKEN, WebCrmSandbox
from tests.support.sandbox import serve

__all__ = ["connector", "serve"]


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
