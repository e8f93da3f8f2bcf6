"""Helpers of the Exact Online tests: start a sandbox in-process, and a connector to it
with tokens already issued."""

from __future__ import annotations

from pathlib import Path

import httpx

from samband.config.model import SystemConfig
from samband.kinds.exact_online.connector import ExactOnlineConnector
from samband.kinds.exact_online.sandbox import ExactOnlineSandbox
from samband.sandbox._base import SandboxServer
from samband.secrets import TokenStore
from tests.support.sandbox import serve

__all__ = ["make_connector", "read_all", "serve"]


def make_connector(
    box: ExactOnlineSandbox,
    server: SandboxServer,
    state_dir: Path,
    *,
    division: bool = True,
    transport: httpx.BaseTransport | None = None,
    **settings: object,
) -> ExactOnlineConnector:
    issued = box.issue_tokens()
    now = box.clock.time()
    TokenStore("exact", state_dir).save(
        {
            "access_token": issued["access_token"],
            "refresh_token": issued["refresh_token"],
            "expires_at": now + 600,
            "requested_at": now,
        }
    )
    config = SystemConfig(
        kind="exact-online",
        base_url=server.url,
        **({"division": box.division} if division else {}),
        **settings,
    )
    return ExactOnlineConnector(
        "exact",
        config,
        {"client_id": box.client_id, "client_secret": box.client_secret},
        state_dir=str(state_dir),
        clock=box.clock,
        http_transport=transport,
    )


def read_all(connector: ExactOnlineConnector, etype: str, cursor: str | None = None):  # type: ignore[no-untyped-def]
    pages = list(connector.read(etype, cursor))
    records = [r for page in pages for r in page.records]
    last = next((p.cursor for p in reversed(pages) if p.cursor is not None), cursor)
    return pages, records, last
