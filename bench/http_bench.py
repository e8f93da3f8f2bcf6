"""Benchmark 2: PowerOffice GO sandbox Customers → the custom PMS on PostgreSQL, over HTTP.

The sandbox runs in the bench's main process (uvicorn in a thread); samband runs in a
child (:mod:`bench.worker`) with the ordinary ``poweroffice-go`` and ``sql`` connectors
built from a config, so its peak RSS and time are samband's alone.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from samband.config import parse_config
from samband.engine.run import Engine

POSTGRES = os.environ.get(
    "SAMBAND_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PAGE_SIZE = 1000
KEYS = {
    "application_key": "sandbox-application-key",
    "client_key": "sandbox-client-key",
    "subscription_key": "sandbox-subscription-key",
}
PROPERTIES = [
    ("Name", "name"),
    ("OrganizationNumber", "org_no"),
    ("EmailAddress", "email"),
    ("PhoneNumber", "phone"),
    ("MailAddress.City", "city"),
]


def config_yaml(po_url: str, pms_url: str, store_url: str, page_size: int = PAGE_SIZE) -> str:
    """PowerOffice GO Customers → PMS customer, one way, nothing merged (an initial load)."""
    config = {
        "store": store_url,
        "systems": {
            "poweroffice": {
                "kind": "poweroffice-go",
                "base_url": f"{po_url}/v2",
                "page_size": page_size,
                "credentials": KEYS,
            },
            "pms": {
                "kind": "sql",
                "url": pms_url,
                "entity_types": {
                    "Customer": {
                        "table": "customer",
                        "id": "id",
                        "updated": "updated_at",
                        "external_ref": "external_ref",
                    }
                },
            },
        },
        "dataflows": [
            {
                "id": "customers",
                "source": "poweroffice.Customers",
                "target": "pms.Customer",
                "properties": [
                    {"from": src, "to": dst, "type": "string", "direction": "forward"}
                    for src, dst in PROPERTIES
                ],
            }
        ],
    }
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


@contextmanager
def pg_schema(prefix: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new schema, dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"bench_{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        sep = "&" if "?" in POSTGRES else "?"
        yield f"{POSTGRES}{sep}options=-csearch_path%3D{name}"
    finally:
        admin.dispose()  # a fresh connection: the database may have restarted meanwhile
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        finally:
            admin.dispose()


def postgres_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(POSTGRES)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"PostgreSQL at 127.0.0.1:5432/test is not reachable ({type(exc).__name__})"
    return None


def run_http(po_url: str, pms_url: str, size: int, page_size: int = PAGE_SIZE) -> dict[str, Any]:
    """One initial sync (child process); the PMS schema must exist and be empty."""
    with tempfile.TemporaryDirectory(prefix="samband-bench-") as folder:
        store_url = f"sqlite:///{Path(folder) / 'state.db'}"
        config = parse_config(config_yaml(po_url, pms_url, store_url, page_size)).config
        engine = Engine(config, store_url=store_url, state_dir=folder)
        try:
            started = time.perf_counter()
            report = engine.sync()
            seconds = time.perf_counter() - started
            data = report.to_dict()
            po = engine.connector("poweroffice")
            throttled = getattr(po.stats, "throttled", 0)
        finally:
            engine.close()
    if data["status"] != "ok":
        raise RuntimeError(f"the HTTP benchmark run failed: {data['messages']}")
    return {
        "size": size,
        "seconds": seconds,
        "created": data["created"],
        "errors": data["errors"],
        "api_calls": data["api_calls_by_system"].get("poweroffice", 0),
        "pages_goal": math.ceil(size / page_size),
        "throttled": throttled,
    }
