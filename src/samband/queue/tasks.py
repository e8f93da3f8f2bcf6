"""The procrastinate app: its tasks, one per kind of job, and the per-tenant locks.

Every job of a tenant has the lock ``tenant:NAME``: the queue runs one at a time, in the
order they were queued.  A scheduled run has the queueing lock ``scheduled:NAME`` (at most
one waits per tenant), and so has a pushed run (``targeted:NAME``): a second push while
one waits adds nothing, the waiting run covers it.  A scheduled run queues the tenant's
next one when it ends, ``every`` later (see :mod:`samband.tenants.registry`)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procrastinate import App, JobContext, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued

from samband.queue.jobs import Outcome, run_job
from samband.queue.runlog import RunLog
from samband.tenants import Registry, TenantError

log = logging.getLogger(__name__)

SCHEDULED = "samband.scheduled_run"
TARGETED = "samband.targeted_run"
RESYNC = "samband.resync"
LOCKED_RETRY = 15  # seconds before a job refused by the tenant's run lease is tried again


def tenant_lock(name: str) -> str:
    return f"tenant:{name}"


@dataclass
class Settings:
    """What the tasks of one worker process need (its ``additional_context``)."""

    registry: Path
    runs: RunLog


class RunRefused(Exception):
    """A tenant's run lease is held by another process: the job is tried again."""


class JobFailed(Exception):
    """A tenant's job failed; the message says why (its config, a system, the store)."""


def build_app(connector: Any) -> App:
    app = App(connector=connector)
    retry = RetryStrategy(wait=LOCKED_RETRY, retry_exceptions={RunRefused})
    app.task(name=SCHEDULED, pass_context=True, retry=retry)(_scheduled_run)
    app.task(name=TARGETED, pass_context=True, retry=retry)(_targeted_run)
    app.task(name=RESYNC, pass_context=True, retry=retry)(_resync)
    return app


async def _scheduled_run(context: JobContext, tenant: str) -> dict[str, Any]:
    try:
        return await _job(context, tenant, "scheduled")
    finally:
        await _schedule_next(context, tenant)


async def _targeted_run(
    context: JobContext, tenant: str, dataflows: list[str] | None = None
) -> dict[str, Any]:
    return await _job(context, tenant, "targeted", dataflows=dataflows or [])


async def _resync(context: JobContext, tenant: str, types: list[str]) -> dict[str, Any]:
    return await _job(context, tenant, "resync", resync=types)


async def _job(
    context: JobContext,
    tenant: str,
    task: str,
    *,
    dataflows: Iterable[str] = (),
    resync: Iterable[str] = (),
) -> dict[str, Any]:
    settings: Settings = context.additional_context["samband"]
    row = await settings.runs.begin(
        tenant, context.job.id, task, f"{socket.gethostname()}:{os.getpid()}"
    )
    outcome = Outcome("failed", "the job ended without an outcome")
    try:
        outcome = await asyncio.to_thread(
            run_job,
            settings.registry,
            tenant,
            dataflows=list(dataflows),
            resync=list(resync),
            # aborted (`procrastinate` cancel, a shutdown past its grace time): the run
            # ends after its current chunk, keeping what it committed
            should_stop=lambda: context.should_abort(),
        )
    except Exception as exc:  # a defect: recorded with its reason, the worker goes on
        outcome = Outcome("failed", f"{type(exc).__name__}: {exc}")
        raise
    finally:
        await settings.runs.finish(row, outcome.status, outcome.message or None)
    if outcome.status == "locked":
        raise RunRefused(outcome.message)
    if outcome.status == "gone":
        log.warning("%s", outcome.message)
    elif outcome.failed:
        log.error("tenant %s: %s failed: %s", tenant, task, outcome.message)
        raise JobFailed(f"tenant {tenant}: {outcome.message}")
    return {"status": outcome.status, **outcome.counts}


async def _schedule_next(context: JobContext, tenant: str) -> None:
    settings: Settings = context.additional_context["samband"]
    try:
        every = Registry(settings.registry).get(tenant).every()
    except TenantError:
        return  # removed (or its tenant.yaml broken: said by the run's own failure)
    await defer_scheduled(context.app, tenant, every)


async def defer_scheduled(app: App, tenant: str, after: float = 0) -> bool:
    """Queue tenant's scheduled run ``after`` seconds from now; False when one waits
    already."""
    task = app.configure_task(
        SCHEDULED,
        lock=tenant_lock(tenant),
        queueing_lock=f"scheduled:{tenant}",
        schedule_in={"seconds": int(after)} if after else None,
    )
    try:
        await task.defer_async(tenant=tenant)
    except AlreadyEnqueued:
        return False
    return True


async def defer_targeted(app: App, tenant: str, dataflows: list[str]) -> bool:
    """Queue a pushed run of ``tenant``; False when one waits already (it covers this)."""
    task = app.configure_task(
        TARGETED, lock=tenant_lock(tenant), queueing_lock=f"targeted:{tenant}"
    )
    try:
        await task.defer_async(tenant=tenant, dataflows=list[Any](dataflows))
    except AlreadyEnqueued:
        return False
    return True


async def defer_resync(app: App, tenant: str, types: list[str]) -> bool:
    task = app.configure_task(RESYNC, lock=tenant_lock(tenant))
    await task.defer_async(tenant=tenant, types=list[Any](types))
    return True
