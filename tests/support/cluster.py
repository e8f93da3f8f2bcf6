"""A cluster for tests: ``samband worker --queue`` processes on one queue, killed and
replaced at will, and the checks of what the queue promises (from its run log)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from samband.queue.connect import connector, conninfo, ensure_schema
from samband.queue.runlog import PostgresRunLog
from samband.queue.tasks import Settings, build_app
from samband.queue.worker import schedule_missing
from samband.tenants import Registry
from tests.support import tenants as t

# a worker silent 5 s is taken for dead: on a loaded machine a live worker's heartbeat can
# be late by more, and that is harmless: its job is taken back only once its fences (its
# connections to the queue) are gone too
DEAD_AFTER = 5.0
WORKER_ARGS = ["--heartbeat", "1s", "--dead-after", f"{DEAD_AFTER:g}s"]


@dataclass
class Cluster:
    queue: str
    registry: Path
    env: dict[str, str]
    logs: Path
    concurrency: int = 1
    #: how the tenants were made, and how they are checked
    kind: t.Tenants = field(default_factory=t.SqlTenants)
    #: more options of `samband worker` (e.g. its turn)
    args: list[str] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: pid → when it was killed (the database's clock: the run log's is the same)
    killed: dict[int, datetime] = field(default_factory=dict)

    def start(self, *extra: str) -> subprocess.Popen[bytes]:
        """Start a worker (``extra``: more of its options)."""
        log = (self.logs / f"worker-{len(self.killed)}-{len(self.workers)}.log").open("wb")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "samband.cli",
                "worker",
                "--queue",
                self.queue,
                "--tenants-dir",
                str(self.registry),
                "--concurrency",
                str(self.concurrency),
                *WORKER_ARGS,
                *self.args,
                *extra,
            ],
            # a worker that hangs shows where (SIGABRT: the failure path of run_cluster)
            env={**self.env, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONFAULTHANDLER": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(process)
        return process

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(conninfo(self.queue), autocommit=True) as conn:
            return list(conn.execute(query.encode(), args).fetchall())

    def live_workers(self) -> int:
        """How many workers have reported a heartbeat in the last two seconds."""
        rows = self.sql(
            "SELECT count(*) FROM procrastinate_workers "
            "WHERE last_heartbeat > now() - interval '5 seconds'"
        )
        return int(rows[0][0])

    def running_pids(self) -> list[int]:
        """The workers (of this cluster, alive) in the middle of a tenant's job."""
        rows = self.sql("SELECT worker FROM samband_tenant_runs WHERE finished_at IS NULL")
        alive = {w.pid for w in self.workers if w.poll() is None}
        return [pid for (worker,) in rows if (pid := int(worker.rsplit(":", 1)[1])) in alive]

    def running(self, tenant: str) -> tuple[int, datetime] | None:
        """The worker (pid) in the middle of a run of ``tenant``, and when it began."""
        rows = self.sql(
            "SELECT worker, started_at FROM samband_tenant_runs "
            "WHERE tenant = %s AND finished_at IS NULL ORDER BY id DESC LIMIT 1",
            tenant,
        )
        return (int(rows[0][0].rsplit(":", 1)[1]), rows[0][1]) if rows else None

    def worker(self, pid: int) -> subprocess.Popen[bytes]:
        return next(w for w in self.workers if w.pid == pid)

    def kill_one(self, rng: random.Random) -> int | None:
        """SIGKILL a worker, one in the middle of a job when there is one, and start another
        in its place; the pid killed."""
        busy = self.running_pids()
        alive = [w for w in self.workers if w.poll() is None]
        if not alive:
            return None
        victims = [w for w in alive if w.pid in busy] or alive
        victim = rng.choice(victims)
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
        (now,) = self.sql("SELECT clock_timestamp()")[0]
        self.killed[victim.pid] = now
        self.start()
        return victim.pid

    def jobs_not_run_again(self) -> set[int]:
        """The jobs cut by a kill whose tenant no later run brought to its end: the job
        itself queued again, or — when the same work waited in the queue already — that
        job."""
        runs = self.runs()
        return {
            job
            for tenant, job, _worker, started, finished, _status, _msg in runs
            if finished is None
            and not any(r[0] == tenant and r[3] > started and r[5] == "ok" for r in runs)
        }

    def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(10)

    def runs(self) -> list[tuple[Any, ...]]:
        return self.sql(
            "SELECT tenant, job_id, worker, started_at, finished_at, status, message "
            "FROM samband_tenant_runs ORDER BY tenant, started_at"
        )

    def log_text(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-30000:]}"
            for path in sorted(self.logs.glob("worker-*.log"))
        )


def overlaps(cluster: Cluster) -> list[str]:
    """Each pair of runs of one tenant that overlapped: a run overlaps the next one of its
    tenant unless it finished before that one began, or its worker was killed before."""
    found = []
    rows = cluster.runs()
    for index, (tenant, job, worker, _started, finished, _status, _msg) in enumerate(rows):
        if index + 1 == len(rows) or rows[index + 1][0] != tenant:
            continue
        later = rows[index + 1][3]
        end = finished or cluster.killed.get(int(worker.rsplit(":", 1)[1]))
        if end is None or end > later:
            found.append(f"{tenant}: job {job} on {worker} ended {end}, the next began {later}")
    return found


def run_due_jobs(queue: str, registry: Path) -> None:
    """What a worker does, in this process until no job is due: each tenant of
    ``registry`` gets its scheduled run, which queues its next one."""
    ensure_schema(queue)
    app = build_app(connector(queue, min_size=1, max_size=2))

    async def work() -> None:
        async with app.open_async():
            await schedule_missing(app, Registry(registry))
            await app.run_worker_async(
                wait=False,
                install_signal_handlers=False,
                additional_context={
                    "samband": Settings(registry=registry, runs=PostgresRunLog(app))
                },
            )

    asyncio.run(work())


def wait_for(condition: Callable[[], bool], seconds: float, what: str, every: float = 1.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:.0f} s: {what}")
        time.sleep(every)  # each look opens the tenants' databases: not too often


def small_cluster(postgres_url: str, tmp_path: Path, tenants: dict[str, int]) -> Cluster:
    """A cluster with no worker yet, its tenants (name → number of records) run every 2 s."""
    registry = tmp_path / "tenants"
    env: dict[str, str] = {}
    for name, records in tenants.items():
        env.update(t.make_tenant(registry, name, records=records))
    environ = {k: v for k, v in os.environ.items() if k != "CRM_URL"} | env
    logs = tmp_path / "logs"
    logs.mkdir()
    ensure_schema(postgres_url)
    return Cluster(postgres_url, registry, environ, logs)


def run_cluster(
    postgres_url: str,
    tmp_path: Path,
    *,
    tenants: int,
    workers: int,
    kills: int,
    seconds: float,
    every: str = "5s",
    kind: t.Tenants | None = None,
    records: int = t.RECORDS,
    pause: float = 0.05,
    converge_within: float | None = None,
    worker_env: dict[str, str] | None = None,
) -> Cluster:
    """``tenants`` tenants (made by ``kind``, SQLite ones by default) of ``records``
    records each, edited one every ``pause`` seconds for ``seconds`` while ``workers``
    workers (with ``worker_env`` besides the tenants' variables) take their jobs and
    ``kills`` of them are killed; returns once every tenant converged (within
    ``converge_within`` seconds of the last edit)."""
    kind = kind or t.SqlTenants()
    registry = tmp_path / "tenants"
    env: dict[str, str] = dict(worker_env or {})
    names = [f"tenant-{i:03d}" for i in range(tenants)]
    for name in names:
        env.update(kind.make(registry, name, records, every))
    # the tenants' variables only: none of them is readable as plain ${CRM_URL}
    environ = {k: v for k, v in os.environ.items() if k != "CRM_URL"} | env
    logs = tmp_path / "logs"
    logs.mkdir()
    cluster = Cluster(postgres_url, registry, environ, logs, kind=kind)
    rng = random.Random(22)
    try:
        ensure_schema(postgres_url)  # as `samband worker` does, also when several start at once
        for _ in range(workers):
            cluster.start()
        wait_for(lambda: cluster.live_workers() >= workers, 60, "the workers are up")
        # edits and kills, spread over ``seconds``
        deadline = time.monotonic() + seconds
        next_kill = time.monotonic() + seconds / (kills + 1)
        turn = 0
        while time.monotonic() < deadline or len(cluster.killed) < kills:
            turn += 1
            t.edit(registry, rng.choice(names), rng, turn)
            if time.monotonic() >= next_kill and len(cluster.killed) < kills:
                cluster.kill_one(rng)
                next_kill = time.monotonic() + seconds / (kills + 1)
            time.sleep(pause)
        waiting = set(names)

        def all_converged() -> bool:
            waiting.difference_update([n for n in sorted(waiting) if kind.converged(registry, n)])
            return not waiting

        wait_for(
            all_converged,
            converge_within or max(90.0, tenants * 0.5),
            "every tenant converges",
        )
        # and the job of the last worker killed has been run again too
        wait_for(lambda: not cluster.jobs_not_run_again(), 90, "every cut job is run again")
    except BaseException:
        print("cut:", sorted(cluster.jobs_not_run_again()), "killed:", cluster.killed)
        print(
            "doing:",
            cluster.sql(
                "SELECT id, lock, worker_id FROM procrastinate_jobs WHERE status = 'doing'"
            ),
        )
        print(
            "workers:", cluster.sql("SELECT id, last_heartbeat, now() FROM procrastinate_workers")
        )
        print("runs:", [r[:3] + r[4:6] for r in cluster.runs() if r[4] is None])
        for _ in range(3):  # three looks at where the workers are, 3 s apart
            for worker in cluster.workers:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGUSR1)
            time.sleep(3)
        cluster.stop()
        print(cluster.log_text())
        for job in sorted(cluster.jobs_not_run_again()):
            print(
                "not run again:", cluster.sql("SELECT * FROM procrastinate_jobs WHERE id = %s", job)
            )
            print(cluster.sql("SELECT * FROM samband_tenant_runs WHERE job_id = %s", job))
        raise
    cluster.stop()
    return cluster


def check(cluster: Cluster, tenants: int, kills: int) -> None:
    registry = cluster.registry
    names = sorted(p.name for p in registry.iterdir())
    assert len(names) == tenants
    for name in names:
        assert cluster.kind.duplicates(registry, name) == [], f"{name}: created twice"
        assert cluster.kind.converged(registry, name), name
    assert len(cluster.killed) >= kills
    assert overlaps(cluster) == []
    runs = cluster.runs()
    assert {row[0] for row in runs} == set(names)
    statuses = {row[5] for row in runs if row[4] is not None}
    assert statuses <= {"ok"}, [row for row in runs if row[5] not in ("ok", "running")]
    # every job a killed worker left is run again to its end
    assert any(row[4] is None for row in runs), "no kill landed in the middle of a job"
    assert cluster.jobs_not_run_again() == set()
    # no job is left taken by a dead worker
    assert cluster.sql("SELECT id, lock FROM procrastinate_jobs WHERE status = 'doing'") == []
    for row in runs:
        if row[4] is None:
            assert int(row[2].rsplit(":", 1)[1]) in cluster.killed, f"a job left behind: {row}"
