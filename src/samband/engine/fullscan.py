"""The full-scan guard: a complete read that returns far fewer records than the type had
is taken as a read cut short, not as deletions.

A type without a change feed is read in full, and a record the read does not return is
taken as deleted.  A read cut short (an API that pages differently than the connector
assumes and answers page one only, a query that answers an empty list for a moment) would
then delete, unlink or archive everything it missed, in the other systems too.  So when a
complete read returns fewer than ``min_full_scan_share`` of the records expected, the
records it did not return are *held*: not taken as deleted, and the type is read in full
again next run.  Everything else the read returned (new and changed records) is stored and
synced as usual.  A person confirms the deletions with ``samband sync --confirm-deletions
SYSTEM.TYPE`` (``Engine.sync(confirm_deletions=[...])``); the store keeps the hold and the
confirmation.

The records expected are those the store holds as live: what the last complete read
returned (kept in the store, and shown beside), changed by every record written, read from
a change feed or confirmed deleted since.  Compared with the stored count alone, that does
not hold a read after deletions the system reported or the engine made itself, and does
not let pass a read cut short after many records were created since.

How it differs from the circuit breaker (:mod:`samband.engine.breaker`): the breaker
judges what a dataflow's *plan* would do to its linked pairs and refuses the whole run;
this guard judges the *read* of one type, before any plan, and holds only the deletions
that read would imply, for every connector and whether or not the records are linked.
``--force`` overrides the breaker, not this guard.  Both leave types too small for shares
to mean anything alone (fewer than ``MIN_WIPE`` records).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from samband.config.model import Config
from samband.engine.floors import MIN_WIPE
from samband.engine.model import TypeKey
from samband.store.store import Store


@dataclass(frozen=True)
class HeldDeletions:
    """A complete read held back: ``unseen`` records it did not return are kept."""

    type: str  # SYSTEM.TYPE
    read: int  # records the read returned
    expected: int  # records it was compared with: the live records the store holds
    last_complete: int | None  # records the last complete read returned (None: unknown)
    unseen: int
    share: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def message(self) -> str:
        last = (
            f"the last complete read returned {self.last_complete}"
            if self.last_complete is not None
            else "no complete read was recorded before"
        )
        return (
            f"{self.type}: deletions held: a complete read returned {self.read} records, "
            f"fewer than {self.share:.0%} of the {self.expected} the store holds ({last}), so the "
            f"{self.unseen} records it did not return are not taken as deleted; what it "
            "returned is synced. A read cut short (paging, an empty answer) looks like "
            "this: check the records in the system. If they were deleted, run "
            f"`samband sync --confirm-deletions {self.type}` (the circuit breaker still "
            "counts them: if it trips, add --force); otherwise nothing needs doing (the "
            f"next run reads {self.type} in full again)."
        )


class FullScanGuard:
    """Judges the complete reads of one run (see the module's text)."""

    def __init__(
        self, config: Config, store: Store, run_id: int | None, confirmed: Iterable[str] = ()
    ) -> None:
        self.config, self.store, self.run_id = config, store, run_id
        self.confirmed = set(confirmed)
        self.held: list[HeldDeletions] = []
        self.confirmations: list[dict[str, Any]] = []
        self.messages: list[str] = []

    def share(self, system: str) -> float:
        configured = self.config.systems[system].min_full_scan_share
        return self.config.defaults.min_full_scan_share if configured is None else configured

    def complete(self, key: TypeKey, read: int) -> None:
        """A complete read without deletions to judge (a type's first read): its count is
        kept as the last complete read."""
        self.store.complete_full_scan(*key, read, self.run_id)

    def take_deletions(self, key: TypeKey, read: int, known: int, unseen: int) -> bool:
        """Whether the ``unseen`` records a complete read of ``read`` records did not
        return are deleted (``known``: the live records the store holds, those the read
        returned included).  Records the outcome in the store."""
        system, etype = key
        name = f"{system}.{etype}"
        last = self.store.full_scan(system, etype)
        last_count = last.complete_count if last is not None else None
        expected = known
        share = self.share(system)
        short = unseen > 0 and share > 0 and expected >= MIN_WIPE and read < share * expected
        if not short:
            if name in self.confirmed:
                self.messages.append(
                    f"{name}: --confirm-deletions: the complete read returned {read} of "
                    f"{expected} records, which is not held; {unseen} records it did not return "
                    "are deleted as usual"
                )
            self.store.complete_full_scan(system, etype, read, self.run_id)
            return True
        if name in self.confirmed:
            self.store.confirm_full_scan(system, etype, read, self.run_id)
            confirmation = {
                "type": name,
                "read": read,
                "expected": expected,
                "last_complete": last_count,
                "deleted": unseen,
            }
            self.confirmations.append(confirmation)
            self.messages.append(
                f"{name}: deletions confirmed (--confirm-deletions): the complete read returned "
                f"{read} of {expected} records; the {unseen} records it did not return are taken "
                "as deleted"
            )
            return True
        held = HeldDeletions(name, read, expected, last_count, unseen, share)
        self.store.hold_full_scan(system, etype, read, expected, unseen, self.run_id)
        self.held.append(held)
        self.messages.append(held.message())
        return False
