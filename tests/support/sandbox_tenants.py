"""Tenants on the sandboxes: each its own CRM (SQLite, edited by the test, as in
:mod:`tests.support.tenants`) synced to its own client company in PowerOffice GO.

One PowerOffice GO sandbox serves every tenant over HTTP, from a thread of the test's
process (outside the workers).  As for an accounting firm in PowerOffice GO, the
integration has one application key and one subscription key, and each client company
its own client key and its own data; the subscription key's limit of 10 requests a second
holds for all of them together, and the sandbox answers 429 to the 11th call in any
second.  Each tenant's keys are in its own environment (``SAMBAND_TENANT_<NAME>__...``).

An ASGI layer in front of the sandbox counts every answer by status: what the tests take
for "0 answers 429" is the sandbox's own count, not what the workers say of themselves.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samband.kinds.poweroffice_go.sandbox import PowerOfficeSandbox
from samband.quota import connection_key
from samband.quota.bucket import QuotaDatabase
from samband.sandbox._base import SandboxServer
from samband.tenants.registry import env_prefix
from tests.support import tenants as t

CUSTOMERS = "Customers"


@dataclass
class Answers:
    """ASGI layer counting the answers of the app behind it by status."""

    app: Any
    statuses: Counter[int] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    #: (arrival on this process's monotonic clock, status, method and path) of each call
    seen: list[tuple[float, int, str]] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrived = time.monotonic()

        async def counted(message: Any) -> None:
            if message["type"] == "http.response.start":
                with self._lock:
                    self.statuses[message["status"]] += 1
                    self.seen.append(
                        (arrived, message["status"], f"{scope['method']} {scope['path']}")
                    )
            await send(message)

        await self.app(scope, receive, counted)


class PowerOfficeTenants:
    """Every tenant's PowerOffice GO client company, in one sandbox served over HTTP."""

    def __init__(self, rate_limit: int = 10) -> None:
        # a subscription key of this test alone: its quota bucket is nobody else's
        self.application_key = "integrator-" + secrets.token_hex(6)
        self.subscription_key = "subscription-" + secrets.token_hex(8)
        self.box = PowerOfficeSandbox(
            application_key=self.application_key,
            client_key="unused-" + secrets.token_hex(6),
            subscription_key=self.subscription_key,
            rate_limit=rate_limit,
        )
        self.answers = Answers(self.box.app)
        self.server = SandboxServer(self.answers).start()
        self.client_keys: dict[str, str] = {}

    @property
    def url(self) -> str:
        return self.server.url

    def close(self) -> None:
        self.server.stop()

    def make(self, registry: Path, name: str, records: int, every: str) -> dict[str, str]:
        """Tenant ``name``: its CRM, its client company, its config; its environment."""
        crm_url = t.make_crm(registry, name, records)
        client_key = self.client_keys[name] = f"{name}-" + secrets.token_hex(8)
        self.box.add_client(client_key)
        config = {
            # the edits of a test reach most of a tenant's few records between two runs
            "defaults": {"max_change_share": 1.0},
            "systems": {
                "crm": t.crm_system(),
                "poweroffice": {
                    "kind": "poweroffice-go",
                    "base_url": "${POWEROFFICE_BASE_URL}",
                    # no rate_limit: the API's own 10 a second, shared by every worker
                    # through the quota database (SAMBAND_QUOTA_DATABASE)
                    "credentials": {
                        "application_key": "${POWEROFFICE_APPLICATION_KEY}",
                        "client_key": "${POWEROFFICE_CLIENT_KEY}",
                        "subscription_key": "${POWEROFFICE_SUBSCRIPTION_KEY}",
                    },
                },
            },
            "dataflows": [
                {
                    "id": "companies",
                    "source": "crm.Company",
                    "target": f"poweroffice.{CUSTOMERS}",
                    "match": [[{"from": "org", "to": "OrganizationNumber", "normalize": "digits"}]],
                    "properties": [
                        {"from": "name", "to": "Name", "type": "string"},
                        {"from": "org", "to": "OrganizationNumber", "type": "string"},
                    ],
                }
            ],
        }
        t.write_tenant(registry, name, config, every)
        prefix = env_prefix(name)
        return {
            f"{prefix}CRM_URL": crm_url,
            f"{prefix}POWEROFFICE_BASE_URL": f"{self.url}/v2",
            f"{prefix}POWEROFFICE_APPLICATION_KEY": self.application_key,
            f"{prefix}POWEROFFICE_CLIENT_KEY": client_key,
            f"{prefix}POWEROFFICE_SUBSCRIPTION_KEY": self.subscription_key,
        }

    def customers(self, name: str) -> list[dict[str, Any]]:
        with self.box.lock:
            return [dict(r) for r in self.box.records(CUSTOMERS, self.client_keys[name]).values()]

    def duplicates(self, registry: Path, name: str) -> list[str]:
        """Org numbers, or external references, that more than one customer carries; org
        numbers that more than one CRM company carries."""
        customers = self.customers(name)
        with sqlite3.connect(t.crm_file(registry, name)) as db:
            orgs = Counter(org for (org,) in db.execute("SELECT org FROM company"))
        found = [f"CRM org {org}" for org, n in sorted(orgs.items()) if n > 1]
        for key in ("OrganizationNumber", "ExternalImportReference"):
            counts = Counter(c[key] for c in customers if c[key])
            found += [f"{key} {value}" for value, n in sorted(counts.items()) if n > 1]
        return found

    def converged(self, registry: Path, name: str) -> bool:
        customers = {c["OrganizationNumber"]: c["Name"] for c in self.customers(name)}
        return customers == t.crm_names(registry, name) and not self.duplicates(registry, name)

    def throttled(self) -> int:
        """How many answers were 429, by the sandbox's count (its limit or a fault)."""
        return self.answers.statuses[429]

    def around_429s(self) -> list[str]:
        """The calls of the second before each 429 (seconds from the first of them)."""
        seen = sorted(self.answers.seen)
        found = []
        for moment, status, _what in seen:
            if status == 429:
                window = [s for s in seen if moment - 1.2 <= s[0] <= moment]
                found.append("; ".join(f"{s[0] - window[0][0]:.3f} {s[1]} {s[2]}" for s in window))
        return found

    def calls(self) -> int:
        return sum(self.answers.statuses.values())

    def quota_grants(self, quota_url: str) -> int:
        """How many slots the workers took from the subscription key's shared bucket."""
        digest = hashlib.sha256(self.subscription_key.encode()).hexdigest()[:16]
        database = QuotaDatabase(quota_url)
        try:
            state = database.state(connection_key("poweroffice-go", digest))
        finally:
            database.close()
        return 0 if state is None else state.grants
