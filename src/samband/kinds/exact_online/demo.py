"""``samband demo``: Exact Online's sandbox with its limits lifted, the example's
variables, and a token pair stored as ``samband auth`` would store it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from samband.plugin import DemoHooks


def _environ(url: str) -> dict[str, str]:
    return {
        "EXACT_BASE_URL": url,
        "EXACT_CLIENT_ID": "samband-sandbox",
        "EXACT_CLIENT_SECRET": "sandbox-secret",
    }


def _login(
    system_id: str, config: Any, box: Any, state_dir: Path, environ: Mapping[str, str]
) -> None:
    from samband.secrets import TokenStore

    issued = box.issue_tokens()
    now = box.clock.time()
    TokenStore(system_id, state_dir).save(
        {
            "access_token": issued["access_token"],
            "refresh_token": issued["refresh_token"],
            "expires_at": now + 600,
            "requested_at": now,
        }
    )


DEMO = DemoHooks(
    sandbox_options={"minutely_limit": 1_000_000, "daily_limit": 1_000_000},
    environ=_environ,
    login=_login,
)
