"""``samband demo``: WebCRM's sandbox with its limit lifted, and the example's variables."""

from __future__ import annotations

from samband.plugin import DemoHooks


def _environ(url: str) -> dict[str, str]:
    from samband.kinds.webcrm.sandbox import SANDBOX_API_TOKEN

    return {
        "WEBCRM_BASE_URL": url,
        "WEBCRM_API_TOKEN": SANDBOX_API_TOKEN,
        "WEBCRM_RATE_LIMIT": "0",
    }


DEMO = DemoHooks(sandbox_options={"rate_limit": 1_000_000}, environ=_environ)
