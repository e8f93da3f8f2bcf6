"""Named leases in the store, for processes that share it.

* ``samband-run``: one process plans and applies at a time.
* ``collect:SYSTEM:TYPE``: one process reads an entity type at a time, so workers
  (``samband worker``) divide the reading between them.  The process that plans holds
  every type's lease from its reading through the end of its plan: it never plans
  against a type another process is half-way through reading (records missing from the
  merge-criteria index would be created again), and no snapshot is stored underneath it
  (a page read before one of its writes and stored after would look like an edit).

A lease expires unless renewed; one whose owner is a dead process on this machine is
taken over at once.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from samband.errors import RunLocked, SambandError
from samband.store.store import Store

RUN_LEASE = "samband-run"
LEASE_TTL = 300.0
POLL = 0.25  # seconds between tries for a lease another process holds


def collect_lease(system: str, etype: str) -> str:
    return f"collect:{system}:{etype}"


class Leases:
    """The leases one owner (a process, or an engine within it) holds."""

    def __init__(self, owner: str, ttl: float = LEASE_TTL) -> None:
        self.owner = owner
        self.ttl = ttl
        self.held: dict[str, float] = {}  # name → when last taken or renewed (monotonic)

    def claim(self, store: Store, name: str) -> bool:
        """Take ``name`` unless another live owner holds it."""
        if store.acquire_lease(name, self.owner, self.ttl):
            self.held[name] = time.monotonic()
            return True
        holder = store.lease_holder(name)
        if holder and owner_is_dead(holder[0]):
            store.release_lease(name, holder[0])  # stale: its process was killed
            if store.acquire_lease(name, self.owner, self.ttl):
                self.held[name] = time.monotonic()
                return True
        return False

    def renew(self, store: Store, name: str) -> None:
        """Extend a held lease once a tenth of its lifetime has passed (each renewal is a
        committed write, so not on every call)."""
        taken = self.held.get(name)
        if taken is None or time.monotonic() - taken < self.ttl / 10:
            return
        if not store.acquire_lease(name, self.owner, self.ttl):
            # it ran out (the process stalled longer than its lifetime) and another took it:
            # going on would make two processes plan at once
            self.held.pop(name, None)
            holder = store.lease_holder(name)
            raise RunLocked(
                f"this process lost its lease {name} to {holder[0] if holder else 'another'}"
                f" (it was not renewed within {self.ttl:.0f} s); the run stops here, what it"
                " committed is kept and the other process goes on from there"
            )
        self.held[name] = time.monotonic()

    def renew_all(self, store: Store) -> None:
        for name in list(self.held):
            self.renew(store, name)

    def claim_all(
        self, store: Store, names: list[str], wait: float, stop: Callable[[], bool]
    ) -> list[str]:
        """Take every lease of ``names``, in their order, waiting up to ``wait`` seconds
        for the ones other owners hold; the ones still held by others (those taken are
        kept: release them if the set is not complete)."""
        deadline = time.monotonic() + wait
        missing = [name for name in names if not self.claim(store, name)]
        while missing and time.monotonic() < deadline and not stop():
            time.sleep(min(POLL, max(deadline - time.monotonic(), 0)))
            missing = [name for name in missing if not self.claim(store, name)]
        return missing

    def release(self, store: Store, name: str) -> None:
        self.held.pop(name, None)
        try:
            store.release_lease(name, self.owner)
        except (SambandError, SQLAlchemyError):
            # left behind, it is taken over when it expires (or at once: dead owner)
            with contextlib.suppress(SQLAlchemyError):
                store.conn.rollback()

    def release_all(self, store: Store) -> None:
        for name in list(self.held):
            self.release(store, name)


def owner_is_dead(owner: str) -> bool:
    """Whether ``owner`` (``host:pid:…``) is a process of this machine that has ended."""
    parts = owner.split(":")
    if len(parts) < 2 or parts[0] != os.uname().nodename:
        return False
    try:
        pid = int(parts[1])
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
