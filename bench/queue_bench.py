"""Benchmark 10: many tenants through the job queue — real ``samband worker --queue``
processes on PostgreSQL, in a schema of its own that is dropped afterwards.

* **Quiescent cycles** (:func:`run_cycles`): N tenants in a registry (those of
  :mod:`bench.tenants_bench`: two memory systems, a SQLite store), loaded once through the
  queue; then, for 1, 2 and 4 workers, one cycle: every tenant's scheduled run comes due
  at once and the workers take them.  The tenants' ``every`` is a day, so each run queues
  its successor a day later (as in production, that defer is part of the job) and the
  workers' own scheduler, which queues a run for a tenant that has none, finds every tenant
  with one waiting; a cycle makes those waiting runs due now.  A cycle lasts from the first
  run taken to the last run's end, both from ``samband_tenant_runs`` (idle workers look
  for due jobs every ``--heartbeat``, a wait a busy queue does not have): the takes, the
  runs, their logging and their successors' defers.  The workers' CPU over the cycle is
  read from ``/proc``.  The same tenants are then run without the queue
  (:func:`bench.tenants_bench.run_cycle`): the ceiling, and the queue's cost per job.
* **Initial loads at once** (:func:`run_initial_loads`): 20 new tenants of some hundred
  records each, queued at once into a fresh queue while 1, 2 or 4 workers wait: the time
  from the first defer to the last load's end, and each tenant's own (its job's start to
  end).
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from bench.cluster_bench import fresh_schema
from bench.tenants_bench import make_tenants, run_cycle, sync_tenant
from samband.queue.connect import conninfo
from samband.queue.tasks import SCHEDULED

EVERY = "24h"  # longer than the bench: a run's successor never comes due in it


class Workers:
    """``count`` processes of ``samband worker --queue URL --tenants-dir DIR``."""

    def __init__(self, queue: str, registry: Path, logs: Path, count: int) -> None:
        self.queue = queue
        self.processes: list[subprocess.Popen[bytes]] = []
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        for number in range(count):
            log = (logs / f"worker-{count}-{number}.log").open("wb")
            self.processes.append(
                subprocess.Popen(
                    [
                        *(sys.executable, "-m", "samband.cli", "worker"),
                        *("--queue", queue, "--tenants-dir", str(registry)),
                        *("--heartbeat", "2s", "--dead-after", "60s"),
                    ],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        self.logs = logs
        _wait(lambda: self._registered() >= count, 120, f"{count} worker(s) up", self)

    def _registered(self) -> int:
        if any(p.poll() is not None for p in self.processes):
            raise RuntimeError(f"a worker ended at start:\n{self.log_tail()}")
        try:
            return int(_sql(self.queue, "SELECT count(*) FROM procrastinate_workers")[0][0])
        except psycopg.errors.UndefinedTable:
            return 0  # not made yet: the first worker makes it

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    def cpu_seconds(self) -> float:
        """The CPU time the workers used so far (user and system; not PostgreSQL's)."""
        total = 0
        for process in self.processes:
            stat = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(stat[11]) + int(stat[12])  # utime, stime (fields 14 and 15)
        return total / os.sysconf("SC_CLK_TCK")

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.logs.glob("worker-*.log"))
        )


@contextmanager
def worker_pool(queue: str, registry: Path, logs: Path, count: int) -> Iterator[Workers]:
    started = Workers(queue, registry, logs, count)
    try:
        yield started
    finally:
        started.stop()


def _sql(queue: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(conninfo(queue), autocommit=True) as conn:
        return list(conn.execute(query.encode(), args).fetchall())


def _wait(condition: Any, seconds: float, what: str, pool: Workers | None = None) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            tail = f"\n{pool.log_tail()}" if pool else ""
            raise RuntimeError(f"not within {seconds:.0f} s: {what}{tail}")
        time.sleep(0.2)


def make_registry(root: Path, tenants: int, records: int) -> list[str]:
    """A tenants registry (``root``): :mod:`bench.tenants_bench`'s tenants, each with a
    ``tenant.yaml`` that puts its scheduled runs a day apart."""
    paths = make_tenants(root, tenants, records)
    for path in paths:
        (path.parent / "tenant.yaml").write_text(f"every: {EVERY}\n", encoding="utf-8")
    return [path.parent.name for path in paths]


def queue_loaded(queue: str, names: list[str]) -> float:
    """Every tenant's parked scheduled run made due now (as when all their intervals end at
    once); the database's time of that (epoch seconds)."""
    with psycopg.connect(conninfo(queue), autocommit=True) as conn:
        (now,) = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
        due = conn.execute(
            "UPDATE procrastinate_jobs SET scheduled_at = clock_timestamp() "
            "WHERE status = 'todo' AND task_name = %s",
            (SCHEDULED,),
        ).rowcount
    if due != len(names):
        raise RuntimeError(f"{due} scheduled runs waiting, not one for each of {len(names)}")
    return float(now)


def queue_new(queue: str, registry: Path, data: Path, names: list[str]) -> float:
    """New tenants: the registry (until now empty) becomes ``data``, and every tenant's
    scheduled run is queued now; the database's time of the first defer (epoch seconds).

    The workers are already up, so they start taking jobs together; their own scheduler
    would queue the same runs, and the queueing lock keeps one of each."""
    from samband.queue.tasks import defer_scheduled
    from samband.queue.worker import open_app

    registry.symlink_to(data, target_is_directory=True)
    (started,) = _sql(queue, "SELECT extract(epoch FROM clock_timestamp())::float8")[0]

    async def defer() -> None:
        app = open_app(queue, max_size=2)
        async with app.open_async():
            for name in names:
                await defer_scheduled(app, name)

    asyncio.run(defer())
    return float(started)


def wait_runs(queue: str, after: int, names: list[str], pool: Workers) -> dict[str, Any]:
    """Wait until every tenant has a run finished since row ``after``; their figures (a
    tenant's first run of those)."""

    def finished() -> bool:
        rows = _sql(
            queue,
            "SELECT count(DISTINCT tenant) FROM samband_tenant_runs "
            "WHERE id > %s AND finished_at IS NOT NULL",
            after,
        )
        return int(rows[0][0]) >= len(names)

    _wait(finished, max(600.0, len(names) * 3.0), f"{len(names)} tenants' runs", pool)
    rows = _sql(
        queue,
        "SELECT DISTINCT ON (tenant) status, extract(epoch FROM started_at)::float8, "
        "extract(epoch FROM finished_at)::float8, message FROM samband_tenant_runs "
        "WHERE id > %s AND finished_at IS NOT NULL ORDER BY tenant, id",
        after,
    )
    (runs,) = _sql(queue, "SELECT count(*) FROM samband_tenant_runs WHERE id > %s", after)[0]
    failed = [f"{status}: {message}" for status, _s, _f, message in rows if status != "ok"]
    durations = [end - start for _status, start, end, _m in rows]
    return {
        "runs": int(runs),
        "not_ok": len(failed),
        "first_failure": failed[0] if failed else None,
        "first_start": min(start for _s, start, _e, _m in rows),
        "last_end": max(end for _s, _st, end, _m in rows),
        "job_median_s": statistics.median(durations),
        "job_max_s": max(durations),
        "job_sum_s": sum(durations),
    }


def job_phases(queue: str, after: int) -> dict[str, float]:
    """Where a job's time outside its run goes (medians, ms), from procrastinate's events
    and the run log: taken → the run begins (the log's row written), the run ends → the job
    finished (the log's row closed, the successor queued), and a worker's job finished →
    its next taken."""
    rows = _sql(
        queue,
        "SELECT r.worker, extract(epoch FROM r.started_at)::float8, "
        "extract(epoch FROM r.finished_at)::float8, "
        "(SELECT extract(epoch FROM max(e.at))::float8 FROM procrastinate_events e "
        " WHERE e.job_id = r.job_id AND e.type = 'started'), "
        "(SELECT extract(epoch FROM max(e.at))::float8 FROM procrastinate_events e "
        " WHERE e.job_id = r.job_id AND e.type IN ('succeeded', 'failed')) "
        "FROM samband_tenant_runs r WHERE r.id > %s ORDER BY r.worker, r.id",
        after,
    )
    between = [
        rows[i + 1][3] - rows[i][4]
        for i in range(len(rows) - 1)
        if rows[i][0] == rows[i + 1][0] and rows[i + 1][3] and rows[i][4]
    ]
    return {
        "taken_to_run_ms": statistics.median(b - a for _w, b, _c, a, _d in rows if a) * 1000,
        "run_to_finished_ms": statistics.median(d - c for _w, _b, c, _a, d in rows if d) * 1000,
        "finished_to_next_ms": statistics.median(between) * 1000 if between else 0.0,
    }


def last_row(queue: str) -> int:
    return int(_sql(queue, "SELECT coalesce(max(id), 0) FROM samband_tenant_runs")[0][0])


def _figures(names: list[str], started: float, runs: dict[str, Any]) -> dict[str, Any]:
    """``seconds``: from ``started`` (the first defer, or the first run taken when that is
    later: see :func:`run_cycles`) to the last run's end."""
    seconds = runs["last_end"] - max(started, runs["first_start"])
    return {
        **runs,
        "seconds": seconds,
        "first_taken_s": runs["first_start"] - started,
        "runs_per_minute": len(names) / seconds * 60,
    }


def run_cycles(
    tenants: int, workers: list[int], records: int = 20, ceiling: bool = True
) -> dict[str, Any]:
    """Initial loads through the queue, then one quiescent cycle per worker count, and
    (``ceiling``) the same cycles without the queue."""
    result: dict[str, Any] = {"tenants": tenants, "records": records, "cycles": {}}
    with tempfile.TemporaryDirectory(prefix="samband-qbench-") as folder, fresh_schema() as url:
        root = Path(folder)
        logs, data, registry = root / "logs", root / "data", root / "tenants"
        logs.mkdir()
        names = make_registry(data, tenants, records)
        # the initial loads, as many workers as the machine has cores
        cores = min(max(workers), os.cpu_count() or 1)
        with worker_pool(url, registry, logs, cores) as pool:
            mark = last_row(url)
            started = queue_new(url, registry, data, names)
            result["initial"] = _figures(names, started, wait_runs(url, mark, names, pool))
            result["initial"]["workers"] = cores
        for count in workers:
            with worker_pool(url, registry, logs, count) as pool:
                mark = last_row(url)
                cpu = pool.cpu_seconds()
                started = queue_loaded(url, names)
                runs = wait_runs(url, mark, names, pool)
                # from the first run taken: idle workers look for due jobs every
                # --heartbeat (2 s), a wait a busy queue does not have
                cycle = _figures(names, started, runs)
                cycle["cpu_ms_per_run"] = (pool.cpu_seconds() - cpu) / tenants * 1000
                cycle.update(job_phases(url, mark))
                result["cycles"][str(count)] = cycle
        if ceiling:
            paths = [data / name / "samband.yaml" for name in names]
            result["ceiling"] = {}
            for count in workers:
                seconds, done = run_cycle(paths, count, run=timed_sync)
                writes, cpu_us = divmod(done, 10**12)
                result["ceiling"][str(count)] = {
                    "seconds": seconds,
                    "writes": writes,
                    "runs_per_minute": tenants / seconds * 60,
                    "cpu_ms_per_run": cpu_us / tenants / 1000,
                }
    result["load_average"] = os.getloadavg()
    return result


def timed_sync(path: str) -> int:
    """:func:`bench.tenants_bench.sync_tenant`, with its CPU time: writes x 10^12 + CPU
    microseconds (run_cycle adds up what the runs return)."""
    started = time.process_time()
    writes = sync_tenant(path)
    return writes * 10**12 + round((time.process_time() - started) * 1e6)


def run_initial_loads(tenants: int, records: int, workers: list[int]) -> dict[str, Any]:
    """For each worker count: ``tenants`` new tenants of ``records`` records queued at
    once, on a queue of its own."""
    result: dict[str, Any] = {"tenants": tenants, "records": records, "loads": {}}
    for count in workers:
        with tempfile.TemporaryDirectory(prefix="samband-qbench-") as folder:
            root = Path(folder)
            logs, data, registry = root / "logs", root / "data", root / "tenants"
            logs.mkdir()
            names = make_registry(data, tenants, records)
            with fresh_schema() as url, worker_pool(url, registry, logs, count) as pool:
                mark = last_row(url)
                started = queue_new(url, registry, data, names)
                result["loads"][str(count)] = _figures(
                    names, started, wait_runs(url, mark, names, pool)
                )
    result["load_average"] = os.getloadavg()
    return result
