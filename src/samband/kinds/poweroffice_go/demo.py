"""``samband demo``: PowerOffice GO's sandbox with its limit lifted, and the variables of
the example config that point at it."""

from __future__ import annotations

from samband.plugin import DemoHooks


def _environ(url: str) -> dict[str, str]:
    return {
        "POWEROFFICE_BASE_URL": url + "/v2",
        "POWEROFFICE_APPLICATION_KEY": "sandbox-application-key",
        "POWEROFFICE_CLIENT_KEY": "sandbox-client-key",
        "POWEROFFICE_SUBSCRIPTION_KEY": "sandbox-subscription-key",
        "POWEROFFICE_RATE_LIMIT": "1000000",
    }


DEMO = DemoHooks(sandbox_options={"rate_limit": 1_000_000}, environ=_environ)
