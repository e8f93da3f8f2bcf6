"""``samband demo``: the custom CRM's sandbox and the example's variables."""

from __future__ import annotations

from samband.plugin import DemoHooks


def _environ(url: str) -> dict[str, str]:
    return {"CUSTOMCRM_BASE_URL": url, "CUSTOMCRM_TOKEN": "sandbox-token"}


DEMO = DemoHooks(environ=_environ)
