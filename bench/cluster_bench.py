"""Benchmark 8: what running past one machine costs — the shared token bucket per API call
(:mod:`samband.quota`), and the job queue's own overhead per job (procrastinate, when it is
installed: the tenants' queue brings it).

Each runs in a child process (:mod:`bench.worker`) against PostgreSQL, in a schema of its
own that is dropped afterwards.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bench.http_bench import POSTGRES
from samband.connectors._http import RateLimiter
from samband.quota import connection_key
from samband.quota.bucket import QuotaDatabase


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A PostgreSQL URL (SQLAlchemy form) whose search_path is a new schema."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def _per_call_us(work: Any, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        work()
    return (time.perf_counter() - started) / calls * 1e6


def run_quota(calls: int, workers: int = 4) -> dict[str, Any]:
    """Microseconds per call: this process's limiter, the shared bucket alone, and the
    bucket with ``workers`` connections taking slots of one row at once."""
    local = RateLimiter(10**9, 1.0)
    with fresh_schema() as url:
        round_trip = _round_trip_us(url, calls)
        key = connection_key("bench", "account")
        database = QuotaDatabase(url)
        try:
            _per_call_us(lambda: database.acquire(key, 1e-9), 100)  # connect, warm up
            bucket = _per_call_us(lambda: database.acquire(key, 1e-9), calls)
        finally:
            database.close()
        contended = _contended_us(url, key, calls // workers, workers)
    return {
        "local_us": _per_call_us(local.acquire, calls),
        "round_trip_us": round_trip,
        "bucket_us": bucket,
        "contended_us": contended,
        "workers": workers,
    }


def _round_trip_us(url: str, calls: int) -> float:
    """``SELECT 1`` on one connection: what any statement costs on this machine."""
    import psycopg

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return _per_call_us(lambda: conn.execute("SELECT 1").fetchone(), calls)


def _contended_us(url: str, key: str, calls: int, workers: int) -> float:
    """Each thread has its own connection (as a process would); the wall time of all the
    calls over their number: what one call costs the cluster when they collide."""
    databases = [QuotaDatabase(url) for _ in range(workers)]
    for database in databases:
        database.acquire(key, 1e-9)
    go = threading.Barrier(workers + 1)

    def hammer(database: QuotaDatabase) -> None:
        go.wait()
        for _ in range(calls):
            database.acquire(key, 1e-9)

    threads = [threading.Thread(target=hammer, args=(db,)) for db in databases]
    for thread in threads:
        thread.start()
    go.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for database in databases:
        database.close()
    return elapsed / (calls * workers) * 1e6


def run_queue(jobs: int) -> dict[str, Any]:
    """Milliseconds per job of procrastinate itself: defer (with the per-tenant ``lock``
    and ``queueing_lock`` a tenant's run has) and run a job that does nothing."""
    try:
        import procrastinate
    except ImportError:
        return {"skipped": "procrastinate is not installed (the tenants' job queue brings it)"}
    with fresh_schema() as url:
        parsed = make_url(url).set(drivername="postgresql")
        conninfo = parsed.render_as_string(hide_password=False)
        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))

        @app.task(name="noop")
        async def noop(tenant: int) -> None:
            return None

        async def measure() -> dict[str, Any]:
            async with app.open_async():
                await app.schema_manager.apply_schema_async()
                started = time.perf_counter()
                for number in range(jobs):
                    tenant = f"tenant-{number}"
                    await noop.configure(lock=tenant, queueing_lock=tenant).defer_async(
                        tenant=number
                    )
                deferred = time.perf_counter()
                await app.run_worker_async(
                    wait=False,
                    concurrency=1,
                    listen_notify=False,
                    install_signal_handlers=False,
                )
                ran = time.perf_counter()
            return {
                "defer_ms": (deferred - started) / jobs * 1e3,
                "run_ms": (ran - deferred) / jobs * 1e3,
                "version": procrastinate.__version__,
            }

        return asyncio.run(measure())
