"""What every stage of a run is given: one :class:`RunContext` (the store, the
connectors, the compiled dataflows, the translator) with its :class:`Ledger` of
outcomes (counts, plan lines, quarantine, waits)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from samband.config.model import Config
from samband.connectors.base import Connector
from samband.engine.batch import Batch
from samband.engine.controls import RunControls
from samband.engine.model import Flow, TypeKey, TypeUse
from samband.engine.translate import Translator
from samband.store.rows import DeadLetter
from samband.store.store import Store


@dataclass
class FlowCounts:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    linked: int = 0
    conflicts: int = 0
    errors: int = 0
    waiting: int = 0
    ambiguous: int = 0
    #: links ended without deleting a record (a record deleted on one side, kept on
    #: the other); and, of the deleted, the target records archived instead
    unlinked: int = 0
    archived: int = 0
    #: writes not sent as writing to their side is off (see engine.controls)
    held: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

    def add(self, other: FlowCounts) -> None:
        for key, value in other.__dict__.items():
            setattr(self, key, getattr(self, key) + value)

    @property
    def writes(self) -> int:
        return self.created + self.updated + self.deleted


@dataclass
class PlanStep:
    """One step of the plan a dry run shows (``sync --dry-run --json``: its
    :meth:`as_dict`; the table output: :attr:`text`)."""

    action: str  # create | update | link | unlink | delete | archive | keep | wait | ...
    text: str
    dataflow: str | None = None
    source: str | None = None  # the source record's ref
    target: str | None = None  # the target record's ref (None for a create)
    # field → {"old": value before, "new": value written}
    changes: dict[str, dict[str, Any]] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "dataflow": self.dataflow,
            "source": self.source,
            "target": self.target,
            "changes": self.changes or {},
            "text": self.text,
        }

    def __str__(self) -> str:
        return self.text


@dataclass
class Ledger:
    """The outcomes of a run as the stages record them: counts per dataflow, the plan a
    dry run shows, messages for the report, and which records wait for a parent."""

    dry_run: bool
    counts_by_flow: dict[str, FlowCounts]
    plan: list[PlanStep]
    messages: list[str]
    # (dataflow, ref) of records waiting for a parent, counted once per run
    waiting: set[tuple[str, str]] = field(default_factory=set)

    def counts(self, flow: Flow) -> FlowCounts:
        return self.counts_by_flow[flow.key]

    def plan_line(
        self,
        line: str,
        action: str,
        flow: Flow | None = None,
        source: str | None = None,
        target: str | None = None,
        changes: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """A step of the plan a dry run shows: ``line`` for people, the rest for scripts."""
        if self.dry_run:
            self.plan.append(
                PlanStep(action, line, flow.key if flow else None, source, target, changes)
            )

    def quarantine(
        self,
        flow: Flow,
        ref: str,
        kind: str,
        reason: str,
        batch: Batch,
        details: object = None,
    ) -> None:
        """Set ``ref`` aside with the reason; the run goes on."""
        self.counts(flow).errors += 1
        batch.dead.append(DeadLetter(ref, flow.key, kind, reason, details))
        self.plan_line(f"quarantine {ref}: {reason}", "quarantine", flow, source=ref)

    def waits(self, flow: Flow, ref: str) -> None:
        """``ref`` waits for its parent (counted once per record and run)."""
        if (flow.key, ref) not in self.waiting:
            self.waiting.add((flow.key, ref))
            self.counts(flow).waiting += 1

    def is_waiting(self, flow: Flow, ref: str) -> bool:
        return (flow.key, ref) in self.waiting


@dataclass
class RunContext:
    """One run in progress, as its stages see it."""

    config: Config
    store: Store
    connector: Callable[[str], Connector]  # the connector of a system, by id
    flows: list[Flow]
    uses: dict[TypeKey, TypeUse]
    # the types whose records refer to a type, and by which path
    children: dict[TypeKey, list[tuple[TypeKey, str]]]
    translator: Translator
    ledger: Ledger
    run_id: int
    dry_run: bool
    keep_alive: Callable[[], None]  # renews the run's leases that are due
    controls: RunControls = field(default_factory=RunControls)  # see engine.controls
