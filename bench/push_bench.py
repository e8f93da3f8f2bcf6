"""Benchmark 6: edit-to-arrival latency through a webhook (``samband serve``'s receivers).

In a child process: the Exact Online sandbox (``size`` accounts) and the custom CRM
sandbox, each synced with a memory PMS by a ``Service`` served over HTTP on loopback, with
the schedule at an hour so only the push can bring an edit over.  Each edit is made in the
sandbox, which POSTs its signed webhook; the latency is the time until the edited value is
in the PMS.  Edits are spaced by more than the service's push gap (one user editing), and
the first run after the subscription is left out (it reads the seed).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

EXACT = """\
store: sqlite:///state.db
systems:
  exact:
    kind: exact-online
    base_url: {url}
    division: {division}
    credentials:
      client_id: ${{EXACT_CLIENT_ID}}
      client_secret: ${{EXACT_CLIENT_SECRET}}
      webhook_secret: ${{EXACT_WEBHOOK_SECRET}}
  pms:
    kind: memory
    dataset: {dataset}
    entity_types:
      Customer:
        external_ref: ext
        properties: {{name: {{type: string}}, email: {{type: string}}, ext: {{type: string}}}}
dataflows:
  - source: exact.Accounts
    target: pms.Customer
    match: [[{{from: Email, to: email, normalize: email}}]]
    properties:
      - {{from: Name, to: name, type: string}}
      - {{from: Email, to: email, type: string}}
"""

REST = """\
store: sqlite:///state.db
systems:
  crm:
    kind: rest
    base_url: {url}
    auth: bearer
    credentials: {{token: "${{CRM_TOKEN}}", webhook_secret: "${{CRM_WEBHOOK_SECRET}}"}}
    entity_types:
      Customer:
        path: customers
        external_ref: external_ref
        properties: {{name: string, email: string}}
  pms:
    kind: memory
    dataset: {dataset}
    entity_types:
      Customer:
        external_ref: ext
        properties: {{name: {{type: string}}, email: {{type: string}}, ext: {{type: string}}}}
dataflows:
  - source: crm.Customer
    target: pms.Customer
    match: [[{{from: email, to: email, normalize: email}}]]
    properties:
      - {{from: name, to: name, type: string}}
      - {{from: email, to: email, type: string}}
"""


def _arrival(pms: Any, name: str, started: float, timeout: float = 30.0) -> float:
    """Seconds from ``started`` until a PMS customer is called ``name`` (polled every
    millisecond)."""
    while time.perf_counter() - started < timeout:
        if any(r.get("name") == name for r in pms.records("Customer").values()):
            return time.perf_counter() - started
        time.sleep(0.001)
    raise TimeoutError(f"{name!r} did not arrive within {timeout} s")


def _figures(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return {
        "edits": len(ordered),
        "p50": statistics.median(ordered),
        "p95": p95,
        "max": ordered[-1],
    }


def _measure(edit: Any, pms: Any, edits: int) -> list[float]:
    from samband.service.service import PUSH_GAP

    latencies = []
    for number in range(edits):
        time.sleep(PUSH_GAP * 1.2)  # one user editing: not a stream (see the gap)
        name = f"Edited {number} {uuid.uuid4().hex[:6]}"
        started = time.perf_counter()
        edit(name)
        latencies.append(_arrival(pms, name, started))
    return latencies


def run_push(edits: int, size: int) -> dict[str, Any]:
    from cryptography.fernet import Fernet

    from samband.kinds.exact_online.sandbox import ExactOnlineSandbox
    from samband.kinds.memory.connector import dataset
    from samband.kinds.rest.sandbox import DEFAULT_TOKEN, CustomCrmSandbox
    from samband.sandbox._base import SandboxServer
    from samband.secrets import TokenStore
    from samband.service import Service, create_app

    os.environ.setdefault("SAMBAND_TOKEN_KEY", Fernet.generate_key().decode())
    result: dict[str, Any] = {"size": size}
    with tempfile.TemporaryDirectory(prefix="samband-bench-push-") as folder:
        # -- Exact Online ------------------------------------------------------------------
        box = ExactOnlineSandbox(minutely_limit=1_000_000, daily_limit=1_000_000)
        for i in range(size):
            box.insert("crm/Accounts", {"Name": f"Account {i}", "Email": f"a{i}@example.nl"})
        exact = box.serve()
        root = Path(folder) / "exact"
        root.mkdir()
        name = f"pms-{uuid.uuid4().hex[:8]}"
        (root / "samband.yaml").write_text(
            EXACT.format(url=exact.url, division=box.division, dataset=name)
        )
        issued = box.issue_tokens()
        now = box.clock.time()
        TokenStore("exact", root / ".samband").save(
            {
                "access_token": issued["access_token"],
                "refresh_token": issued["refresh_token"],
                "expires_at": now + 3600,
                "requested_at": now,
            }
        )
        environ = {
            "EXACT_CLIENT_ID": box.client_id,
            "EXACT_CLIENT_SECRET": box.client_secret,
            "EXACT_WEBHOOK_SECRET": box.webhook_secret,
        }
        service = Service(root / "samband.yaml", every=3600, environ=environ)
        app = SandboxServer(create_app(service, manage_service=False)).start()
        service.start()
        try:
            assert service.scheduler.wait_runs(1, 300), "the first run did not finish"
            service.subscribe(app.url)
            key = next(iter(box.tables["crm/Accounts"]))
            pms = dataset(name)
            latencies = _measure(
                lambda value: box.edit("crm/Accounts", key, {"Name": value}), pms, edits
            )
            result["exact"] = _figures(latencies)
            result["exact"]["runs"] = service.scheduler.state.runs
        finally:
            service.stop(60)
            app.stop()
            exact.stop()
        # -- the REST contract -----------------------------------------------------------
        crm = CustomCrmSandbox()
        for i in range(size):
            crm.insert("Customer", {"name": f"Customer {i}", "email": f"c{i}@example.no"})
        served = crm.serve()
        root = Path(folder) / "rest"
        root.mkdir()
        name = f"pms-{uuid.uuid4().hex[:8]}"
        (root / "samband.yaml").write_text(REST.format(url=served.url, dataset=name))
        secret = "bench-webhook-secret"
        environ = {"CRM_TOKEN": DEFAULT_TOKEN, "CRM_WEBHOOK_SECRET": secret}
        service = Service(root / "samband.yaml", every=3600, environ=environ)
        app = SandboxServer(create_app(service, manage_service=False)).start()
        service.start()
        try:
            assert service.scheduler.wait_runs(1, 300), "the first run did not finish"
            crm.webhook_url, crm.webhook_secret = f"{app.url}/hooks/crm", secret
            pms = dataset(name)
            latencies = _measure(lambda value: crm.edit("Customer", 1, {"name": value}), pms, edits)
            result["rest"] = _figures(latencies)
        finally:
            service.stop(60)
            app.stop()
            served.stop()
    return result
