"""Benchmark 4: the same one-way initial load by samband and by dlt, side by side.

Both read the same PowerOffice GO sandbox Customers (same page size, same ``Fields``) and
write them into the same PostgreSQL database, each into a fresh schema of its own.
dlt is used as a library: its ``rest_api`` source with a bearer token (asked for the way
PowerOffice GO issues them), the subscription-key header, and a paginator that follows
the ``nextPageLink`` of PowerOffice's ``X-Pagination`` header; its ``postgres``
destination.  Each tool runs in a child process of its own.
"""

from __future__ import annotations

import base64
import os
import tempfile
import time
from typing import Any

import httpx

from bench.http_bench import KEYS, PAGE_SIZE, POSTGRES, PROPERTIES, run_http

FIELDS = "Id," + ",".join(dict.fromkeys(src.split(".")[0] for src, _dst in PROPERTIES))


def run_samband(po_url: str, pms_url: str, size: int, page_size: int = PAGE_SIZE) -> dict[str, Any]:
    return run_http(po_url, pms_url, size, page_size)


def sandbox_token(po_url: str) -> str:
    """A client-credentials token from the sandbox, as PowerOffice GO issues them."""
    basic = base64.b64encode(f"{KEYS['application_key']}:{KEYS['client_key']}".encode()).decode()
    answer = httpx.post(
        f"{po_url}/OAuth/Token",
        headers={
            "Authorization": f"Basic {basic}",
            "Ocp-Apim-Subscription-Key": KEYS["subscription_key"],
        },
        data={"grant_type": "client_credentials"},
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def run_dlt(po_url: str, schema: str, size: int, page_size: int = PAGE_SIZE) -> dict[str, Any]:
    """dlt's rest_api source → postgres destination (child process)."""
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import dlt
    from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
    from dlt.sources.rest_api import rest_api_source

    paginator = _pagination_header_paginator()
    with tempfile.TemporaryDirectory(prefix="samband-bench-dlt-") as folder:
        started = time.perf_counter()
        source = rest_api_source(
            {
                "client": {
                    "base_url": f"{po_url}/v2/",
                    "auth": BearerTokenAuth(sandbox_token(po_url)),
                    "headers": {"Ocp-Apim-Subscription-Key": KEYS["subscription_key"]},
                    "paginator": paginator,
                },
                "resources": [
                    {
                        "name": "customers",
                        "endpoint": {
                            "path": "Customers",
                            "params": {"PageSize": page_size, "Fields": FIELDS},
                            "data_selector": "$",
                        },
                        "primary_key": "Id",
                        "write_disposition": "append",
                    }
                ],
            }
        )
        pipeline = dlt.pipeline(
            pipeline_name="bench_poweroffice",
            pipelines_dir=folder,
            destination=dlt.destinations.postgres(credentials=_dlt_credentials()),
            dataset_name=schema,
        )
        info = pipeline.run(source)
        seconds = time.perf_counter() - started
        info.raise_on_failed_jobs()
        with pipeline.sql_client() as client:
            rows = client.execute_sql("SELECT count(*) FROM customers")
        loaded = int(rows[0][0]) if rows else 0
    if loaded != size:
        raise RuntimeError(f"dlt loaded {loaded} customers, expected {size}")
    return {"size": size, "seconds": seconds, "created": loaded}


def _pagination_header_paginator() -> Any:
    """Follows ``nextPageLink`` in PowerOffice GO's ``X-Pagination`` JSON header."""
    import json

    from dlt.sources.helpers.rest_client.paginators import BasePaginator

    class XPaginationPaginator(BasePaginator):
        def __init__(self) -> None:
            super().__init__()
            self.next_link: str | None = None

        def update_state(self, response: Any, data: Any = None) -> None:
            raw = response.headers.get("X-Pagination")
            self.next_link = json.loads(raw).get("nextPageLink") if raw else None
            self._has_next_page = bool(self.next_link)

        def update_request(self, request: Any) -> None:
            request.url = self.next_link
            request.params = {}

    return XPaginationPaginator()


def _dlt_credentials() -> str:
    """dlt insists on a password; the bench server trusts loopback, so any will do."""
    return POSTGRES.replace("+psycopg", "").replace("postgres@", "postgres:bench@")
