"""Fences: PostgreSQL session-level advisory locks in the queue's database, each held on a
connection of its own for as long as what it guards lasts.

* ``samband-tenant:QUEUE:NAME``: held by the worker running one of the tenant's jobs,
  from before its run is recorded until it ended.  A job whose tenant is fenced elsewhere
  does not run.
* ``samband-worker:QUEUE:ID``: held by worker ``ID`` (procrastinate's worker id) from its
  registration until it stops.

Advisory locks belong to a database, and a queue to a schema (``QUEUE``, its
``current_schema()``): two queues in one database fence apart.

Liveness is the connection, not the heartbeat: a killed process's connections close and
PostgreSQL releases its locks at once; a machine that vanished is noticed by TCP keepalives
on both sides (:data:`KEEPALIVES`: about 25 s); a frozen process (SIGSTOP, swapped out)
keeps its connections, its kernel answering the keepalives, so it keeps its fences until
it resumes or is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from samband.queue.connect import QueueError, conninfo, first_line

log = logging.getLogger(__name__)

# the server probes an idle client after 10 s, 3 times 5 s apart: a vanished machine's
# session ends, and its locks are released, about 25 s after it last spoke
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 10, 5, 3
KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": KEEPALIVE_IDLE,
    "keepalives_interval": KEEPALIVE_INTERVAL,
    "keepalives_count": KEEPALIVE_COUNT,
}
SERVER_KEEPALIVES = (
    f"-c tcp_keepalives_idle={KEEPALIVE_IDLE} -c tcp_keepalives_interval={KEEPALIVE_INTERVAL} "
    f"-c tcp_keepalives_count={KEEPALIVE_COUNT}"
)
WATCH_EVERY = 5.0  # seconds between two checks that a fence's connection is still there

# the advisory locks of this database that are held, as the bigint keys they were taken with
_HELD = """
SELECT (classid::bigint << 32) | objid::bigint AS key
  FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = 1 AND granted
   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND ((classid::bigint << 32) | objid::bigint) = ANY(%(keys)s::bigint[])
"""


def lock_key(text: str) -> int:
    """A stable signed 64-bit key for ``text`` (the same in every process and version)."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass(frozen=True)
class Fences:
    """The fences of one queue: their keys, and taking one."""

    url: str
    queue: str  # the schema of the queue's tables

    @classmethod
    def of(cls, url: str) -> Fences:
        try:
            with psycopg.connect(conninfo(url), autocommit=True) as conn:
                row = conn.execute("SELECT current_schema()").fetchone()
        except psycopg.Error as exc:
            raise QueueError(f"the queue's database cannot be used: {first_line(exc)}") from None
        return cls(url, str(row[0] if row else "public"))

    def tenant(self, name: str) -> int:
        return lock_key(f"samband-tenant:{self.queue}:{name}")

    def worker(self, worker_id: int) -> int:
        return lock_key(f"samband-worker:{self.queue}:{worker_id}")

    async def take(self, key: int, what: str) -> Fence | None:
        """The lock ``key`` held, or None when another session holds it."""
        return await Fence.take(self.url, key, what)


def fence_conninfo(url: str) -> str:
    """The queue's conninfo with TCP keepalives on both sides (the URL's own ``options``
    kept)."""
    params = conninfo_to_dict(conninfo(url))
    options = str(params.get("options") or "")
    params.update(KEEPALIVES, application_name="samband fence")
    params["options"] = f"{options} {SERVER_KEEPALIVES}".strip()
    return psycopg.conninfo.make_conninfo("", **params)


class Fence:
    """One advisory lock held on its own connection; :attr:`lost` once that connection
    failed (the lock is then no longer held)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], key: int, what: str) -> None:
        self.conn = conn
        self.key = key
        self.what = what
        self.lost = False
        self._watch = asyncio.create_task(self._watch_connection(), name=f"fence {what}")

    @classmethod
    async def take(cls, url: str, key: int, what: str) -> Fence | None:
        """The lock ``key`` held, or None when another session holds it."""
        conn = await psycopg.AsyncConnection.connect(fence_conninfo(url), autocommit=True)
        try:
            cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
            row = await cursor.fetchone()
        except BaseException:
            await conn.close()
            raise
        if not (row and row[0]):
            await conn.close()
            return None
        return cls(conn, key, what)

    async def _watch_connection(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY)
            try:
                await self.conn.execute("SELECT 1")
            except psycopg.Error as exc:
                self.lost = True
                log.warning("%s: the queue's database connection is lost (%s)", self.what, exc)
                return

    async def release(self) -> None:
        """Unlock and close (closing alone would release it too: the unlock is prompt)."""
        self._watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._watch
        with contextlib.suppress(psycopg.Error):
            if not self.lost:
                await self.conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        with contextlib.suppress(psycopg.Error):
            await self.conn.close()


async def held(connector: Any, keys: Iterable[int]) -> set[int]:
    """Which of ``keys`` some session holds (read from ``pg_locks``: looking takes no lock,
    so it never makes a worker starting that tenant's job find it taken)."""
    wanted = sorted(set(keys))
    if not wanted:
        return set()
    rows = await connector.execute_query_all_async(_HELD, keys=wanted)
    return {int(row["key"]) for row in rows}
