"""The log of tenants' jobs: one row per job a worker began, with its worker, start, end,
status and reason.  A row never finished is a job whose worker died.  In the queue's
database (``samband_tenant_runs``, :class:`PostgresRunLog`); in memory for tests with
procrastinate's in-memory connector (:class:`MemoryRunLog`)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any, Protocol

from procrastinate import App

from samband.queue.manager import recorded


class RunLog(Protocol):
    async def begin(self, tenant: str, job_id: int | None, task: str, worker: str) -> int: ...
    async def finish(self, row: int, status: str, message: str | None) -> None: ...
    async def recent(self, tenant: str | None, limit: int) -> list[dict[str, Any]]: ...


class PostgresRunLog:
    def __init__(self, app: App) -> None:
        self.connector = app.connector

    async def begin(self, tenant: str, job_id: int | None, task: str, worker: str) -> int:
        row = await self.connector.execute_query_one_async(
            "INSERT INTO samband_tenant_runs (tenant, job_id, task, worker) "
            "VALUES (%(tenant)s, %(job)s, %(task)s, %(worker)s) RETURNING id",
            tenant=tenant,
            job=job_id,
            task=task,
            worker=worker,
        )
        return int(row["id"])

    async def finish(self, row: int, status: str, message: str | None) -> None:
        # a row left `running` would say the job's worker died
        await recorded(
            lambda: self.connector.execute_query_async(
                "UPDATE samband_tenant_runs SET finished_at = clock_timestamp(), "
                "status = %(status)s, message = %(message)s WHERE id = %(id)s",
                status=status,
                message=message,
                id=row,
            )
        )

    async def recent(self, tenant: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        return await self.connector.execute_query_all_async(
            "SELECT tenant, job_id, task, worker, started_at, finished_at, status, message "
            "FROM samband_tenant_runs WHERE %(tenant)s::text IS NULL OR tenant = %(tenant)s "
            "ORDER BY id DESC LIMIT %(limit)s",
            tenant=tenant,
            limit=limit,
        )


class MemoryRunLog:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    async def begin(self, tenant: str, job_id: int | None, task: str, worker: str) -> int:
        number = next(self._ids)
        row = {
            "id": number,
            "tenant": tenant,
            "job_id": job_id,
            "task": task,
            "worker": worker,
            "started_at": datetime.now(UTC),
            "finished_at": None,
            "status": "running",
            "message": None,
        }
        self.rows.append(row)
        return number

    async def finish(self, row: int, status: str, message: str | None) -> None:
        for entry in self.rows:
            if entry["id"] == row:
                entry.update(finished_at=datetime.now(UTC), status=status, message=message)

    async def recent(self, tenant: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        rows = [r for r in reversed(self.rows) if tenant is None or r["tenant"] == tenant]
        return rows[:limit]
