"""One run: collect → link → plan → apply → commit.  The :class:`Engine` owns it; the
run itself (:class:`_Run`) only puts the stages in order: each stage is a module of its
own, given the run's :class:`~samband.engine.context.RunContext`."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from samband import redact
from samband.config.env import default_environ, references, resolve, resolve_all
from samband.config.loader import base_dir
from samband.config.model import Config
from samband.config.validate import load_valid
from samband.connectors.base import Connector, EntityType
from samband.connectors.registry import create_connector
from samband.durations import parse_interval as parse_interval  # the CLI's --every
from samband.engine._gc import fewer_collections
from samband.engine.apply import Apply
from samband.engine.batch import Batch
from samband.engine.breaker import CircuitBreaker
from samband.engine.collect import Collector, CollectStats, read_again
from samband.engine.context import FlowCounts, Ledger, PlanStep, RunContext
from samband.engine.controls import RunControls, prepare, select_flows
from samband.engine.fullscan import FullScanGuard
from samband.engine.leases import RUN_LEASE, Leases, collect_lease
from samband.engine.link import Linker
from samband.engine.model import (
    Flow,
    TypeKey,
    TypeUse,
    children_of,
    compile_flows,
    type_order,
)
from samband.engine.reconcile import (
    build_index,
    check_same_config,
    reconcile_dataflows,
    renamed_systems,
    unbuilt_indexes,
)
from samband.engine.translate import Translator
from samband.errors import (
    AuthError,
    CircuitBreakerTripped,
    ConfigError,
    ConnectorError,
    Problem,
    QuotaExhausted,
    RunLocked,
    SambandError,
    StoreError,
    UnreachableError,
)
from samband.store.rows import Ref
from samband.store.store import Store, now_iso, store_message

log = logging.getLogger(__name__)


class Progress(Protocol):
    def phase(self, name: str, total: int | None = None) -> None: ...
    def advance(self, count: int = 1) -> None: ...
    def done(self) -> None: ...


def system_health(exc: ConnectorError) -> dict[str, str]:
    """What a system's failure says of its health: ``authentication failed``, ``rate
    limited`` (its quota is spent), ``unreachable``, or ``failing`` (an answer that breaks
    its contract), with the message."""
    if isinstance(exc, AuthError):
        health = "authentication failed"
    elif isinstance(exc, QuotaExhausted):
        health = "rate limited"
    elif isinstance(exc, UnreachableError):
        health = "unreachable"
    else:
        health = "failing"
    return {"health": health, "message": str(exc)}


class _NoProgress:
    def phase(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, count: int = 1) -> None:
        pass

    def done(self) -> None:
        pass


@dataclass
class RunReport:
    """What one run did.  ``to_dict()`` is what ``samband sync --json`` prints."""

    run_id: int | None
    dry_run: bool
    started_at: str
    finished_at: str | None = None
    status: str = "running"
    dataflows: dict[str, FlowCounts] = field(default_factory=dict)
    collected: dict[str, dict[str, int]] = field(default_factory=dict)
    api_calls: int = 0
    api_calls_by_system: dict[str, int] = field(default_factory=dict)
    plan: list[PlanStep] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    resume_at: str | None = None
    # complete reads cut short whose deletions wait for confirmation, and those confirmed
    held_deletions: list[dict[str, Any]] = field(default_factory=list)
    confirmed_deletions: list[dict[str, Any]] = field(default_factory=list)
    #: writes (creates, updates, deletes) the store holds for good: an interrupted run
    #: keeps these, the rest of its last chunk is rolled back
    committed_writes: int = 0
    #: the dataflows the run planned (not paused; the ones asked for and their parents)
    ran: list[str] = field(default_factory=list)
    #: system → {"health": ..., "message": ...} of a system this run could not use
    #: (see :func:`system_health`); the service's overview shows it
    system_errors: dict[str, dict[str, str]] = field(default_factory=dict)
    #: the first run of a series of turns that yielded (status ``yielded``), or None
    pass_id: int | None = None

    @property
    def failed(self) -> bool:
        return self.status not in ("ok", "dry-run", "stopped", "paused", "yielded")

    @property
    def yielded(self) -> bool:
        """The run gave its turn up between two chunks (``max_chunks``/``max_seconds``):
        everything done is committed, and the next run goes on with what is queued."""
        return self.status == "yielded"

    @property
    def interrupted(self) -> bool:
        return self.status in ("interrupted", "stopped")

    @property
    def seconds(self) -> float | None:
        """How long the run took (None while it runs)."""
        if self.finished_at is None:
            return None
        started = datetime.fromisoformat(self.started_at)
        return (datetime.fromisoformat(self.finished_at) - started).total_seconds()

    @property
    def changed(self) -> bool:
        """Whether the run did or found anything (a ``run --every`` cycle prints its
        table only then)."""
        counts = self.total().as_dict()
        return any(counts.values()) or bool(self.messages)

    def one_line(self) -> str:
        """The run in one line, for logs: status, duration, counts, API calls."""
        counts = self.total()
        parts = [
            f"{value} {name}"
            for name, value in counts.as_dict().items()
            if value or name in ("created", "updated", "deleted")
        ]
        took = f" in {self.seconds:.1f}s" if self.seconds is not None else ""
        by_system = ", ".join(f"{s} {n}" for s, n in self.api_calls_by_system.items() if n)
        calls = f"; {self.api_calls} API calls" + (f" ({by_system})" if by_system else "")
        return f"{self.status}{took}: {', '.join(parts)}{calls}"

    def next_steps(self, config: str = "FILE") -> list[str]:
        """The commands that show what needs attention after this run."""
        total = self.total()
        steps = []
        if total.errors:
            steps.append(
                f"{total.errors} record(s) quarantined: see `samband errors -c {config}`, "
                f"then `samband retry -c {config}` once fixed"
            )
        if total.conflicts:
            steps.append(f"{total.conflicts} conflict(s): see `samband conflicts -c {config}`")
        if total.ambiguous:
            steps.append(f"{total.ambiguous} ambiguous match(es): see `samband errors -c {config}`")
        return steps

    def continue_hint(self) -> str:
        """What an interrupted or stopped run tells the user."""
        return f"{self.committed_writes} writes committed; run again to continue"

    def total(self) -> FlowCounts:
        total = FlowCounts()
        for counts in self.dataflows.values():
            total.add(counts)
        return total

    @property
    def writes(self) -> int:
        return self.total().writes

    def to_dict(self) -> dict[str, Any]:
        total = self.total().as_dict()
        return {
            **total,
            "api_calls": self.api_calls,
            "api_calls_by_system": self.api_calls_by_system,
            "run_id": self.run_id,
            "status": self.status,
            "dry_run": self.dry_run,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "dataflows": {key: counts.as_dict() for key, counts in self.dataflows.items()},
            "collected": self.collected,
            "plan": [step.as_dict() for step in self.plan],
            "messages": self.messages,
            "resume_at": self.resume_at,
            "held_deletions": self.held_deletions,
            "confirmed_deletions": self.confirmed_deletions,
            "committed_writes": self.committed_writes,
            "ran": self.ran,
            "pass_id": self.pass_id,
            "seconds": self.seconds,
            "system_errors": self.system_errors,
        }


class Engine:
    """Runs the dataflows of a config.  Use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        config: Config,
        *,
        connectors: Mapping[str, Connector] | None = None,
        store_url: str | None = None,
        environ: Mapping[str, str] | None = None,
        state_dir: str | None = None,
        chunk_size: int = 500,
        max_rounds: int = 12,
        lease_wait: float = 60.0,
    ) -> None:
        self.config = config
        self.base_dir = base_dir(config)
        self.environ = default_environ() if environ is None else environ
        self.store_url = store_url or config.store
        self.state_dir = state_dir or str(Path(self.base_dir) / ".samband")
        self.chunk_size = chunk_size
        self.max_rounds = max_rounds
        # how long the planning process waits for a type another process is reading
        self.lease_wait = lease_wait
        self._connectors: dict[str, Connector] = dict(connectors or {})
        self._checked: set[str] = set()
        self._store: Store | None = None
        self.leases = Leases(f"{os.uname().nodename}:{os.getpid()}:{id(self)}")
        self.flows: list[Flow] = []
        self.uses: dict[TypeKey, TypeUse] = {}
        self._compiled = False
        #: the report of the last run, also when it ended in an exception (interrupted)
        self.last_report: RunReport | None = None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **options: Any) -> Engine:
        """An engine for the config file at ``path`` (validated first)."""
        return cls(load_valid(path).config, **options)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.flush_systems()
        if self._store is not None:
            try:
                self.leases.release_all(self._store)
            finally:
                self._store.close()
                self._store = None
        for connector in self._connectors.values():
            try:
                connector.close()
            except Exception:
                pass

    # -- set-up -------------------------------------------------------------------
    def systems_in_use(self) -> list[str]:
        seen: list[str] = []
        for flow in self.config.dataflows:
            for system in (flow.source_system, flow.target_system):
                if system not in seen:
                    seen.append(system)
        return seen

    def connector(self, system_id: str) -> Connector:
        if system_id not in self._connectors:
            system = self.config.systems[system_id]
            resolved = system.model_copy(deep=True)
            extra = resolved.model_extra if resolved.model_extra is not None else {}
            for key, value in list(extra.items()):
                if isinstance(value, str):
                    extra[key] = resolve(value, self.environ, system=system_id)
                    # a secret in a setting (base_url: ...?key=${CRM_KEY}) is masked too
                    redact.remember(
                        self.environ.get(name)
                        for name in references(value)
                        if redact.is_secret_variable(name)
                    )
            extra.setdefault("base_dir", self.base_dir)
            credentials = resolve_all(system.credentials, self.environ, system=system_id)
            redact.remember(credentials.values())  # masked wherever a log line holds one
            self._connectors[system_id] = create_connector(
                system_id,
                resolved,
                credentials,
                state_dir=self.state_dir,
                overlap_seconds=self.config.defaults.overlap_seconds,
            )
        return self._connectors[system_id]

    def compile(self) -> None:
        if self._compiled:
            return
        schemas: dict[str, dict[str, EntityType]] = {}
        for system_id in self.systems_in_use():
            try:
                schemas[system_id] = self.connector(system_id).entity_types()
            except ValueError as exc:
                # a setting the config's validation let through (a REST property of an
                # unknown type): a config problem, reported as one
                where = str(self.config.path or "the config")
                raise ConfigError(
                    [Problem(where, 1, 1, f"systems.{system_id}: {exc}", "fix it in the config")]
                ) from None
        self.flows, self.uses = compile_flows(self.config, schemas)
        self.order = type_order(self.flows, self.uses)
        self.children = children_of(self.flows)
        for key, use in self.uses.items():
            connector = self.connector(key[0])
            wanted = set(use.paths)
            et = use.entity_type
            wanted.update(p for p in (et.id_field, et.modified_field, et.external_ref_field) if p)
            connector.wanted_fields[key[1]] = wanted
        self._compiled = True

    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.store_url, base_dir=self.base_dir)
            self._store.before_commit(self.flush_systems)
        return self._store

    def flush_systems(self) -> None:
        """Make the writes the systems answered durable there (see
        :meth:`Connector.flush`): called before every store commit, so the store never
        holds a link, snapshot or audit row of a write its system could still lose."""
        for connector in self._connectors.values():
            connector.flush()

    # -- the run --------------------------------------------------------------------
    def sync(
        self,
        *,
        dry_run: bool = False,
        force: bool = False,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
        shared: bool = False,
        confirm_deletions: Iterable[str] = (),
        dataflows: Iterable[str] | None = None,
        max_chunks: int | None = None,
        max_seconds: float | None = None,
    ) -> RunReport:
        """One run.  ``dry_run`` plans without any write call and rolls back the store.

        ``max_chunks``/``max_seconds`` make the run a turn that yields: once it has
        planned and applied that many chunks that moved something (or worked that long),
        it stops between two chunks with status ``yielded``.  Everything done is
        committed and the rest stays queued, so the next run goes on where this one
        stopped (a job queue re-queues it behind other tenants' runs).

        ``shared`` is a worker's turn (see :meth:`work`): each entity type is read only if
        no other process is reading it now, and the plan is made only if no other process
        is planning; status ``collected`` says another process plans what was read.

        ``confirm_deletions`` names types (``SYSTEM.TYPE``) whose complete read this run
        is taken as it is even if it returned far fewer records than the type had: the
        records it does not return are deleted (see :mod:`samband.engine.fullscan`).

        ``dataflows`` (keys) runs only those, and the dataflows their references depend
        on; a paused dataflow is never run (see :mod:`samband.engine.controls`)."""
        self.compile()
        confirmed = self._confirmable(confirm_deletions)
        progress = progress or _NoProgress()
        stop = should_stop or (lambda: False)
        store = Store.preview(self.store_url, base_dir=self.base_dir) if dry_run else self.store()
        report = RunReport(
            None, dry_run, now_iso(), dataflows={f.key: FlowCounts() for f in self.flows}
        )
        calls_before = {s: c.stats.api_calls for s, c in self._connectors.items()}
        for system in self.systems_in_use():
            # a dry run changes nothing anywhere: reads write no bookkeeping either
            self.connector(system).dry_run = dry_run
        wanted = None if dataflows is None else list(dataflows)
        run = _Run(
            self,
            store,
            report,
            progress,
            stop,
            shared=shared and not dry_run,
            confirmed=confirmed,
            budget=TurnBudget(max_chunks, max_seconds),
        )
        interrupted = False
        try:
            if not force:
                # a renamed system first: its message is the more precise of the two
                self._check_renamed(store)
                check_same_config(store, self.flows)
            if not dry_run and not shared:
                self._take_lease(store)
            run.select(wanted)
            report.run_id = store.begin_run(dry_run)
            if not dry_run:
                report.pass_id = store.continued_pass(report.run_id)
            log.info("run %s begun%s", report.run_id, " (dry run)" if dry_run else "")
            self._check_systems(store)
            with fewer_collections():
                run.execute(force)
            report.status = run.status()
        except QuotaExhausted as exc:
            report.system_errors[exc.system] = system_health(exc)
            report.status = "paused"
            report.resume_at = exc.resume_at.isoformat() if exc.resume_at else None
            report.messages.append(f"{exc}; all state is saved: run again then to go on")
        except (ConnectorError, CircuitBreakerTripped, RunLocked) as exc:
            report.status = "failed"
            report.messages.append(str(exc))
            if isinstance(exc, ConnectorError):
                report.system_errors[exc.system] = system_health(exc)
            if isinstance(exc, CircuitBreakerTripped | RunLocked):
                raise
        except SQLAlchemyError as exc:
            # The store failed mid-run (locked, disk full, server restarted): what was
            # committed is consistent, the rest is rolled back and done again next run.
            interrupted = True
            raise StoreError(
                f"the store failed during the run ({store_message(exc)}); everything up to "
                "the last commit is kept: fix the cause and run again to go on"
            ) from None
        except Exception as exc:
            # A defect (an error no stage expected): what was committed is kept, the rest
            # is rolled back, and the run is recorded as failed with the reason.
            with contextlib.suppress(SQLAlchemyError):
                store.conn.rollback()
            report.status = "failed"
            report.messages.append(f"the run failed: {type(exc).__name__}: {exc}")
            raise
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM, a simulated crash): keep only what was committed.
            interrupted = True
            report.messages.append(f"interrupted: {report.continue_hint()}")
            raise
        finally:
            report.finished_at = now_iso()
            for system, connector in self._connectors.items():
                used = connector.stats.api_calls - calls_before.get(system, 0)
                report.api_calls_by_system[system] = used
            report.api_calls = sum(report.api_calls_by_system.values())
            log.info("run %s: %s", report.run_id, report.one_line())
            progress.done()
            self.last_report = report
            if interrupted:
                with contextlib.suppress(SQLAlchemyError):
                    store.conn.rollback()
            try:
                if report.run_id is not None and not dry_run:
                    if interrupted:
                        # what was committed stays; the next run goes on from there
                        report.status = "interrupted"
                        with contextlib.suppress(Exception):
                            store.finish_run(report.run_id, report.status, report.to_dict())
                    else:
                        store.finish_run(report.run_id, report.status, report.to_dict())
            finally:
                if dry_run:
                    store.close()
                else:
                    self.leases.release_all(store)
        return report

    def _confirmable(self, names: Iterable[str]) -> set[str]:
        """The ``SYSTEM.TYPE`` names given to confirm deletions, each a type the dataflows
        read."""
        names = set(names)
        known = {f"{system}.{etype}" for system, etype in self.uses}
        unknown = sorted(names - known)
        if unknown:
            raise SambandError(
                f"--confirm-deletions {unknown[0]}: no dataflow reads that type; name one of "
                f"{', '.join(sorted(known))} (as `samband status` lists held deletions)"
            )
        return names

    def _check_renamed(self, store: Store) -> None:
        """Refuse a run whose config renamed a system the store has links of (see
        :func:`~samband.engine.reconcile.renamed_systems`), before anything is written."""
        reason = renamed_systems(store, self.systems_in_use(), self.uses)
        if reason is not None:
            where = self.config.path or "the config"
            raise ConfigError([Problem(str(where), 1, 1, reason)])

    def _check_systems(self, store: Store) -> None:
        """Check URL and credentials before any work — once per process, and only for
        systems not yet read through: a system whose every type has a stored cursor has
        answered before, and a failure now is reported as clearly by its first read."""
        for system_id in self.systems_in_use():
            if system_id in self._checked:
                continue
            types = [key for key in self.uses if key[0] == system_id]
            proven = bool(types) and all(
                store.get_cursor(*key)[1] == self.uses[key].signature for key in types
            )
            if not proven:
                self.connector(system_id).check()
            self._checked.add(system_id)

    def work(
        self,
        *,
        force: bool = False,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> RunReport:
        """One turn of a worker among several sharing this store (``samband worker``).

        Reading is divided by entity type: a type another worker is reading now is left to
        it.  Then, if no other worker is planning, this one plans and applies everything
        queued in the store, whoever read it; otherwise the report's status is
        ``collected``."""
        return self.sync(force=force, progress=progress, should_stop=should_stop, shared=True)

    def _take_lease(self, store: Store) -> None:
        if self.leases.claim(store, RUN_LEASE):
            return
        owner, until = store.lease_holder(RUN_LEASE) or ("?", "?")
        raise RunLocked(
            f"another samband run ({owner}) is using this store; it holds the lease until "
            f"{until}. Wait for it to finish (or for the lease to expire)."
        )


class TurnBudget:
    """How much one run may do before it yields: ``max_chunks`` chunks that moved
    something, or ``max_seconds`` of work (None: no limit).  At least one chunk that moved
    something is done in every turn, so that a series of turns always ends."""

    def __init__(self, max_chunks: int | None = None, max_seconds: float | None = None) -> None:
        if max_chunks is not None and max_chunks < 1:
            raise SambandError(f"max_chunks is at least 1, not {max_chunks}")
        if max_seconds is not None and max_seconds <= 0:
            raise SambandError(f"max_seconds is more than 0, not {max_seconds}")
        self.max_chunks, self.max_seconds = max_chunks, max_seconds
        self.started = time.monotonic()
        self.chunks = 0

    def count(self, *, moved: bool) -> None:
        if moved:
            self.chunks += 1

    def spent(self) -> bool:
        if self.chunks == 0:
            return False
        if self.max_chunks is not None and self.chunks >= self.max_chunks:
            return True
        return self.max_seconds is not None and time.monotonic() - self.started >= self.max_seconds


class _Run:
    """One run in progress: the order of its stages."""

    def __init__(
        self,
        engine: Engine,
        store: Store,
        report: RunReport,
        progress: Progress,
        stop: Callable[[], bool],
        *,
        shared: bool = False,
        confirmed: Iterable[str] = (),
        budget: TurnBudget | None = None,
    ) -> None:
        self.engine, self.store, self.report, self.progress = engine, store, report, progress
        self.budget = budget or TurnBudget()
        self.yielded = False
        self.confirmed = set(confirmed)  # types whose deletions a person confirmed
        self.stop = stop
        self.stopped = False
        self.flows = engine.flows  # the dataflows this run plans (see select)
        self.order = engine.order  # the types they read, in order
        self.shared = shared  # a worker's turn: see Engine.sync
        self.collect_only = False
        self.dry_run = store.dry_run
        self.collected: dict[TypeKey, CollectStats] = {}
        self.ledger = Ledger(self.dry_run, report.dataflows, report.plan, report.messages)
        self.controls = RunControls()
        self.wanted: list[str] | None = None  # the dataflows asked for (None: all)

    def select(self, wanted: list[str] | None, *, report: bool = False) -> None:
        """Read the dataflows' controls and choose the dataflows this run plans (again
        after the dataflows are reconciled: a renamed one keeps its controls)."""
        self.wanted = wanted
        with self.store.tx():
            rows = self.store.controls.all()
        active, messages = select_flows(self.engine.flows, rows, wanted)
        self.controls = RunControls(rows, active)
        if report:
            self.report.messages.extend(messages)
        self.report.ran = [f.key for f in self.engine.flows if f.key in active]
        self.flows = [f for f in self.engine.flows if f.key in active]
        used = {key for flow in self.flows for key in (flow.source, flow.target)}
        self.order = [key for key in self.engine.order if key in used]

    def context(self) -> RunContext:
        """What the stages are given (the run has its id once begun)."""
        engine = self.engine
        return RunContext(
            config=engine.config,
            store=self.store,
            connector=engine.connector,
            flows=engine.flows,
            uses=engine.uses,
            children=engine.children,
            translator=Translator(self.store),
            ledger=self.ledger,
            run_id=self.report.run_id or 0,
            dry_run=self.dry_run,
            keep_alive=self.keep_alive,
            controls=self.controls,
            pass_id=self.report.pass_id or 0,
        )

    def status(self) -> str:
        """How the run ended, when it ended without an error."""
        if self.dry_run:
            return "dry-run"
        if self.stopped:
            return "stopped"
        if self.yielded:
            return "yielded"
        return "collected" if self.collect_only else "ok"

    # -- the stages -------------------------------------------------------------------
    def execute(self, force: bool) -> None:
        if not self.dry_run and not self.take_plan_leases():
            return
        with self.store.tx():
            self.report.messages.extend(reconcile_dataflows(self.store, self.engine.flows))
            unbuilt = unbuilt_indexes(self.store, self.engine.uses)
        self.select(self.wanted, report=True)
        self.collect(self.order, held=not self.dry_run)
        for item in unbuilt:
            with self.store.tx():
                build_index(self.store, item)
        with self.store.tx():
            self.report.messages.extend(prepare(self.store, self.engine.flows, self.controls))
        context = self.context()
        apply = Apply(context)
        recovered = apply.recover_intents()
        if not force:
            self.circuit_breaker(context, recovered)
        self.plan_and_apply(context, apply, Linker(context, apply))

    def take_plan_leases(self) -> bool:
        """Take what the planning process holds to the end of the run: the run lease
        (taken by :meth:`Engine.sync` outside a worker's turn) and every type's collect
        lease (see :mod:`samband.engine.leases`).  A worker that cannot have them reads
        the types no one else is reading and leaves the plan to another turn."""
        leases, store = self.engine.leases, self.store
        if self.shared and not leases.claim(store, RUN_LEASE):
            holder = store.lease_holder(RUN_LEASE)
            self.read_free_types(
                f"another worker ({holder[0] if holder else '?'}) is planning; it plans what "
                "was read here"
            )
            return False
        names = [collect_lease(*key) for key in self.engine.order]
        busy = leases.claim_all(store, names, self.engine.lease_wait, self.stop)
        if not busy:
            return True
        types = ", ".join(name.split(":", 1)[1].replace(":", ".") for name in busy)
        if not self.shared:
            holder = store.lease_holder(busy[0])
            raise RunLocked(
                f"{types}: being read by another samband worker "
                f"({holder[0] if holder else '?'}); planning against a type half read "
                "would create again what is not read yet. Run again when it is done (a "
                "lease left by a stopped process expires after five minutes)."
            )
        leases.release_all(store)
        self.read_free_types(
            f"{types}: being read by another worker; planning waits until it is read"
        )
        return False

    def read_free_types(self, message: str) -> None:
        """A worker's turn without a plan: read the types no other process holds."""
        self.collect_only = True
        self.collect(self.order, held=False)
        self.report.messages.append(message)

    def collect(self, keys: list[TypeKey], *, held: bool) -> None:
        """Read ``keys``; with ``held`` their collect leases are this process's already,
        else (a worker's turn) each type is read only if no other process holds it."""
        run_id = None if self.dry_run else self.report.run_id
        guard = FullScanGuard(self.engine.config, self.store, run_id, self.confirmed)
        collector = Collector(self.store, run_id, guard)
        # records, not types: how many a read returns is known only as it goes
        self.progress.phase("read", None)
        take = self.shared and not held
        try:
            for key in keys:
                self.collect_type(collector, key, take=take)
        finally:
            # also when a later type's read fails: what was held is reported
            self.report.held_deletions.extend(held.as_dict() for held in guard.held)
            self.report.confirmed_deletions.extend(guard.confirmations)
            self.report.messages.extend(guard.messages)

    def collect_type(self, collector: Collector, key: TypeKey, *, take: bool) -> None:
        """Read one type (with ``take``, only if no other process holds its lease)."""
        leases = self.engine.leases
        use = self.engine.uses[key]
        claim = collect_lease(*key)
        if take and not leases.claim(self.store, claim):
            return
        connector = self.engine.connector(key[0])

        def on_page(records: int) -> None:
            self.progress.advance(records)
            # every lease held is renewed, not only this type's: the run's other leases
            # must outlast a long read too
            self.keep_alive()

        try:
            stats = collector.collect(use, connector, on_page=on_page)
        finally:
            if take:
                leases.release(self.store, claim)
            self.report.messages.extend(connector.take_notices())
        self.collected[key] = stats
        if stats.unreadable:
            for flow in use.as_source:
                self.ledger.counts(flow).errors += stats.unreadable
        log.info(
            "%s.%s: %d read, %d changed, %d deleted", *key, stats.read, stats.changed, stats.deleted
        )
        self.report.collected[f"{key[0]}.{key[1]}"] = {
            "read": stats.read,
            "changed": stats.changed,
            "deleted": stats.deleted,
            **({"held": stats.held} if stats.held else {}),
        }

    def circuit_breaker(self, context: RunContext, recovered: set[str]) -> None:
        """Refuse (or, in a dry run, report) a run over a dataflow's shares."""
        breaker = CircuitBreaker(
            self.store, context.translator, self.engine.config.defaults, recovered
        )
        try:
            breaker.check(self.flows)
        except CircuitBreakerTripped as exc:
            if not self.dry_run:
                raise
            self.report.messages.append(f"{exc} (this dry run shows the plan all the same)")

    # -- link, plan and apply, chunk by chunk ---------------------------------------------
    def plan_and_apply(self, context: RunContext, apply: Apply, linker: Linker) -> None:
        total = sum(self.store.count_dirty(*key) for key in self.order)
        self.progress.phase("sync", total)
        for _round in range(self.engine.max_rounds):
            progressed = False
            remaining = False
            for key in self.order:
                after: str | None = None
                while True:
                    if self.stop():
                        self.stopped = True
                        return
                    chunk = self.store.dirty_batch(*key, after, self.engine.chunk_size)
                    if not chunk:
                        break
                    if self.budget.spent():
                        self.give_way()
                        return
                    after = chunk[-1][0]
                    batch = self.process_chunk(context, linker, key, chunk)
                    # a chunk of records that only wait moves nothing: it does not count,
                    # so that every turn moves something and turns end
                    self.budget.count(moved=batch.progress or batch.cleared > 0)
                    progressed = progressed or batch.progress
                    remaining = remaining or bool(batch.keep_dirty)
                    self.progress.advance(len(chunk))
                    self.keep_alive()
            if linker.hold_deletions:
                # the first round is done: every record entered again has taken its
                # target; the deletions it held back are applied from now on
                linker.hold_deletions = False
                if linker.held_deletions:
                    continue
            if not progressed:
                break
            if not remaining and not any(self.store.count_dirty(*k) for k in self.order):
                break
        self._report_waiting()

    def give_way(self) -> None:
        """End this turn between two chunks (see :class:`TurnBudget`)."""
        self.yielded = True
        queued = sum(self.store.count_dirty(*key) for key in self.engine.order)
        self.report.messages.append(
            f"yielded after {self.budget.chunks} chunk(s): {queued} record(s) stay queued "
            "for the next run"
        )

    def _report_waiting(self) -> None:
        for flow in self.engine.flows:
            waiting = self.ledger.counts(flow).waiting
            if waiting:
                self.report.messages.append(
                    f"{flow.key}: {waiting} record(s) wait for their parent to be linked"
                )

    def process_chunk(
        self, context: RunContext, linker: Linker, key: TypeKey, chunk: list[tuple[str, int]]
    ) -> Batch:
        """One chunk of queued records of type ``key``: read again what is to be, link
        (and so plan and apply) for each dataflow, store the outcome in one transaction."""
        use = self.engine.uses[key]
        snaps = self.store.snapshots(*key, [rid for rid, _ in chunk])
        batch = Batch()
        try:
            read_again(context, use, snaps, batch)
            runs = self.controls.runs
            for flow in use.as_source:
                if runs(flow):
                    linker.source_side(flow, snaps, batch)
            for flow in use.as_target:
                if runs(flow):
                    linker.target_side(flow, snaps, batch)
        except ConnectorError:
            # A system became unusable (quota spent, credentials refused): store what was
            # written so far, keep every ref of the chunk queued, and end the run.
            self.commit(context, batch, key, [])
            raise
        prefix = Ref.text(*key, "")  # + rid: the ref of a record of the chunk
        kept = batch.keep_dirty
        seen = [(rid, dirty) for rid, dirty in chunk if prefix + rid not in kept]
        for flow in use.as_source + use.as_target:
            if not self.controls.runs(flow) and seen:
                # cleared for the dataflows run now: kept for this one's next run
                batch.hold(flow.key, [prefix + rid for rid, _ in seen], "missed")
        batch.cleared = len(seen)
        self.commit(context, batch, key, seen)
        return batch

    def commit(
        self, context: RunContext, batch: Batch, key: TypeKey, seen: list[tuple[str, int]]
    ) -> None:
        batch.store(self.store, key, seen, context.run_id)
        context.translator.settled()
        # every count so far is stored now (the ledger counts a chunk before its commit)
        self.report.committed_writes = self.report.writes

    def keep_alive(self) -> None:
        """Renew the leases this run holds that are due (a write-free check otherwise)."""
        if not self.dry_run:
            self.engine.leases.renew_all(self.store)
