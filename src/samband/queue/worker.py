"""``samband worker --queue URL``: one process taking tenants' jobs from the queue.

Beside procrastinate's own worker (which takes jobs, ``concurrency`` at a time, and
reports a heartbeat) it runs two loops:

* **dead workers' jobs**: a job left ``doing`` by a worker whose heartbeat stopped (the
  process was killed, its machine died) is queued again, and the tenant's next run goes on
  from what that run had committed.  Every worker does this; a job is taken back once.
  A late heartbeat alone is not death: a job is taken back only when its worker's fence
  and its tenant's fence are both free (:mod:`.fence`: the process's connections are
  gone).  A worker that is only late or frozen keeps its job, and ends it when it resumes.
* **scheduled runs**: every tenant of the registry without a scheduled run waiting or
  running gets one now (a new tenant; one whose chain was cut).  A scheduled run queues
  its successor itself (see :mod:`samband.queue.tasks`).

On SIGTERM or Ctrl-C a worker takes no more jobs and lets those running end; past its
``grace`` they are asked to stop (a run stops after its current chunk, keeping what it
committed) and their work is queued again.  If even that chunk outlasts the supervisor's
patience and the process is killed, its jobs are taken back like any dead worker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from procrastinate import App, exceptions
from procrastinate.jobs import Job, Status

from samband.queue.connect import connector, ensure_schema
from samband.queue.fence import Fences, held
from samband.queue.jobs import Turn
from samband.queue.manager import FencedJobManager, fenced
from samband.queue.runlog import PostgresRunLog
from samband.queue.tasks import (
    SCHEDULED,
    JobFailed,
    Settings,
    build_app,
    defer_scheduled,
)
from samband.tenants import Registry, TenantError

log = logging.getLogger(__name__)


@dataclass
class WorkerOptions:
    queue_url: str
    registry: Path
    concurrency: int = 1
    heartbeat: float = 10.0  # seconds between a worker's heartbeats
    stalled_after: float = 30.0  # a worker silent this long, its fences free: jobs taken back
    grace: float = 30.0  # seconds the running jobs have to end after SIGTERM
    schedule: bool = True  # queue scheduled runs for tenants that have none
    schedule_every: float = 30.0  # seconds between two looks for such tenants
    # how long one job's run may hold this worker
    turn: Turn = field(default_factory=lambda: Turn(seconds=60.0))


class _NoTraceback(logging.Filter):
    """A tenant's job that failed for a reason it states (its config, a system, its run
    lease) is logged as that reason, without a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], JobFailed):
            record.exc_info = None
            record.exc_text = None
        return True


def open_app(queue_url: str, *, max_size: int = 10) -> App:
    """The queue's app, its schema made, its job manager fenced (:mod:`.manager`)."""
    ensure_schema(queue_url)
    app = build_app(connector(queue_url, min_size=1, max_size=max_size))
    return fenced(app, Fences.of(queue_url))


def run_worker(options: WorkerOptions) -> None:
    # `kill -USR1 PID` prints every thread's stack to stderr: where a long job is
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    asyncio.run(_run(options))


async def _run(options: WorkerOptions) -> None:
    logging.getLogger("procrastinate.worker").addFilter(_NoTraceback())
    app = open_app(options.queue_url, max_size=options.concurrency + 4)
    assert isinstance(app.job_manager, FencedJobManager)
    fences = app.job_manager.fences
    settings = Settings(
        registry=options.registry, runs=PostgresRunLog(app), turn=options.turn, fences=fences
    )
    async with app.open_async():
        loops = [asyncio.create_task(_take_back_stalled(app, fences, options))]
        if options.schedule:
            loops.append(asyncio.create_task(_schedule_loop(app, options)))
        try:
            await app.run_worker_async(
                concurrency=options.concurrency,
                additional_context={"samband": settings},
                update_heartbeat_interval=options.heartbeat,
                # only at its start: rows of silent workers whose fence is free are deleted
                stalled_worker_timeout=options.stalled_after,
                shutdown_graceful_timeout=options.grace,
                fetch_job_polling_interval=min(5.0, options.heartbeat),
            )
        finally:
            for loop in loops:
                loop.cancel()
            for loop in loops:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await loop


async def _take_back_stalled(app: App, fences: Fences, options: WorkerOptions) -> None:
    left: set[int] = set()
    while True:
        await asyncio.sleep(options.heartbeat)
        try:
            if isinstance(app.job_manager, FencedJobManager):
                await app.job_manager.keep_fence()
            await take_back_stalled(app, fences, options.stalled_after, left=left)
        except (exceptions.ConnectorException, psycopg.Error) as exc:
            log.warning("could not look for dead workers' jobs: %s", exc)


async def take_back_stalled(
    app: App, fences: Fences, stalled_after: float, *, left: set[int] | None = None
) -> int:
    """Queue again the jobs of workers silent for ``stalled_after`` seconds whose fences
    are free; how many.  A job whose worker or tenant is still fenced (a late heartbeat, a
    frozen process) is left to its worker; said once per job (``left``: those said)."""
    manager = app.job_manager
    left = set() if left is None else left
    stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after))
    keys = {job.id: _fences(fences, job) for job in stalled}
    alive = await held(app.connector, [key for pair in keys.values() for key in pair])
    left.intersection_update(keys)  # those no longer stalled are forgotten
    taken = 0
    for job in stalled:
        assert job.id is not None
        tenant = job.task_kwargs.get("tenant")
        if alive.intersection(keys[job.id]):
            if job.id not in left:
                left.add(job.id)
                log.warning(
                    "job %s (%s): its worker %s is silent but still connected (late or "
                    "frozen): left to it",
                    job.id,
                    tenant,
                    job.worker_id,
                )
            continue
        try:
            await manager.retry_job(job)
        except exceptions.UniqueViolation:
            # the same work waits in the queue already (a run of this tenant queued
            # since): the dead worker's job is closed, that one does it
            with contextlib.suppress(exceptions.ConnectorException):
                await manager.finish_job(job, status=Status.FAILED, delete_job=False)
            continue
        except exceptions.ConnectorException:
            continue  # another worker took it back first
        log.warning("job %s (%s) of a dead worker is queued again", job.id, tenant)
        taken += 1
    return taken


def _fences(fences: Fences, job: Job) -> tuple[int, ...]:
    """The fences that say a job's worker still runs it: its worker's, its tenant's."""
    keys = [] if job.worker_id is None else [fences.worker(job.worker_id)]
    tenant = job.task_kwargs.get("tenant")
    if isinstance(tenant, str):
        keys.append(fences.tenant(tenant))
    return tuple(keys)


async def _schedule_loop(app: App, options: WorkerOptions) -> None:
    while True:
        try:
            await schedule_missing(app, Registry(options.registry))
        except exceptions.ConnectorException as exc:
            log.warning("could not queue scheduled runs: %s", exc)
        await asyncio.sleep(options.schedule_every)


async def schedule_missing(app: App, registry: Registry) -> list[str]:
    """Queue a scheduled run now for every tenant with none waiting or running."""
    busy = {
        job.lock
        for status in ("todo", "doing")
        for job in await app.job_manager.list_jobs_async(task=SCHEDULED, status=status)
    }
    queued = []
    for name in registry.names():
        if f"tenant:{name}" in busy:
            continue
        try:
            registry.get(name).every()  # a broken tenant.yaml is said, not scheduled
        except TenantError as exc:
            log.error("%s", exc)
            continue
        if await defer_scheduled(app, name):
            queued.append(name)
    return queued
