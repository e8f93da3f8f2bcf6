"""The queue's PostgreSQL database: its URL, and its schema made once (procrastinate's
tables and Samband's log of tenant runs), also when several workers start at once."""

from __future__ import annotations

from typing import Any

import psycopg

from samband.errors import SambandError

# taken while the schema is made, so two workers starting at once make it once
_SCHEMA_LOCK = 0x5A4D_0016

RUNS_TABLE = """
CREATE TABLE IF NOT EXISTS samband_tenant_runs (
    id bigserial PRIMARY KEY,
    tenant text NOT NULL,
    job_id bigint,
    task text NOT NULL,
    worker text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz,
    status text NOT NULL DEFAULT 'running',
    message text
);
CREATE INDEX IF NOT EXISTS samband_tenant_runs_tenant ON samband_tenant_runs (tenant, id);
"""


class QueueError(SambandError):
    """The queue's database cannot be used."""


def conninfo(url: str) -> str:
    """A libpq URL from a store-style one (``postgresql+psycopg://`` → ``postgresql://``)."""
    scheme, sep, rest = url.partition("://")
    base = scheme.split("+", 1)[0]
    if not sep or base not in ("postgresql", "postgres"):
        raise QueueError(
            f"--queue {scheme}://…: the queue is a PostgreSQL database; give "
            "postgresql://USER@HOST:PORT/DATABASE"
        )
    return f"postgresql://{rest}"


def connector(url: str, **pool: Any) -> Any:
    from procrastinate import PsycopgConnector

    return PsycopgConnector(conninfo=conninfo(url), **pool)


def ensure_schema(url: str) -> bool:
    """Make the queue's tables unless they are there; whether they were made now."""
    from procrastinate.schema import SchemaManager

    try:
        with psycopg.connect(conninfo(url), autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
            try:
                row = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
                made = row is None or row[0] is None
                if made:
                    with conn.transaction():
                        conn.execute(SchemaManager.get_schema().encode())
                conn.execute(RUNS_TABLE.encode())
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))
    except psycopg.Error as exc:
        raise QueueError(f"the queue's database cannot be used: {first_line(exc)}") from None
    return made


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
