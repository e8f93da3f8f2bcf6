"""Runs (begun, finished, left behind by a dead process) and the named leases that keep
two processes from doing one job at once."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, select, update
from sqlalchemy.exc import SQLAlchemyError

from samband import redact
from samband.errors import StoreError
from samband.store import schema as s
from samband.store._database import Database, db_message
from samband.store.rows import dumps, loads, now_iso


class Runs:
    def __init__(self, db: Database) -> None:
        self.db = db

    def begin(self, dry_run: bool) -> int:
        with self.db.tx() as conn:
            self.close_dead()
            result = conn.execute(
                s.runs.insert().values(
                    started_at=now_iso(), status="running", dry_run=dry_run, owner=_owner()
                )
            )
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def close_dead(self) -> int:
        """Record as ``interrupted`` the runs left ``running`` by a process of this machine
        that no longer lives (killed, or the machine restarted); how many."""
        conn = self.db.conn
        host = socket.gethostname()
        dead = []
        for row in conn.execute(
            select(s.runs.c.id, s.runs.c.owner).where(s.runs.c.status == "running")
        ):
            owner_host, _, pid = str(row.owner or "").rpartition(":")
            if owner_host == host and pid.isdigit() and not _alive(int(pid)):
                dead.append(row.id)
        if dead:
            conn.execute(
                update(s.runs)
                .where(s.runs.c.id.in_(dead))
                .values(status="interrupted", finished_at=now_iso())
            )
        return len(dead)

    def continued_pass(self, run_id: int) -> int | None:
        """When the run before ``run_id`` yielded, the first run of that series of turns
        (``run_id`` goes on with it); None otherwise."""
        c = s.runs.c
        row = self.db.conn.execute(
            select(c.id, c.status, c.stats)
            .where(and_(c.id < run_id, c.dry_run.is_(False), c.status != "running"))
            .order_by(c.id.desc())
            .limit(1)
        ).first()
        if row is None or row.status != "yielded":
            return None
        stats = loads(row.stats) or {}
        return int(stats.get("pass_id") or row.id)

    def finish(self, run_id: int, status: str, stats: dict[str, Any]) -> None:
        with self.db.tx() as conn:
            conn.execute(
                update(s.runs)
                .where(s.runs.c.id == run_id)
                # a failure's message may quote a credential: the store keeps none
                .values(finished_at=now_iso(), status=status, stats=dumps(redact.scrub_tree(stats)))
            )


class Leases:
    def __init__(self, db: Database) -> None:
        self.db = db

    def acquire(self, name: str, owner: str, ttl: float) -> bool:
        """Take (or renew) a named lease; False when another live owner holds it."""
        expires = (datetime.now(UTC) + timedelta(seconds=ttl)).isoformat()
        conn = self.db.conn
        try:
            # one statement: two processes that both find a lease expired cannot both
            # take it (a read, then a write, would let them)
            taken = self.db.query(
                'INSERT INTO samband_leases (name, "owner", expires_at) VALUES (?, ?, ?)'
                ' ON CONFLICT (name) DO UPDATE SET "owner" = excluded."owner",'
                " expires_at = excluded.expires_at"
                ' WHERE samband_leases."owner" = excluded."owner"'
                " OR samband_leases.expires_at < ?",
                (name, owner, expires, now_iso()),
            ).rowcount
            conn.commit()
            return bool(taken)
        except SQLAlchemyError as exc:
            conn.rollback()
            raise StoreError(
                f"cannot take the run lease in the store: {db_message(exc)} (is another "
                "program holding the store open for writing?)"
            ) from None

    def release(self, name: str, owner: str) -> None:
        self.db.conn.execute(
            delete(s.leases).where(and_(s.leases.c.name == name, s.leases.c.owner == owner))
        )
        self.db.conn.commit()

    def holder(self, name: str) -> tuple[str, str] | None:
        row = self.db.conn.execute(
            select(s.leases.c.owner, s.leases.c.expires_at).where(s.leases.c.name == name)
        ).first()
        return (row.owner, row.expires_at) if row else None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"
