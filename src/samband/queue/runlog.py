"""The log of tenants' jobs in the queue's database (``samband_tenant_runs``): one row
per job a worker began, with its worker, start, end, status and reason.  A row never
finished is a job whose worker died."""

from __future__ import annotations

from typing import Any

from procrastinate import App


async def recent_runs(app: App, tenant: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    return await app.connector.execute_query_all_async(
        "SELECT tenant, job_id, task, worker, started_at, finished_at, status, message "
        "FROM samband_tenant_runs WHERE %(tenant)s::text IS NULL OR tenant = %(tenant)s "
        "ORDER BY id DESC LIMIT %(limit)s",
        tenant=tenant,
        limit=limit,
    )
