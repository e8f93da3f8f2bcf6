"""A worker process of the cluster-quota tests: one PowerOffice GO connection, many calls."""

from __future__ import annotations

import os
from multiprocessing.synchronize import Event


def hammer(quota_url: str | None, base_url: str, calls: int, go: Event) -> tuple[int, int]:
    """``calls`` requests through a connector paced by the cluster quota (or by this process
    alone when ``quota_url`` is None); returns (api calls, 429s seen)."""
    if quota_url:
        os.environ["SAMBAND_QUOTA_DATABASE"] = quota_url
    else:
        os.environ.pop("SAMBAND_QUOTA_DATABASE", None)
    from samband.config.model import SystemConfig
    from samband.kinds.poweroffice_go.connector import PowerOfficeConnector
    from tests.support.poweroffice import KEYS

    config = SystemConfig.model_validate(
        {"kind": "poweroffice-go", "base_url": base_url, "rate_limit": 10}
    )
    connector = PowerOfficeConnector("po", config, KEYS)
    try:
        go.wait(120)
        for _ in range(calls):
            connector.http.request(
                "GET", "/Departments", params={"PageSize": 1}, ok=lambda r: r.status_code < 300
            )
        return connector.stats.api_calls, connector.stats.throttled
    finally:
        connector.close()
