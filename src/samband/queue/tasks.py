"""The procrastinate app: its tasks, one per kind of job, and the per-tenant locks.

Every job of a tenant has the lock ``tenant:NAME``: the queue runs one at a time, in the
order they were queued.  A scheduled run has the queueing lock ``scheduled:NAME`` (at most
one waits per tenant), and so has a pushed run (``targeted:NAME:DATAFLOWS``): a second
push of the same dataflows while one waits adds nothing, the waiting run covers it.  A
scheduled run queues the tenant's next one when it ends, ``every`` later (see
:mod:`samband.tenants.registry`).

A job's run has a turn (:class:`~samband.queue.jobs.Turn`): a run that uses it up yields
between two chunks, keeping what it committed, and the tenant's scheduled run is queued at
once — behind every job queued before it (procrastinate takes jobs by priority, then in
the order they were queued), so a huge initial load takes turns with the other tenants.
That run covers every dataflow, so it also goes on with what a pushed run or a resync
left: a resync's types are not read from the start again.

On PostgreSQL a job runs only inside its tenant's fence (:mod:`.fence`): the advisory lock
``samband-tenant:QUEUE:NAME`` held by this worker for the whole job.  A job whose tenant is
fenced by another process (a worker counted dead that still runs) records nothing and is
queued again later; the run is recorded in the run log only once the fence is held.  The
run stops after its chunk if the fence's connection is lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from procrastinate import App, JobContext
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.job_context import AbortReason

from samband.queue.fence import Fence, Fences
from samband.queue.jobs import Outcome, Turn, run_job
from samband.queue.runlog import RunLog
from samband.tenants import Registry, TenantError

log = logging.getLogger(__name__)

SCHEDULED = "samband.scheduled_run"
TARGETED = "samband.targeted_run"
RESYNC = "samband.resync"
LOCKED_RETRY = 15  # seconds before a job refused (its tenant run elsewhere) is tried again


def tenant_lock(name: str) -> str:
    return f"tenant:{name}"


@dataclass
class Settings:
    """What the tasks of one worker process need (its ``additional_context``)."""

    registry: Path
    runs: RunLog
    turn: Turn = field(default_factory=Turn)
    #: the tenants' fences in the queue's database; None: none (the in-memory queue)
    fences: Fences | None = None


class JobFailed(Exception):
    """A tenant's job failed; the message says why (its config, a system, the store)."""


def build_app(connector: Any) -> App:
    app = App(connector=connector)
    app.task(name=SCHEDULED, pass_context=True)(_scheduled_run)
    app.task(name=TARGETED, pass_context=True)(_targeted_run)
    app.task(name=RESYNC, pass_context=True)(_resync)
    return app


# A job refused (another process runs the tenant: its fence or its run lease is held) ends,
# and a new job of the same kind is queued LOCKED_RETRY later: not procrastinate's retry,
# which would put this job back in the queue beside the one its queueing lock lets wait.
# A job cut by the worker's shutdown (past its --grace) is as one that yielded: its run kept
# what it committed, and the tenant's scheduled run, queued at once, goes on from there.


async def _scheduled_run(context: JobContext, tenant: str) -> dict[str, Any]:
    status = None
    try:
        done = await _job(context, tenant, "scheduled")
        status = done["status"]
        return done
    except asyncio.CancelledError:
        if _cut_by_shutdown(context):
            status = "cut"  # the next run goes on at once from what this one committed
        raise
    finally:
        if status in ("yielded", "cut"):
            await defer_continuation(context.app, tenant)
        else:
            await _schedule_next(context, tenant, LOCKED_RETRY if status == "locked" else None)


async def _targeted_run(
    context: JobContext, tenant: str, dataflows: list[str] | None = None
) -> dict[str, Any]:
    try:
        done = await _job(context, tenant, "targeted", dataflows=dataflows or [])
    except asyncio.CancelledError:
        if _cut_by_shutdown(context):
            await defer_continuation(context.app, tenant)
        raise
    if done["status"] == "locked":
        await defer_targeted(context.app, tenant, dataflows or [], after=LOCKED_RETRY)
    elif done["status"] == "yielded":
        await defer_continuation(context.app, tenant)
    return done


async def _resync(context: JobContext, tenant: str, types: list[str]) -> dict[str, Any]:
    try:
        done = await _job(context, tenant, "resync", resync=types)
    except asyncio.CancelledError:
        if _cut_by_shutdown(context):
            await defer_continuation(context.app, tenant)
        raise
    if done["status"] == "locked":
        await defer_resync(context.app, tenant, types, after=LOCKED_RETRY)
    elif done["status"] == "yielded":
        await defer_continuation(context.app, tenant)
    return done


async def _job(
    context: JobContext,
    tenant: str,
    task: str,
    *,
    dataflows: Iterable[str] = (),
    resync: Iterable[str] = (),
) -> dict[str, Any]:
    settings: Settings = context.additional_context["samband"]
    fence = None
    if settings.fences is not None:
        fence = await settings.fences.take(settings.fences.tenant(tenant), f"tenant {tenant}")
        if fence is None:
            # a worker counted dead that still runs this tenant (late, frozen): nothing of
            # this job is recorded as begun, it is tried again later
            log.warning(
                "tenant %s: another worker still runs it; queued again in %d s",
                tenant,
                LOCKED_RETRY,
            )
            return {"status": "locked"}
    try:
        return await _fenced_job(context, settings, tenant, task, fence, dataflows, resync)
    finally:
        if fence is not None:
            await fence.release()


async def _fenced_job(
    context: JobContext,
    settings: Settings,
    tenant: str,
    task: str,
    fence: Fence | None,
    dataflows: Iterable[str],
    resync: Iterable[str],
) -> dict[str, Any]:
    row = await settings.runs.begin(
        tenant, context.job.id, task, f"{socket.gethostname()}:{os.getpid()}"
    )
    outcome = Outcome("failed", "the job ended without an outcome")
    work = asyncio.ensure_future(
        asyncio.to_thread(
            run_job,
            settings.registry,
            tenant,
            dataflows=list(dataflows),
            resync=list(resync),
            # aborted (`procrastinate` cancel, a shutdown past its --grace) or the fence
            # lost: the run ends after its current chunk, keeping what it committed
            should_stop=lambda: context.should_abort() or (fence is not None and fence.lost),
            turn=settings.turn,
        )
    )
    try:
        try:
            outcome = await asyncio.shield(work)
        except asyncio.CancelledError:
            # the thread cannot be cancelled: the tenant stays fenced and recorded as
            # running until its run has stopped (asked to by should_abort)
            outcome = await _to_the_end(work)
            if _cut_by_shutdown(context):
                log.warning(
                    "tenant %s: the worker stops; its run stopped after its chunk (%s), its "
                    "next run goes on from there",
                    tenant,
                    outcome.status,
                )
            raise
    except Exception as exc:  # a defect: recorded with its reason, the worker goes on
        outcome = Outcome("failed", f"{type(exc).__name__}: {exc}")
        raise
    finally:
        await settings.runs.finish(row, outcome.status, outcome.message or None)
    if outcome.status == "locked":
        log.warning("tenant %s: %s; queued again in %d s", tenant, outcome.message, LOCKED_RETRY)
    elif outcome.yielded:
        log.info("tenant %s: %s; its next run is queued behind the others", tenant, outcome.message)
    elif outcome.status == "gone":
        log.warning("%s", outcome.message)
    elif outcome.failed:
        log.error("tenant %s: %s failed: %s", tenant, task, outcome.message)
        raise JobFailed(f"tenant {tenant}: {outcome.message}")
    if fence is not None and fence.lost:
        log.warning("tenant %s: its fence was lost; the run stopped after its chunk", tenant)
    return {"status": outcome.status, **outcome.counts}


async def _to_the_end(work: asyncio.Future[Outcome]) -> Outcome:
    while not work.cancelled():
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            continue  # cancelled again: still wait, the run is still going
        except Exception as exc:
            return Outcome("failed", f"{type(exc).__name__}: {exc}")
    return Outcome("failed", "the run was cancelled")


def _cut_by_shutdown(context: JobContext) -> bool:
    return context.abort_reason() == AbortReason.SHUTDOWN


async def _schedule_next(context: JobContext, tenant: str, after: float | None) -> None:
    settings: Settings = context.additional_context["samband"]
    try:
        every = Registry(settings.registry).get(tenant).every()
    except TenantError:
        return  # removed (or its tenant.yaml broken: said by the run's own failure)
    await defer_scheduled(context.app, tenant, every if after is None else after)


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


async def defer_continuation(app: App, tenant: str) -> None:
    """Queue tenant's scheduled run now, at the back of the queue: the run of a job that
    yielded goes on.  A scheduled run waiting to be due later (``every``) is replaced by
    it; none can be taken meanwhile, since this job of the tenant holds its lock."""
    if await defer_scheduled(app, tenant):
        return
    manager = app.job_manager
    for job in await manager.list_jobs_async(queueing_lock=f"scheduled:{tenant}", status="todo"):
        if job.id is not None:
            await manager.cancel_job_by_id_async(job.id, delete_job=True)
    # False: a worker's look for tenants without a scheduled run queued one meanwhile,
    # due now and at the back as well
    await defer_scheduled(app, tenant)


async def defer_targeted(app: App, tenant: str, dataflows: list[str], after: float = 0) -> bool:
    """Queue a pushed run of ``tenant``; False when one waits already (it covers this)."""
    task = app.configure_task(
        TARGETED,
        lock=tenant_lock(tenant),
        queueing_lock=f"targeted:{tenant}:{','.join(sorted(dataflows))}",
        schedule_in={"seconds": int(after)} if after else None,
    )
    try:
        await task.defer_async(tenant=tenant, dataflows=list[Any](dataflows))
    except AlreadyEnqueued:
        return False
    await _scheduled_behind(app, tenant)
    return True


async def defer_resync(app: App, tenant: str, types: list[str], after: float = 0) -> bool:
    task = app.configure_task(
        RESYNC, lock=tenant_lock(tenant), schedule_in={"seconds": int(after)} if after else None
    )
    await task.defer_async(tenant=tenant, types=list[Any](types))
    await _scheduled_behind(app, tenant)
    return True


async def _scheduled_behind(app: App, tenant: str) -> None:
    """On PostgreSQL procrastinate takes the jobs of one lock in the order they were
    queued, also behind one not due yet: the tenant's scheduled run, due in ``every``,
    would hold a push or a resync back until then.  It is queued again, behind them,
    due when it was; no worker can take it meanwhile (it is not due)."""
    manager = app.job_manager
    now = datetime.now(UTC)
    for job in await manager.list_jobs_async(queueing_lock=f"scheduled:{tenant}", status="todo"):
        due = job.scheduled_at
        if job.id is None or due is None or due <= now:
            continue  # due: it is the tenant's next job in any case
        if await manager.cancel_job_by_id_async(job.id, delete_job=True):
            task = app.configure_task(
                SCHEDULED,
                lock=tenant_lock(tenant),
                queueing_lock=f"scheduled:{tenant}",
                schedule_at=due,
            )
            # AlreadyEnqueued: a worker's look for tenants without one queued it meanwhile
            with contextlib.suppress(AlreadyEnqueued):
                await task.defer_async(tenant=tenant)
