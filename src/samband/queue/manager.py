"""procrastinate's job manager, with a worker's liveness taken from its fence.

procrastinate counts a worker dead when its heartbeat is late, and a worker starting
deletes the rows of such workers: their jobs lose their ``worker_id``.  A worker that was
only late (a loaded machine, a process frozen by SIGSTOP) then resumes without a row: its
heartbeat updates nothing and its next ``fetch_job`` fails on the missing row.  Here a
worker holds its fence ``samband-worker:QUEUE:ID`` (:mod:`.fence`) from its registration
to its end, and

* a silent worker's row is deleted only when its fence is free too (the process is gone);
* a heartbeat puts the worker's row back if it was deleted all the same (by a worker of an
  older Samband, say), so a late worker never fails on its own missing row.
"""

from __future__ import annotations

import logging
from typing import Any

from procrastinate.manager import JobManager

from samband.queue.fence import Fence, Fences, held

log = logging.getLogger(__name__)

_STALE_WORKERS = (
    "SELECT id FROM procrastinate_workers "
    "WHERE last_heartbeat < NOW() - (%(seconds)s || ' SECOND')::INTERVAL"
)
# still silent when deleted: a heartbeat since the look keeps the row
_PRUNE = (
    "DELETE FROM procrastinate_workers WHERE id = ANY(%(ids)s::bigint[]) "
    "AND last_heartbeat < NOW() - (%(seconds)s || ' SECOND')::INTERVAL RETURNING id"
)
_HEARTBEAT = (
    "INSERT INTO procrastinate_workers (id, last_heartbeat) OVERRIDING SYSTEM VALUE "
    "VALUES (%(id)s, NOW()) ON CONFLICT (id) DO UPDATE SET last_heartbeat = NOW()"
)


class FencedJobManager(JobManager):
    def __init__(self, connector: Any, fences: Fences) -> None:
        super().__init__(connector)
        self.fences = fences
        self.fence: Fence | None = None
        self.worker_id: int | None = None

    async def register_worker(self) -> int:
        worker_id = await super().register_worker()
        self.worker_id = worker_id
        await self.keep_fence()
        return worker_id

    async def keep_fence(self) -> None:
        """Hold this worker's fence; taken again if its connection was lost."""
        if self.worker_id is None or (self.fence is not None and not self.fence.lost):
            return
        if self.fence is not None:
            await self.fence.release()
        key = self.fences.worker(self.worker_id)
        self.fence = await self.fences.take(key, f"worker {self.worker_id}")
        if self.fence is None:  # ids are never given twice: nobody else can hold it
            log.error("worker %s: its fence is held by another session", self.worker_id)

    async def unregister_worker(self, worker_id: int) -> None:
        try:
            await super().unregister_worker(worker_id)
        finally:
            if self.fence is not None:
                await self.fence.release()
                self.fence = None
            self.worker_id = None

    async def update_heartbeat(self, worker_id: int) -> None:
        await self.connector.execute_query_async(_HEARTBEAT, id=worker_id)

    async def prune_stalled_workers(self, seconds_since_heartbeat: float) -> list[int]:
        rows = await self.connector.execute_query_all_async(
            _STALE_WORKERS, seconds=seconds_since_heartbeat
        )
        silent = {int(row["id"]): self.fences.worker(int(row["id"])) for row in rows}
        alive = await held(self.connector, silent.values())
        gone = [worker for worker, key in silent.items() if key not in alive]
        if not gone:
            return []
        pruned = await self.connector.execute_query_all_async(
            _PRUNE, ids=gone, seconds=seconds_since_heartbeat
        )
        return [int(row["id"]) for row in pruned]


def fenced(app: Any, fences: Fences) -> Any:
    """``app`` with its job manager replaced by a :class:`FencedJobManager`."""
    app.job_manager = FencedJobManager(app.connector, fences)
    return app
