"""Fences: a worker counted dead because its heartbeat is late (a loaded machine, a process
frozen by SIGSTOP) keeps its tenant's job, and nobody runs that tenant beside it; a worker
that is really gone (its connections closed) has its job taken back.  And a worker stopped
past its --grace leaves its work queued again."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from procrastinate.jobs import Status

from samband.queue.connect import connector, conninfo, ensure_schema
from samband.queue.fence import Fences
from samband.queue.manager import FencedJobManager
from samband.queue.tasks import build_app, defer_targeted
from samband.queue.worker import take_back_stalled
from tests.support import tenants as t
from tests.support.cluster import DEAD_AFTER, Cluster, overlaps, small_cluster, wait_for

pytestmark = pytest.mark.postgres

BIG = 8000  # records: a first run of a few seconds, in chunks of 500


def _silence(url: str, *workers: int) -> None:
    """Make ``workers`` look silent for five minutes."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(
            "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '5 minutes' "
            "WHERE id = ANY(%s)",
            (list(workers),),
        )


def _job_rows(url: str) -> dict[str, tuple[str, int | None]]:
    with psycopg.connect(conninfo(url)) as conn:
        rows = conn.execute(
            "SELECT args->>'tenant', status, worker_id FROM procrastinate_jobs ORDER BY id"
        ).fetchall()
    return {tenant: (status, worker) for tenant, status, worker in rows}


def test_a_silent_workers_job_is_taken_back_only_when_its_fences_are_free(
    postgres_url: str,
) -> None:
    """Three jobs of workers whose heartbeats stopped: acme's tenant is still fenced (its
    worker is frozen in the run), gamma's worker is still fenced (frozen before it fenced
    its tenant), beta's worker is gone (both fences free): only beta's is queued again,
    and each of the others once its fence is let go."""
    ensure_schema(postgres_url)
    fences = Fences.of(postgres_url)
    app = build_app(connector(postgres_url, min_size=1, max_size=3))

    async def scenario() -> list[object]:
        seen: list[object] = []
        async with app.open_async():
            manager = app.job_manager
            for name in ("acme", "beta", "gamma"):
                await defer_targeted(app, name, [])
            gone = await manager.register_worker()
            frozen = await manager.register_worker()
            assert await manager.fetch_job(queues=None, worker_id=gone)  # acme
            assert await manager.fetch_job(queues=None, worker_id=gone)  # beta
            assert await manager.fetch_job(queues=None, worker_id=frozen)  # gamma
            frozen_fence = await fences.take(fences.worker(frozen), "frozen worker")
            acme_fence = await fences.take(fences.tenant("acme"), "tenant acme")
            assert frozen_fence and acme_fence
            assert await take_back_stalled(app, fences, stalled_after=60) == 0  # all alive
            _silence(postgres_url, gone, frozen)
            left: set[int] = set()
            seen.append(await take_back_stalled(app, fences, 60, left=left))
            seen.append(_job_rows(postgres_url))
            seen.append(await take_back_stalled(app, fences, 60, left=left))  # again: no change
            # a worker starting deletes silent workers' rows: not the one still fenced
            fenced_manager = FencedJobManager(app.connector, fences)
            seen.append(await fenced_manager.prune_stalled_workers(60))
            await acme_fence.release()  # acme's worker gone after all
            seen.append(await take_back_stalled(app, fences, 60, left=left))
            await frozen_fence.release()
            seen.append(await take_back_stalled(app, fences, 60, left=left))
            seen.append(gone)
            # a late worker whose row was deleted all the same gets it back by its heartbeat
            await fenced_manager.update_heartbeat(gone)
            seen.append(await fenced_manager.prune_stalled_workers(60))
        return seen

    taken, rows, again, pruned, acme, gamma, gone, pruned_again = asyncio.run(scenario())
    assert taken == 1
    assert rows["beta"][0] == Status.TODO.value
    assert rows["acme"][0] == rows["gamma"][0] == Status.DOING.value
    assert again == 0
    assert pruned == [gone]
    assert acme == 1 and gamma == 1
    assert {status for status, _ in _job_rows(postgres_url).values()} == {Status.TODO.value}
    assert gone not in pruned_again  # its heartbeat is fresh again
    with psycopg.connect(conninfo(postgres_url)) as conn:
        assert conn.execute(
            "SELECT count(*) FROM procrastinate_workers WHERE id = %s", (gone,)
        ).fetchone() == (1,)


def test_a_fence_whose_connection_is_cut_is_lost_and_free_again(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from samband.queue import fence as fence_module

    monkeypatch.setattr(fence_module, "WATCH_EVERY", 0.05)
    ensure_schema(postgres_url)
    fences = Fences.of(postgres_url)
    key = fences.tenant("acme")

    async def scenario() -> tuple[bool, bool, bool]:
        held = await fences.take(key, "tenant acme")
        assert held is not None
        refused = await fences.take(key, "another worker") is None
        with psycopg.connect(conninfo(postgres_url), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (held.conn.info.backend_pid,))
        deadline = asyncio.get_running_loop().time() + 30
        while not held.lost and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        again = await fences.take(key, "another worker")
        free = again is not None
        await held.release()
        if again is not None:
            await again.release()
        return refused, held.lost, free

    assert asyncio.run(scenario()) == (True, True, True)


def test_a_tenant_fenced_elsewhere_is_not_run_and_no_run_is_recorded(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from samband.queue.runlog import PostgresRunLog
    from samband.queue.tasks import Settings

    registry = tmp_path / "tenants"
    for key, value in t.make_tenant(registry, "acme").items():
        monkeypatch.setenv(key, value)
    ensure_schema(postgres_url)
    fences = Fences.of(postgres_url)
    app = build_app(connector(postgres_url, min_size=1, max_size=3))

    async def scenario() -> list[dict[str, object]]:
        async with app.open_async():
            runs = PostgresRunLog(app)
            held = await fences.take(fences.tenant("acme"), "another worker")
            assert held
            await defer_targeted(app, "acme", [])
            await app.run_worker_async(
                wait=False,
                install_signal_handlers=False,
                additional_context={
                    "samband": Settings(registry=registry, runs=runs, fences=fences)
                },
            )
            await held.release()
            return await runs.recent("acme")

    assert asyncio.run(scenario()) == []
    assert not t.converged(registry, "acme")
    with psycopg.connect(conninfo(postgres_url)) as conn:
        waiting = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo' "
            "AND scheduled_at > now() AND args->>'tenant' = 'acme'"
        ).fetchone()
    assert waiting == (1,)  # tried again later


# -- real workers ----------------------------------------------------------------------


def _freeze_in_a_run(cluster: Cluster, tenant: str) -> tuple[int, int]:
    """SIGSTOP the worker in the middle of a run of ``tenant``; (its pid, the run's id)."""
    for _ in range(5):
        wait_for(lambda: cluster.running(tenant) is not None, 90, f"{tenant} runs", every=0.1)
        running = cluster.running(tenant)
        if running is None:
            continue
        os.kill(running[0], signal.SIGSTOP)
        # still in the middle of it, now that it cannot move on
        if cluster.running(tenant) == running:
            (row,) = cluster.sql(
                "SELECT id FROM samband_tenant_runs WHERE tenant = %s AND finished_at IS NULL",
                tenant,
            )[0]
            return running[0], int(row)
        os.kill(running[0], signal.SIGCONT)
    raise AssertionError(f"no worker caught in the middle of a run of {tenant}")


@pytest.mark.xdist_group("cluster")
def test_a_frozen_worker_keeps_its_tenant_until_it_resumes(
    postgres_url: str, tmp_path: Path
) -> None:
    """A worker frozen (SIGSTOP) in the middle of a big tenant's run, past its --dead-after,
    while two others work and one of them starts meanwhile: nobody runs that tenant beside
    it; resumed, it ends the run and its job, and goes on working."""
    small = ["small-0", "small-1", "small-2"]
    cluster = small_cluster(postgres_url, tmp_path, {"big": BIG} | dict.fromkeys(small, 12))
    frozen: subprocess.Popen[bytes] | None = None
    try:
        cluster.start()
        cluster.start()
        pid, run = _freeze_in_a_run(cluster, "big")
        frozen = cluster.worker(pid)
        (frozen_at,) = cluster.sql("SELECT clock_timestamp()")[0]
        # the others have looked for dead workers' jobs three times (--heartbeat 1s) since
        # the frozen one was silent past its --dead-after
        declared = frozen_at + timedelta(seconds=DEAD_AFTER + 3)
        # a worker starting once the frozen one is silent past --dead-after: it deletes
        # the rows of the workers it takes for dead
        wait_for(
            lambda: bool(
                cluster.sql(
                    "SELECT 1 FROM procrastinate_workers WHERE last_heartbeat < now() - "
                    "make_interval(secs => %s)",
                    DEAD_AFTER + 1,
                )
            ),
            60,
            "the frozen worker is silent past --dead-after",
            every=0.2,
        )
        cluster.start()

        def others_worked_since() -> bool:
            rows = cluster.sql(
                "SELECT count(*) FROM samband_tenant_runs WHERE tenant <> 'big' "
                "AND started_at > %s AND finished_at IS NOT NULL",
                declared,
            )
            return int(rows[0][0]) >= 3

        wait_for(others_worked_since, 90, "the other workers go on past the frozen one's death")
        os.kill(pid, signal.SIGCONT)
        frozen = None
        # its run ends well, and so does its job (not taken back, not run again)
        wait_for(
            lambda: (
                cluster.sql(
                    "SELECT r.status, j.status FROM samband_tenant_runs r "
                    "JOIN procrastinate_jobs j ON r.job_id = j.id WHERE r.id = %s",
                    run,
                )
                == [("ok", Status.SUCCEEDED.value)]
            ),
            90,
            "the frozen run and its job end",
        )
        # the worker goes on taking jobs (its row was kept: it was still connected)
        wait_for(
            lambda: bool(
                cluster.sql(
                    "SELECT 1 FROM samband_tenant_runs WHERE worker LIKE %s AND id > %s "
                    "AND finished_at IS NOT NULL",
                    f"%:{pid}",
                    run,
                )
            ),
            60,
            "the resumed worker takes another job",
        )
        for turn, name in enumerate(["big", *small]):
            t.edit(cluster.registry, name, random.Random(turn), turn)
        wait_for(
            lambda: all(t.converged(cluster.registry, n) for n in ["big", *small]),
            90,
            "every tenant converges",
        )
    except BaseException:
        print(cluster.log_text())
        raise
    finally:
        if frozen is not None:
            os.kill(frozen.pid, signal.SIGCONT)
        cluster.stop()
        print(*cluster.runs(), sep="\n")
    assert overlaps(cluster) == []
    assert {row[5] for row in cluster.runs()} == {"ok"}
    assert [w.returncode for w in cluster.workers] == [0, 0, 0]
    assert cluster.sql("SELECT id FROM procrastinate_jobs WHERE status = 'doing'") == []


@pytest.mark.xdist_group("cluster")
def test_a_worker_stopped_past_its_grace_leaves_its_work_queued_again(
    postgres_url: str, tmp_path: Path
) -> None:
    cluster = small_cluster(postgres_url, tmp_path, {"big": BIG})
    try:
        worker = cluster.start("--grace", "0s")
        wait_for(lambda: cluster.running("big") is not None, 90, "big runs", every=0.1)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
        assert [row[5] for row in cluster.runs()] == ["stopped"]
        assert not t.converged(cluster.registry, "big")
        # its work waits in the queue, due now; nothing is left taken
        assert cluster.sql(
            "SELECT status FROM procrastinate_jobs WHERE lock = 'tenant:big' "
            "AND (scheduled_at IS NULL OR scheduled_at <= now()) ORDER BY id"
        ) == [(Status.ABORTED.value,), (Status.TODO.value,)]
        cluster.start()
        wait_for(lambda: t.converged(cluster.registry, "big"), 90, "big converges")
    except BaseException:
        print(cluster.log_text())
        raise
    finally:
        cluster.stop()
    assert overlaps(cluster) == []
    assert [row[5] for row in cluster.runs()][:2] == ["stopped", "ok"]
    assert t.duplicates(cluster.registry, "big") == []
