"""The token bucket: one row per connection key in PostgreSQL, paced on the database's clock.

Each bucket keeps a *theoretical arrival time* (``tat``): the earliest moment the next call
may go (the generic cell rate algorithm, a token bucket of one token).  One ``UPDATE ...
RETURNING`` grants a caller the slot ``greatest(tat, now)`` and moves ``tat`` one interval
on, atomically under the row lock, so callers in any number of processes are spaced one
interval apart whatever they do at the same moment.  The caller only sleeps the *duration*
the database returns: every timestamp is the database's (``clock_timestamp()``), so clocks
that disagree between machines cannot let two calls through together.

Calls are spaced evenly rather than allowed in bursts: an API that counts a sliding window
(PowerOffice GO counts the last second) then never sees more than ``calls`` in any
``period``, however the window falls.

A 429 seen by any worker :meth:`~QuotaDatabase.penalise`-s the bucket: ``tat`` and
``blocked_until`` move past the wait the API asked for, so every worker of that connection
waits.  A worker that was granted a slot before the penalty, and slept for it, checks
``blocked_until`` before it calls and asks again.  A worker killed while holding a slot
has only used it up: the slot is in the past once it would have been used, and nothing
waits for the dead worker.  A missing row (first use, or deleted by hand) is created at
once; a missing table is created on connection.  When the database cannot be reached the
calls stop with :class:`QuotaUnavailable` — never a silent fall back to pacing each process
alone, which would exceed the quota by the number of workers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from sqlalchemy.engine import make_url

from samband.quota._keys import ENV, QuotaSpent, QuotaUnavailable, describe_url

TABLE = "samband_quota_buckets"
_LOCK_ID = 0x5A3B_0014  # the advisory lock taken while creating the table

_CREATE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    key text PRIMARY KEY,
    tat timestamptz NOT NULL,
    blocked_until timestamptz NOT NULL DEFAULT '-infinity',
    slot timestamptz,
    grants bigint NOT NULL DEFAULT 0,
    penalties bigint NOT NULL DEFAULT 0
)
"""

# refused, without taking a slot, while a penalty blocks the bucket past max_wait (a daily
# budget spent); a slot far ahead only because many workers queue for it is granted
_ACQUIRE = f"""
UPDATE {TABLE} SET
    slot = CASE WHEN blocked_until > clock_timestamp() + %(max_wait)s * interval '1 second'
                THEN NULL ELSE greatest(tat, clock_timestamp()) END,
    tat = CASE WHEN blocked_until > clock_timestamp() + %(max_wait)s * interval '1 second'
               THEN tat
               ELSE greatest(tat, clock_timestamp()) + %(interval)s * interval '1 second' END,
    grants = grants + CASE
        WHEN blocked_until > clock_timestamp() + %(max_wait)s * interval '1 second'
        THEN 0 ELSE 1 END
WHERE key = %(key)s
RETURNING slot IS NOT NULL,
    extract(epoch FROM coalesce(slot, blocked_until) - clock_timestamp())::float8
"""

_ENSURE = f"""
INSERT INTO {TABLE} (key, tat) VALUES (%(key)s, clock_timestamp()) ON CONFLICT (key) DO NOTHING
"""

_PENALISE = f"""
INSERT INTO {TABLE} AS b (key, tat, blocked_until, penalties)
VALUES (%(key)s, clock_timestamp() + %(seconds)s * interval '1 second',
        clock_timestamp() + %(seconds)s * interval '1 second', 1)
ON CONFLICT (key) DO UPDATE SET
    tat = greatest(b.tat, clock_timestamp() + %(seconds)s * interval '1 second'),
    blocked_until = greatest(
        b.blocked_until, clock_timestamp() + %(seconds)s * interval '1 second'
    ),
    penalties = b.penalties + 1
"""

_BLOCKED = f"""
SELECT extract(epoch FROM blocked_until - clock_timestamp())::float8 FROM {TABLE}
WHERE key = %(key)s AND blocked_until > '-infinity'
"""

_STATE = f"""
SELECT extract(epoch FROM tat - clock_timestamp())::float8,
       CASE WHEN blocked_until = '-infinity' THEN NULL
            ELSE extract(epoch FROM blocked_until - clock_timestamp())::float8 END,
       grants, penalties
FROM {TABLE} WHERE key = %(key)s
"""

T = TypeVar("T")


@dataclass(frozen=True)
class Grant:
    """What :meth:`QuotaDatabase.state` tells of a bucket (seconds from the database's now)."""

    next_in: float
    blocked_for: float | None
    grants: int
    penalties: int


def _conninfo(url: str) -> str:
    """A libpq URL from a SQLAlchemy one (``postgresql+psycopg://`` → ``postgresql://``)."""
    if url.startswith(("postgresql://", "postgres://")):
        return url
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgres"):
        raise QuotaUnavailable(
            f"{ENV} must name a PostgreSQL database, not {parsed.drivername!r} "
            f"({describe_url(url)})"
        )
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class QuotaDatabase:
    """The buckets of one PostgreSQL database; safe to share between threads, and used
    after ``fork`` it opens its own connection in the child."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: int = 5,
        statement_timeout_ms: int = 5000,
        application_name: str = "samband-quota",
    ):
        self.url = url
        self.where = describe_url(url)
        self._conninfo = _conninfo(url)
        self._connect_timeout = connect_timeout
        self._statement_timeout_ms = statement_timeout_ms
        self._application_name = application_name
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._pid = os.getpid()

    # -- the buckets -----------------------------------------------------------------
    def acquire(self, key: str, interval: float, *, max_wait: float = 300.0) -> float:
        """Take the next slot of ``key`` (calls ``interval`` seconds apart); return the
        seconds to wait before calling.  Raises :class:`QuotaSpent` without taking a slot
        when a penalty blocks the bucket for more than ``max_wait``."""
        params = {"key": key, "interval": float(interval), "max_wait": float(max_wait)}

        def run(conn: psycopg.Connection[Any]) -> tuple[bool, float]:
            row = conn.execute(_ACQUIRE, params).fetchone()
            if row is None:
                conn.execute(_ENSURE, params)
                row = conn.execute(_ACQUIRE, params).fetchone()
            assert row is not None
            return bool(row[0]), float(row[1])

        granted, wait = self._run(run)
        if not granted:
            raise QuotaSpent(key, wait)
        return max(wait, 0.0)

    def blocked_for(self, key: str) -> float:
        """Seconds that ``key`` stays blocked by a penalty (0: not blocked)."""

        def run(conn: psycopg.Connection[Any]) -> float:
            row = conn.execute(_BLOCKED, {"key": key}).fetchone()
            return float(row[0]) if row is not None else 0.0

        return max(self._run(run), 0.0)

    def penalise(self, key: str, seconds: float) -> None:
        """No call of ``key`` for ``seconds`` from now (the database's now), in any worker."""
        params = {"key": key, "seconds": max(float(seconds), 0.0)}
        self._run(lambda conn: conn.execute(_PENALISE, params))

    def state(self, key: str) -> Grant | None:
        def run(conn: psycopg.Connection[Any]) -> Grant | None:
            row = conn.execute(_STATE, {"key": key}).fetchone()
            if row is None:
                return None
            return Grant(float(row[0]), None if row[1] is None else float(row[1]), row[2], row[3])

        return self._run(run)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    # -- the connection --------------------------------------------------------------
    def _run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``work`` on the connection; a broken connection is opened again once (a
        restarted server), a missing table created again; then QuotaUnavailable."""
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection()
                try:
                    return work(conn)
                except psycopg.errors.UndefinedTable:
                    self._create_table(conn)
                    if attempt == 2:
                        raise self._unavailable("its table vanished twice") from None
                except psycopg.Error as exc:
                    self._drop()
                    if attempt == 2:
                        raise self._unavailable(_reason(exc)) from None
            raise AssertionError("unreachable")

    def _connection(self) -> psycopg.Connection[Any]:
        if self._pid != os.getpid():
            # forked: the parent's socket is not ours to use or to close
            self._conn, self._pid = None, os.getpid()
        if self._conn is not None and not self._conn.closed:
            return self._conn
        try:
            conn = psycopg.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=self._connect_timeout,
                application_name=self._application_name,
            )
            conn.execute(
                "SELECT set_config('statement_timeout', %s, false)",
                (str(int(self._statement_timeout_ms)),),
            )
            # a slot is worth milliseconds: waiting for the WAL flush of each (a disk sync)
            # would cost more than the slot; a crash of the server forgets the last few
            # grants at most, which the APIs' own margins absorb
            conn.execute("SET synchronous_commit = off")
            self._create_table(conn)
        except psycopg.Error as exc:
            raise self._unavailable(_reason(exc)) from None
        self._conn = conn
        return conn

    def _create_table(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            conn.execute(_CREATE)

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
        self._conn = None

    def _unavailable(self, reason: str) -> QuotaUnavailable:
        return QuotaUnavailable(
            f"the quota database {self.where} ({ENV}) cannot be used: {reason}; API calls "
            "stop rather than exceed the quota the workers share — start the database, or "
            f"unset {ENV} to pace each process on its own (one worker only)"
        )


def _reason(exc: Exception) -> str:
    # the first line of libpq's message names host and cause, never the password
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
