"""What the queue says of each tenant, for the tenants page of ``samband serve``: its
latest runs (``samband_tenant_runs``) and its jobs waiting or running
(``procrastinate_jobs``).  Read only: a page never makes the queue's tables."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from samband.queue.connect import QueueError, conninfo

_RUNS = """
SELECT t.name AS tenant, r.task, r.worker, r.started_at, r.finished_at, r.status, r.message
FROM unnest(%(names)s::text[]) AS t(name)
CROSS JOIN LATERAL (
    SELECT task, worker, started_at, finished_at, status, message
    FROM samband_tenant_runs WHERE tenant = t.name ORDER BY id DESC LIMIT %(limit)s
) AS r
"""
_JOBS = """
SELECT args->>'tenant' AS tenant, task_name, status, scheduled_at
FROM procrastinate_jobs
WHERE status IN ('todo', 'doing') AND args->>'tenant' = ANY(%(names)s::text[])
ORDER BY id
"""


@dataclass
class Activity:
    """Per tenant: its latest runs, newest first, and its jobs waiting or running."""

    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    jobs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def read_activity(
    url: str, names: Iterable[str], *, runs_per_tenant: int = 5, timeout: float = 5.0
) -> Activity:
    """The queue's record of the tenants ``names``; raises :class:`QueueError` (saying
    why, never the URL's password) when the queue cannot be read."""
    wanted = list(names)
    found = Activity()
    try:
        with psycopg.connect(
            conninfo(url), autocommit=True, row_factory=dict_row, connect_timeout=int(timeout)
        ) as conn:
            conn.execute(f"SET statement_timeout = {int(timeout * 1000)}".encode())
            tables = conn.execute(
                "SELECT to_regclass('samband_tenant_runs') IS NOT NULL AS runs, "
                "to_regclass('procrastinate_jobs') IS NOT NULL AS jobs"
            ).fetchone()
            if tables and tables["runs"]:
                for row in conn.execute(_RUNS, {"names": wanted, "limit": runs_per_tenant}):
                    found.runs.setdefault(row.pop("tenant"), []).append(row)
            if tables and tables["jobs"]:
                for row in conn.execute(_JOBS, {"names": wanted}):
                    found.jobs.setdefault(row["tenant"], []).append(
                        {
                            "task": _task(row["task_name"]),
                            "state": "running" if row["status"] == "doing" else "waiting",
                            "due": row["scheduled_at"],
                        }
                    )
    except psycopg.Error as exc:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise QueueError(f"the queue's database cannot be read: {text}") from None
    return found


def _task(name: str) -> str:
    """``samband.scheduled_run`` → ``scheduled`` (the run log's word for it)."""
    return name.removeprefix("samband.").removesuffix("_run")
