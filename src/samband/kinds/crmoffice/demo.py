"""``samband demo``: CRMOffice's sandbox unpaced, the example's variables, and a login
without a browser (the sandbox approves at once)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from samband.plugin import DemoHooks


def _environ(url: str) -> dict[str, str]:
    return {
        "CRMOFFICE_BASE_URL": url,
        "CRMOFFICE_AUTH_URL": url,
        "CRMOFFICE_CLIENT_ID": "sandbox-client",
        "CRMOFFICE_CLIENT_SECRET": "sandbox-secret",
        "CRMOFFICE_RATE_LIMIT": "0",
    }


def _login(
    system_id: str, config: Any, box: Any, state_dir: Path, environ: Mapping[str, str]
) -> None:
    from samband.kinds.crmoffice.connector import CrmOfficeConnector

    CrmOfficeConnector.sandbox_login(
        system_id, config, state_dir=str(state_dir), environ=dict(environ)
    )


DEMO = DemoHooks(sandbox_options={"rate_limit": None}, environ=_environ, login=_login)
