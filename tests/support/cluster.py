"""A cluster for tests: ``samband worker --queue`` processes on one queue, killed and
replaced at will, and the checks of what the queue promises (from its run log)."""

from __future__ import annotations

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

from samband.queue.connect import conninfo

WORKER_ARGS = ["--heartbeat", "0.5s", "--dead-after", "2s"]


@dataclass
class Cluster:
    queue: str
    registry: Path
    env: dict[str, str]
    logs: Path
    concurrency: int = 2
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: pid → when it was killed (the database's clock: the run log's is the same)
    killed: dict[int, datetime] = field(default_factory=dict)

    def start(self) -> subprocess.Popen[bytes]:
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
            ],
            env={**self.env, "PYTHONPATH": os.pathsep.join(sys.path)},
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
            "WHERE last_heartbeat > now() - interval '2 seconds'"
        )
        return int(rows[0][0])

    def running_pids(self) -> list[int]:
        """The workers (of this cluster, alive) in the middle of a tenant's job."""
        rows = self.sql("SELECT worker FROM samband_tenant_runs WHERE finished_at IS NULL")
        alive = {w.pid for w in self.workers if w.poll() is None}
        return [pid for (worker,) in rows if (pid := int(worker.rsplit(":", 1)[1])) in alive]

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
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
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


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:.0f} s: {what}")
        time.sleep(0.2)
