"""Store faults: the SQLite store locked by another process, the disk full, PostgreSQL
restarted in the middle of a run.  Each ends in one clear error (exit 1, no traceback),
the store is not corrupted, and the next run goes on where this one stopped.

The world is small on purpose: two custom CRM sandboxes (``kind: rest``) in the test
process, ``crm.Customer → erp.Customer`` and ``crm.Product ← erp.Product``, synced by
``samband sync`` subprocesses.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from samband.kinds.rest.sandbox import DEFAULT_TOKEN, CustomCrmSandbox
from samband.sandbox._base import SandboxServer
from tests.support.chaos import PYTHON

CONFIG = """
store: {store}
systems:
  crm:
    kind: rest
    base_url: {crm}
    auth: bearer
    credentials: {{token: "${{CRM_TOKEN}}"}}
    entity_types:
      Customer: {{path: customers, external_ref: external_ref,
                  properties: {{name: string, org_no: string, email: string}}}}
      Product: {{path: products, external_ref: external_ref,
                 properties: {{code: string, name: string}}}}
  erp:
    kind: rest
    base_url: {erp}
    auth: bearer
    credentials: {{token: "${{CRM_TOKEN}}"}}
    entity_types:
      Customer: {{path: customers, external_ref: external_ref,
                  properties: {{name: string, org_no: string, email: string}}}}
      Product: {{path: products, external_ref: external_ref,
                 properties: {{code: string, name: string}}}}
dataflows:
  - source: crm.Customer
    target: erp.Customer
    match: [[{{from: org_no, to: org_no}}]]
    properties:
      - {{from: name, to: name, type: string}}
      - {{from: org_no, to: org_no, type: string}}
      - {{from: email, to: email, type: string}}
  - source: erp.Product
    target: crm.Product
    match: [[{{from: code, to: code}}]]
    properties:
      - {{from: code, to: code, type: string}}
      - {{from: name, to: name, type: string}}
"""


@dataclass
class Small:
    dir: Path
    crm: CustomCrmSandbox
    erp: CustomCrmSandbox
    config: Path

    def add(self, count: int, start: int = 0) -> None:
        for n in range(start, start + count):
            self.crm.insert(
                "Customer",
                {"name": f"Kunde {n} " + "x" * 150, "org_no": f"{900000000 + n}"},
            )
            self.erp.insert("Product", {"code": f"P-{n}", "name": f"Vare {n} " + "y" * 150})

    def sync(
        self, preexec: Callable[[], None] | None = None, timeout: float = 180
    ) -> tuple[int, dict[str, Any] | None, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAMBAND_KILL")}
        env["CRM_TOKEN"] = DEFAULT_TOKEN
        proc = subprocess.run(
            [PYTHON, "-m", "samband.cli", "sync", "--json", "-c", str(self.config)],
            env=env,
            cwd=str(self.dir),
            capture_output=True,
            timeout=timeout,
            preexec_fn=preexec,
        )
        out, err = proc.stdout.decode(), proc.stderr.decode()
        assert "Traceback" not in err, err
        report = json.loads(out) if out.strip() else None
        return proc.returncode, report, err

    def converged(self) -> None:
        customers = {c["org_no"]: c for c in self.crm.records("Customer").values()}
        copies = {c["org_no"]: c for c in self.erp.records("Customer").values()}
        assert len(copies) == len(self.erp.records("Customer")), "duplicate customers"
        assert set(customers) == set(copies)
        for key, customer in customers.items():
            assert copies[key]["name"] == customer["name"]
        products = {p["code"]: p["name"] for p in self.erp.records("Product").values()}
        copied = [p["code"] for p in self.crm.records("Product").values()]
        assert sorted(copied) == sorted(products), "products missing or duplicated"


def make_world(tmp_path: Path, store: str) -> Iterator[Small]:
    crm, erp = CustomCrmSandbox(), CustomCrmSandbox()
    servers: list[SandboxServer] = [crm.serve(), erp.serve()]
    config = tmp_path / "samband.yaml"
    config.write_text(CONFIG.format(store=store, crm=servers[0].url, erp=servers[1].url))
    try:
        yield Small(tmp_path, crm, erp, config)
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Small]:
    yield from make_world(tmp_path, f"sqlite:///{tmp_path}/state.db")


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def test_sqlite_store_locked_by_another_process(small: Small) -> None:
    small.add(5)
    code, report, err = small.sync()
    assert code == 0 and report is not None and report["created"] == 10, err
    small.add(5, start=5)
    # another process (this test) holds the write lock for longer than the busy timeout
    holder = sqlite3.connect(small.dir / "state.db", isolation_level=None, timeout=1)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE IF NOT EXISTS chaos_lock (n INTEGER)")
    try:
        code, report, err = small.sync()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 1, (report, err)
    message = err + " ".join((report or {}).get("messages", []))
    assert "locked" in message and "store" in message, message
    print(f"\nlocked: {message.strip()}")
    assert integrity(small.dir / "state.db") == "ok"
    code, report, err = small.sync()
    assert code == 0 and report is not None, err
    assert report["status"] == "ok", report
    small.converged()


def test_disk_full_during_a_run(small: Small, chaos_long: bool) -> None:
    small.add(3)
    code, report, err = small.sync()
    assert code == 0, err
    store = small.dir / "state.db"
    biggest = max(p.stat().st_size for p in small.dir.glob("state.db*"))
    small.add(300 if chaos_long else 120, start=3)
    limit = biggest + 16 * 1024  # a few pages of room: the run fills it up

    def disk_of_limited_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    code, report, err = small.sync(preexec=disk_of_limited_size)
    assert code == 1, (report, err)
    message = err + " ".join((report or {}).get("messages", []))
    assert "store" in message and ("full" in message or "disk" in message), message
    print(f"\ndisk full: {message.strip()}")
    assert integrity(store) == "ok"
    code, report, err = small.sync()
    assert code == 0 and report is not None and report["status"] == "ok", (report, err)
    assert integrity(store) == "ok"
    code, report, err = small.sync()
    assert report is not None and report["created"] + report["updated"] == 0, report
    small.converged()


@pytest.fixture
def restartable_schema(postgres_server: str, chaos_long: bool) -> Iterator[str]:
    """A fresh schema like ``postgres_url``, made and dropped through connections that do
    not outlive the restart (a pooled one would be cut by it)."""
    if not chaos_long:
        pytest.skip("restarts the machine's PostgreSQL: only with --chaos-long (make chaos)")
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    name = f"t_chaos_{os.getpid()}_{threading.get_ident() % 100000}"

    def execute(statement: str) -> None:
        engine = create_engine(postgres_server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with engine.connect() as conn:
                conn.execute(text(statement))
        finally:
            engine.dispose()

    execute(f'CREATE SCHEMA "{name}"')  # a generated name, not a value from outside
    sep = "&" if "?" in postgres_server else "?"
    try:
        yield f"{postgres_server}{sep}options=-csearch_path%3D{name}"
    finally:
        _wait_for_postgres(postgres_server)
        execute(f'DROP SCHEMA "{name}" CASCADE')


def test_postgresql_restarted_during_a_run(tmp_path: Path, restartable_schema: str) -> None:
    for small in make_world(tmp_path, restartable_schema):
        small.add(400)
        small.erp.faults.update(latency=0.05, latency_rate=1.0)  # a run that takes a while
        restarted = threading.Event()

        def restart(restarted: threading.Event = restarted) -> None:
            version = os.listdir("/etc/postgresql")[0]
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                check=True,
                timeout=120,
            )
            restarted.set()

        timer = threading.Timer(3.0, restart)
        timer.start()
        try:
            code, report, err = small.sync()
        finally:
            timer.join()
            _wait_for_postgres(restartable_schema)
        assert restarted.is_set()
        message = err + " ".join((report or {}).get("messages", []))
        if code != 0:
            assert "store" in message or "postgres" in message.lower(), message
        print(f"\nPostgreSQL restarted during a run: exit {code} {message.strip()}")
        small.erp.faults.update(latency=0, latency_rate=0)
        code, report, err = small.sync()
        assert code == 0 and report is not None and report["status"] == "ok", (report, err)
        code, report, err = small.sync()
        assert report is not None and report["created"] + report["updated"] == 0, report
        small.converged()


def _wait_for_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        for _ in range(60):
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                return
            except Exception:
                threading.Event().wait(1)
        raise AssertionError("PostgreSQL did not come back within a minute")
    finally:
        engine.dispose()
