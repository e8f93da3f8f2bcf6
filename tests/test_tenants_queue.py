"""The queue's jobs on procrastinate's in-memory connector: tenants' runs, a tenant whose
config is broken (its job fails with the reason, the others go on), a tenant removed
while its job waits (dropped), and the locks; on PostgreSQL: workers starting at once,
and a dead worker's job given back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from procrastinate import App
from procrastinate.jobs import Status
from procrastinate.testing import InMemoryConnector

from samband.queue import jobs
from samband.queue.connect import conninfo, ensure_schema
from samband.queue.jobs import Turn
from samband.queue.runlog import MemoryRunLog
from samband.queue.tasks import (
    SCHEDULED,
    Settings,
    build_app,
    defer_resync,
    defer_scheduled,
    defer_targeted,
)
from samband.queue.worker import schedule_missing, take_back_stalled
from samband.tenants import Registry
from tests.support import tenants as t


def _tenants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *names: str, **make: Any) -> Path:
    registry = tmp_path / "tenants"
    for name in names:
        for key, value in t.make_tenant(registry, name, **make).items():
            monkeypatch.setenv(key, value)
    return registry


async def _work(app: App, registry: Path, runs: MemoryRunLog, turn: Turn = Turn()) -> None:
    """Run every job that is due, then return."""
    await app.run_worker_async(
        wait=False,
        install_signal_handlers=False,
        additional_context={"samband": Settings(registry=registry, runs=runs, turn=turn)},
    )


def _jobs(app: App) -> list[dict[str, Any]]:
    connector = app.connector
    assert isinstance(connector, InMemoryConnector)
    return list(connector.jobs.values())


def test_a_broken_tenant_fails_alone_and_a_removed_one_is_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = _tenants(tmp_path, monkeypatch, "acme", "beta", "broken", "leaving")
    (registry / "broken" / "samband.yaml").write_text("systems: [not, a, mapping\n")
    app = build_app(InMemoryConnector())
    runs = MemoryRunLog()

    async def scenario() -> list[str]:
        async with app.open_async():
            queued = await schedule_missing(app, Registry(registry))
            Registry(registry).remove("leaving")  # while its job waits
            await _work(app, registry, runs)
            return queued

    assert asyncio.run(scenario()) == ["acme", "beta", "broken", "leaving"]
    outcome = {row["tenant"]: row for row in runs.rows}
    assert outcome["acme"]["status"] == outcome["beta"]["status"] == "ok"
    assert t.converged(registry, "acme") and t.converged(registry, "beta")
    assert outcome["broken"]["status"] == "failed"
    assert "broken/samband.yaml" in outcome["broken"]["message"]
    assert outcome["leaving"]["status"] == "gone"
    assert "no longer in the registry" in outcome["leaving"]["message"]
    by_status = {(job["args"]["tenant"], job["status"]) for job in _jobs(app)}
    assert ("broken", "failed") in by_status and ("leaving", "succeeded") in by_status
    # each tenant still there has its next scheduled run waiting, the removed one none
    waiting = {
        job["args"]["tenant"]
        for job in _jobs(app)
        if job["status"] == "todo" and job["task_name"] == SCHEDULED
    }
    assert waiting == {"acme", "beta", "broken"}


def test_one_scheduled_run_waits_per_tenant_and_jobs_of_a_tenant_share_its_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = _tenants(tmp_path, monkeypatch, "acme")
    app = build_app(InMemoryConnector())

    async def scenario() -> list[bool]:
        async with app.open_async():
            return [
                await defer_scheduled(app, "acme"),
                await defer_scheduled(app, "acme"),
                await defer_targeted(app, "acme", ["companies"]),
                await defer_targeted(app, "acme", ["companies"]),
                await defer_resync(app, "acme", ["crm.Company"]),
                bool(await schedule_missing(app, Registry(registry))),
            ]

    assert asyncio.run(scenario()) == [True, False, True, False, True, False]
    assert {job["lock"] for job in _jobs(app)} == {"tenant:acme"}
    assert len(_jobs(app)) == 3


def test_a_targeted_run_names_the_tenants_dataflows_and_a_resync_reads_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = _tenants(tmp_path, monkeypatch, "acme")
    app = build_app(InMemoryConnector())
    runs = MemoryRunLog()

    async def scenario() -> None:
        async with app.open_async():
            await defer_targeted(app, "acme", ["nope"])
            await _work(app, registry, runs)
            await defer_targeted(app, "acme", ["companies"])
            await _work(app, registry, runs)
            await defer_resync(app, "acme", ["crm.Company"])
            await _work(app, registry, runs)

    asyncio.run(scenario())
    assert [(r["task"], r["status"]) for r in runs.rows] == [
        ("targeted", "failed"),
        ("targeted", "ok"),
        ("resync", "ok"),
    ]
    assert "no dataflow 'nope'" in runs.rows[0]["message"]
    assert t.converged(registry, "acme")


def test_a_run_that_yields_is_no_failure_and_goes_on_behind_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = _tenants(tmp_path, monkeypatch, "big", records=1200, every="1h")
    _tenants(tmp_path, monkeypatch, "small", every="1h")
    app = build_app(InMemoryConnector())
    runs = MemoryRunLog()

    async def scenario() -> None:
        async with app.open_async():
            assert await schedule_missing(app, Registry(registry)) == ["big", "small"]
            await _work(app, registry, runs, Turn(chunks=1))  # chunks of 500

    asyncio.run(scenario())
    assert [(r["tenant"], r["status"]) for r in runs.rows] == [
        ("big", "yielded"),
        ("small", "ok"),
        ("big", "yielded"),
        ("big", "ok"),
    ]
    assert "700 record(s) stay queued" in runs.rows[0]["message"]
    assert t.converged(registry, "big") and t.duplicates(registry, "big") == []
    assert {job["status"] for job in _jobs(app)} == {"succeeded", "todo"}
    # each tenant's next scheduled run waits, an hour from now
    assert sorted(j["args"]["tenant"] for j in _jobs(app) if j["status"] == "todo") == [
        "big",
        "small",
    ]


def test_a_tenants_own_turn_overrides_the_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = _tenants(tmp_path, monkeypatch, "big", records=1200)
    (registry / "big" / "tenant.yaml").write_text("every: 1h\nturn: 1ms\n")
    app = build_app(InMemoryConnector())
    runs = MemoryRunLog()

    async def scenario() -> None:
        async with app.open_async():
            await defer_scheduled(app, "big")
            await _work(app, registry, runs)  # the worker's turn: no limit

    asyncio.run(scenario())
    assert [r["status"] for r in runs.rows] == ["yielded", "yielded", "ok"]
    (registry / "big" / "tenant.yaml").write_text("turn: soon\n")
    assert jobs.run_job(registry, "big").status == "failed"


@pytest.mark.parametrize("kind", ["targeted", "resync"])
def test_a_pushed_run_or_resync_that_yields_goes_on_as_the_scheduled_run_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """The tenant's scheduled run, due in an hour, is replaced by one due now: it covers
    every dataflow, and does not read the resync's types from the start again."""
    registry = _tenants(tmp_path, monkeypatch, "big", records=1200, every="1h")
    app = build_app(InMemoryConnector())
    runs = MemoryRunLog()

    async def scenario() -> None:
        async with app.open_async():
            assert await defer_scheduled(app, "big", after=3600)
            if kind == "targeted":
                await defer_targeted(app, "big", ["companies"])
            else:
                await defer_resync(app, "big", ["crm.Company"])
            await _work(app, registry, runs, Turn(chunks=1))

    asyncio.run(scenario())
    assert [(r["task"], r["status"]) for r in runs.rows] == [
        (kind, "yielded"),
        ("scheduled", "yielded"),
        ("scheduled", "ok"),
    ]
    assert t.converged(registry, "big") and t.duplicates(registry, "big") == []
    assert [j["task_name"] for j in _jobs(app) if j["status"] == "todo"] == [SCHEDULED]


# -- on PostgreSQL ---------------------------------------------------------------------


@pytest.mark.postgres
def test_workers_starting_at_once_make_the_queue_once(postgres_url: str) -> None:
    async def start_together() -> list[bool]:
        return list(
            await asyncio.gather(
                *(asyncio.to_thread(ensure_schema, postgres_url) for _ in range(4))
            )
        )

    made = asyncio.run(start_together())
    assert sorted(made) == [False, False, False, True]


@pytest.mark.postgres
def test_a_dead_workers_job_is_queued_again_unless_the_same_waits(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker takes two tenants' pushed runs and dies (its heartbeat stops).  Meanwhile
    another run of one of them was pushed: that one does the work, the other is queued
    again."""
    from samband.queue.connect import connector
    from samband.queue.fence import Fences

    ensure_schema(postgres_url)
    fences = Fences.of(postgres_url)
    app = build_app(connector(postgres_url, min_size=1, max_size=2))

    async def scenario() -> tuple[int, int]:
        async with app.open_async():
            manager = app.job_manager
            await defer_targeted(app, "acme", [])
            await defer_targeted(app, "beta", [])
            dead = await manager.register_worker()
            taken = [await manager.fetch_job(queues=None, worker_id=dead) for _ in range(2)]
            assert all(taken)
            await defer_targeted(app, "acme", [])  # pushed while acme's first one runs
            assert await take_back_stalled(app, fences, stalled_after=60) == 0  # still alive
            with psycopg.connect(conninfo(postgres_url), autocommit=True) as conn:
                conn.execute(
                    "UPDATE procrastinate_workers SET last_heartbeat = %s WHERE id = %s",
                    (datetime.now(UTC) - timedelta(minutes=5), dead),
                )
            again = await take_back_stalled(app, fences, stalled_after=60)
            return again, await take_back_stalled(app, fences, stalled_after=60)

    assert asyncio.run(scenario()) == (1, 0)
    with psycopg.connect(conninfo(postgres_url)) as conn:
        rows = conn.execute(
            "SELECT args->>'tenant', status, attempts FROM procrastinate_jobs ORDER BY id"
        ).fetchall()
    assert rows == [
        ("acme", Status.FAILED.value, 1),
        ("beta", Status.TODO.value, 1),
        ("acme", Status.TODO.value, 0),
    ]


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["targeted", "resync"])
def test_a_push_does_not_wait_for_the_scheduled_run_due_later(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """On PostgreSQL a lock's jobs are taken in the order queued, also behind one not due
    yet: the scheduled run due in an hour must not hold the push back that long."""
    from samband.queue.connect import connector

    registry = _tenants(tmp_path, monkeypatch, "acme", every="1h")
    ensure_schema(postgres_url)
    app = build_app(connector(postgres_url, min_size=1, max_size=2))
    runs = MemoryRunLog()

    async def scenario() -> list[Any]:
        async with app.open_async():
            assert await defer_scheduled(app, "acme", after=3600)
            (due,) = [j.scheduled_at for j in await app.job_manager.list_jobs_async()]
            if kind == "targeted":
                await defer_targeted(app, "acme", ["companies"])
            else:
                await defer_resync(app, "acme", ["crm.Company"])
            await _work(app, registry, runs)
            waiting = await app.job_manager.list_jobs_async(status="todo")
            return [due, [(j.task_name, j.scheduled_at) for j in waiting]]

    due, waiting = asyncio.run(scenario())
    assert [(r["task"], r["status"]) for r in runs.rows] == [(kind, "ok")]
    assert waiting == [(SCHEDULED, due)]  # still due in an hour, once
    assert t.converged(registry, "acme")
