"""One run: collect → link → plan → apply → commit.  The :class:`Engine` owns it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
from sqlalchemy.exc import SQLAlchemyError

from samband.config.env import resolve, resolve_all
from samband.config.loader import base_dir
from samband.config.model import Config
from samband.config.validate import load_valid
from samband.connectors.base import Connector, EntityType
from samband.connectors.registry import create_connector
from samband.durations import parse_interval as parse_interval  # the CLI's --every
from samband.engine._gc import fewer_collections
from samband.engine.apply import (
    Batch,
    FlowCounts,
    audit_row,
    conflict_row,
    snapshot_row_of,
    unlink,
)
from samband.engine.breaker import CircuitBreaker
from samband.engine.collect import (
    Collector,
    CollectStats,
    snapshot_row,
)
from samband.engine.leases import RUN_LEASE, Leases, collect_lease
from samband.engine.link import Translator, creation_allowed, find_matches, passes_filter
from samband.engine.model import (
    Flow,
    TypeKey,
    TypeUse,
    children_of,
    compile_flows,
    type_order,
)
from samband.engine.plan import plan_link
from samband.engine.reconcile import build_index, reconcile_dataflows, unbuilt_indexes
from samband.engine.recovery import IntentRecovery
from samband.engine.writes import Writes
from samband.errors import (
    CircuitBreakerTripped,
    ConnectorError,
    ConversionError,
    QuotaExhausted,
    RunLocked,
    StoreError,
)
from samband.store.store import (
    Link,
    Snapshot,
    Store,
    dumps,
    now_iso,
    split_ref,
    store_message,
)


class Progress(Protocol):
    def phase(self, name: str, total: int | None = None) -> None: ...
    def advance(self, count: int = 1) -> None: ...
    def done(self) -> None: ...


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
    plan: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    resume_at: str | None = None

    @property
    def failed(self) -> bool:
        return self.status not in ("ok", "dry-run", "stopped", "paused")

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
            "plan": self.plan,
            "messages": self.messages,
            "resume_at": self.resume_at,
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
        self.environ = os.environ if environ is None else environ
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

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **options: Any) -> Engine:
        """An engine for the config file at ``path`` (validated first)."""
        return cls(load_valid(path).config, **options)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
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
            extra.setdefault("base_dir", self.base_dir)
            credentials = resolve_all(system.credentials, self.environ, system=system_id)
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
            schemas[system_id] = self.connector(system_id).entity_types()
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
        return self._store

    # -- the run --------------------------------------------------------------------
    def sync(
        self,
        *,
        dry_run: bool = False,
        force: bool = False,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
        shared: bool = False,
    ) -> RunReport:
        """One run.  ``dry_run`` plans without any write call and rolls back the store.

        ``shared`` is a worker's turn (see :meth:`work`): each entity type is read only if
        no other process is reading it now, and the plan is made only if no other process
        is planning; status ``collected`` says another process plans what was read."""
        self.compile()
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
        run = _Run(self, store, report, progress, stop, shared=shared and not dry_run)
        interrupted = False
        try:
            if not dry_run and not shared:
                self._take_lease(store)
            report.run_id = store.begin_run(dry_run)
            self._check_systems(store)
            with fewer_collections():
                run.execute(force)
            report.status = run.status()
        except QuotaExhausted as exc:
            report.status = "paused"
            report.resume_at = exc.resume_at.isoformat() if exc.resume_at else None
            report.messages.append(f"{exc}; all state is saved: run again then to go on")
        except (ConnectorError, CircuitBreakerTripped, RunLocked) as exc:
            report.status = "failed"
            report.messages.append(str(exc))
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
            # Interrupted (Ctrl-C twice, or a simulated crash): keep only what was committed.
            interrupted = True
            raise
        finally:
            report.finished_at = now_iso()
            for system, connector in self._connectors.items():
                used = connector.stats.api_calls - calls_before.get(system, 0)
                report.api_calls_by_system[system] = used
            report.api_calls = sum(report.api_calls_by_system.values())
            progress.done()
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


class _Run:
    """The state of one run in progress."""

    def __init__(
        self,
        engine: Engine,
        store: Store,
        report: RunReport,
        progress: Progress,
        stop: Callable[[], bool],
        *,
        shared: bool = False,
    ) -> None:
        self.engine, self.store, self.report, self.progress = engine, store, report, progress
        self.stop = stop
        self.stopped = False
        self.shared = shared  # a worker's turn: see Engine.sync
        self.collect_only = False
        self.dry_run = store.dry_run
        self.translator = Translator(store)
        self.collected: dict[TypeKey, CollectStats] = {}
        self.waiting_seen: set[tuple[str, str]] = set()
        self.previewed: set[tuple[str, str]] = set()  # pairs a dry run has planned
        # in the first round of planning, deletions that would delete or archive a target
        # are held back (see source_side)
        self.hold_deletions = True
        self.held_deletions = False
        # source records of creates recovered at the start of this run (see circuit_breaker)
        self.recovered: set[str] = set()
        self.writes = Writes(self)

    @property
    def run_id(self) -> int:
        return self.report.run_id or 0

    def counts(self, flow: Flow) -> FlowCounts:
        return self.report.dataflows[flow.key]

    def status(self) -> str:
        """How the run ended, when it ended without an error."""
        if self.dry_run:
            return "dry-run"
        if self.stopped:
            return "stopped"
        return "collected" if self.collect_only else "ok"

    # -- the stages -------------------------------------------------------------------
    def execute(self, force: bool) -> None:
        if not self.dry_run and not self.take_plan_leases():
            return
        with self.store.tx():
            self.report.messages.extend(reconcile_dataflows(self.store, self.engine.flows))
            unbuilt = unbuilt_indexes(self.store, self.engine.uses)
        self.collect(self.engine.order, held=not self.dry_run)
        for use, flow, combination in unbuilt:
            with self.store.tx():
                build_index(self.store, use, flow, combination)
        self.recover_intents()
        self.writes.unresolved = {row["key"] for row in self.store.open_intents()}
        if not force:
            self.circuit_breaker()
        self.plan_and_apply()

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
        self.collect(self.engine.order, held=False)
        self.report.messages.append(message)

    def collect(self, keys: list[TypeKey], *, held: bool) -> None:
        """Read ``keys``; with ``held`` their collect leases are this process's already,
        else (a worker's turn) each type is read only if no other process holds it."""
        collector = Collector(self.store)
        self.progress.phase("collect", len(keys))
        leases = self.engine.leases
        take = self.shared and not held
        for key in keys:
            use = self.engine.uses[key]
            claim = collect_lease(*key)
            if take and not leases.claim(self.store, claim):
                self.progress.advance()
                continue
            try:
                # every lease held is renewed, not only this type's: the run's other leases
                # must outlast a long read too
                stats = collector.collect(
                    use, self.engine.connector(key[0]), on_page=self.keep_alive
                )
            finally:
                if take:
                    leases.release(self.store, claim)
            self.collected[key] = stats
            self.report.collected[f"{key[0]}.{key[1]}"] = {
                "read": stats.read,
                "changed": stats.changed,
                "deleted": stats.deleted,
            }
            self.progress.advance()

    def recover_intents(self) -> None:
        """Creates that were interrupted: find what they created; never create again."""
        if self.dry_run:
            return
        recovery = IntentRecovery(self.engine, self.store, self.translator, self.run_id)
        self.recovered |= recovery.recover()

    def circuit_breaker(self) -> None:
        """Refuse (or, in a dry run, report) a run over a dataflow's shares."""
        breaker = CircuitBreaker(
            self.store, self.translator, self.engine.config.defaults, self.recovered
        )
        try:
            breaker.check(self.engine.flows)
        except CircuitBreakerTripped as exc:
            if not self.dry_run:
                raise
            self.report.messages.append(f"{exc} (this dry run shows the plan all the same)")

    # -- plan and apply -------------------------------------------------------------
    def plan_and_apply(self) -> None:
        total = sum(self.store.count_dirty(*key) for key in self.engine.order)
        self.progress.phase("sync", total)
        for _round in range(self.engine.max_rounds):
            progressed = False
            remaining = False
            for key in self.engine.order:
                after: str | None = None
                while True:
                    if self.stop():
                        self.stopped = True
                        return
                    chunk = self.store.dirty_batch(*key, after, self.engine.chunk_size)
                    if not chunk:
                        break
                    after = chunk[-1][0]
                    batch = self.process_chunk(key, chunk)
                    progressed = progressed or batch.progress
                    remaining = remaining or bool(batch.keep_dirty)
                    self.progress.advance(len(chunk))
                    self.keep_alive()
            if self.hold_deletions:
                # the first round is done: every record entered again has taken its
                # target; the deletions it held back are applied from now on
                self.hold_deletions = False
                if self.held_deletions:
                    continue
            if not progressed:
                break
            if not remaining and not any(self.store.count_dirty(*k) for k in self.engine.order):
                break
        self._report_waiting()

    def _report_waiting(self) -> None:
        for flow in self.engine.flows:
            waiting = self.counts(flow).waiting
            if waiting:
                self.report.messages.append(
                    f"{flow.key}: {waiting} record(s) wait for their parent to be linked"
                )

    def process_chunk(self, key: TypeKey, chunk: list[tuple[str, int]]) -> Batch:
        use = self.engine.uses[key]
        system, etype = key
        snaps = self.store.snapshots(system, etype, [rid for rid, _ in chunk])
        batch = Batch()
        try:
            self._refresh(use, snaps, batch)
            for flow in use.as_source:
                self.source_side(flow, snaps, batch)
            for flow in use.as_target:
                self.target_side(flow, snaps, batch)
        except ConnectorError:
            # A system became unusable (quota spent, credentials refused): store what was
            # written so far, keep every ref of the chunk queued, and end the run.
            self.write_batch(batch, key, [])
            raise
        seen = [
            (rid, dirty)
            for rid, dirty in chunk
            if f"{system}:{etype}:{rid}" not in batch.keep_dirty
        ]
        self.write_batch(batch, key, seen)
        return batch

    def _refresh(self, use: TypeUse, snaps: dict[str, Snapshot], batch: Batch) -> None:
        """Read again the records ``samband retry`` queued, so a fix made in their system
        is seen even when no change feed reports it."""
        stale = [snap for snap in snaps.values() if snap.refresh]
        if not stale:
            return
        connector = self.engine.connector(use.key[0])
        for snap in stale:
            record = connector.get(use.key[1], snap.rid)
            if record is None:
                snap.deleted = True
                snap.data = {}
                row = {**snapshot_row_of(snap), "hash": "deleted", "deleted": True}
            else:
                row = snapshot_row(use, record, 0)
                snap.data = orjson.loads(row["data"])
                snap.hash, snap.modified = row["hash"], row["modified"]
                snap.refresh = False
            batch.snapshots[snap.ref] = {**row, "dirty": 0}

    def write_batch(self, batch: Batch, key: TypeKey, seen: list[tuple[str, int]]) -> None:
        store = self.store
        with store.tx():
            if batch.drop_links:
                store.delete_links(batch.drop_links)
            store.add_links(batch.links)
            store.set_bases(list(batch.bases.items()))
            store.put_snapshots(list(batch.snapshots.values()))
            for name, entries in batch.match.items():
                store.set_match_keys(name, entries)
            store.add_audit(batch.audit)
            for flow_key, refs in batch.resolved.items():
                store.resolve_dead_letters(refs, flow_key)
            for ref, flow_key, kind, reason, details in batch.dead:
                store.add_dead_letter(ref, flow_key, kind, reason, details, self.run_id)
            for flow_key, refs in batch.waiting_done.items():
                store.done_waiting(flow_key, refs)
            store.remove_intents(batch.intents_done)
            store.clear_dirty(key[0], key[1], seen)
            if batch.requeue:
                store.set_dirty(sorted(batch.requeue))
        self.translator.settled()

    # -- source side ---------------------------------------------------------------------
    def _prefetch(self, flow: Flow, snaps: list[Snapshot], side: str) -> None:
        refs: set[str] = set()
        for m in flow.mappings:
            if not m.is_reference:
                continue
            system, etype, path = (
                (flow.source[0], m.source_ref_type, m.source)
                if side == "source"
                else (flow.target[0], m.target_ref_type, m.target)
            )
            if etype is None:
                continue
            for snap in snaps:
                value = snap.data.get(path)
                if value not in (None, "", 0):
                    refs.add(f"{system}:{etype}:{value}")
        if refs:
            self.translator.prefetch(refs)

    def source_side(self, flow: Flow, snaps: dict[str, Snapshot], batch: Batch) -> None:
        refs = [snap.ref for snap in snaps.values()]
        links = self.store.links_by(flow.key, "source", refs)
        self._prefetch(flow, list(snaps.values()), "source")
        target_rids = [split_ref(link.target_ref)[2] for link in links.values()]
        targets = self.store.snapshots(*flow.target, target_rids)
        if targets:
            self._prefetch(flow, list(targets.values()), "target")
        unlinked: dict[str, Snapshot] = {}
        deleted: list[Link] = []
        for snap in snaps.values():
            link = links.get(snap.ref)
            if snap.deleted:
                if link is not None:
                    deleted.append(link)
                continue
            if link is None:
                unlinked[snap.rid] = snap
                continue
            target = targets.get(split_ref(link.target_ref)[2])
            if target is None or target.deleted:
                continue  # the target side unlinks it
            self.sync_pair(flow, link, snap, target, batch)
        if unlinked:
            self.link_or_create(flow, unlinked, batch)
        # after linking: a record deleted and entered again since the last run has given
        # its target to the new one (see link_or_create), which its deletion leaves alone.
        # A deletion that deletes or archives its target waits for the first round to end,
        # so a record entered again in a later chunk takes the target over first.
        for link in deleted:
            if link.id in batch.drop_links:
                continue
            if self.hold_deletions and flow.config.on_delete != "unlink":
                self.held_deletions = True
                batch.keep_dirty.add(link.source_ref)
                continue
            target_rid = split_ref(link.target_ref)[2]
            self.writes.source_deleted(flow, link, targets.get(target_rid), batch)

    def target_side(self, flow: Flow, snaps: dict[str, Snapshot], batch: Batch) -> None:
        refs = [snap.ref for snap in snaps.values()]
        links = self.store.links_by(flow.key, "target", refs)
        if not links:
            return
        sources = self.store.snapshots(
            *flow.source, [split_ref(lk.source_ref)[2] for lk in links.values()]
        )
        self._prefetch(flow, list(sources.values()), "source")
        self._prefetch(flow, list(snaps.values()), "target")
        for snap in snaps.values():
            link = links.get(snap.ref)
            if link is None:
                continue
            if snap.deleted:
                unlink(batch, self.run_id, flow, link, "deleted in target")
                self.translator.forget(link.source_ref, link.target_ref)
                self.requeue_children(link, batch)
                self.plan_line(f"unlink {link.source_ref} ↔ {snap.ref} (target deleted)")
                continue
            source = sources.get(split_ref(link.source_ref)[2])
            if source is None or source.deleted:
                continue
            self.sync_pair(flow, link, source, snap, batch)

    def requeue_children(self, link: Link, batch: Batch) -> None:
        """A parent lost its counterpart: its children, on either side, are planned again,
        so they wait for a new counterpart (and follow it) instead of keeping a reference
        to the deleted record until they are edited."""
        children = self.engine.children
        for ref in (link.source_ref, link.target_ref):
            system, etype, rid = split_ref(ref)
            for child, path in children.get((system, etype), ()):
                rids = self.store.referring(*child, path, [rid])
                batch.requeue.update(f"{child[0]}:{child[1]}:{r}" for r in rids)

    def link_or_create(self, flow: Flow, unlinked: dict[str, Snapshot], batch: Batch) -> None:
        tsys, ttype = flow.target
        eligible = {}
        for rid, snap in unlinked.items():
            try:
                if passes_filter(flow, snap.data):
                    eligible[rid] = snap
            except ConversionError as exc:
                self.quarantine(flow, snap.ref, "conversion", str(exc), batch)
        matches = (
            find_matches(self.store, flow, {rid: s.data for rid, s in eligible.items()})
            if flow.match
            else {}
        )
        candidates = sorted({c for found in matches.values() for c in found})
        taken, freed = self._taken(flow, candidates, batch)
        targets = self.store.snapshots(tsys, ttype, candidates)
        creates: list[Snapshot] = []
        for rid, snap in eligible.items():
            found = [
                c
                for c in sorted(matches.get(rid, ()))
                if f"{tsys}:{ttype}:{c}" not in taken
                and f"{tsys}:{ttype}:{c}" not in batch.claimed
                and c in targets
                and not targets[c].deleted
            ]
            if len(found) == 1:
                target = targets[found[0]]
                if target.ref in freed:
                    self.release(flow, freed[target.ref], snap.ref, batch)
                self.link_matched(flow, snap, target, batch)
            elif len(found) > 1:
                refs = [f"{tsys}:{ttype}:{c}" for c in found]
                self.counts(flow).ambiguous += 1
                batch.dead.append(
                    (
                        snap.ref,
                        flow.key,
                        "ambiguous",
                        f"matches {len(found)} {tsys}.{ttype} records by the merge criteria; "
                        "nothing was linked or created. Make the criteria unique, or link "
                        "by hand, then `samband retry`.",
                        {"candidates": refs},
                    )
                )
                self.plan_line(f"ambiguous {snap.ref}: {', '.join(refs)}")
            elif flow.config.create and creation_allowed(flow, snap.data, self.translator):
                creates.append(snap)
        if creates:
            self.writes.create(flow, creates, batch)

    def _taken(
        self, flow: Flow, candidates: list[str], batch: Batch
    ) -> tuple[set[str], dict[str, Link]]:
        """Which candidate targets are linked in this dataflow already (a target linked
        by another dataflow is free: a link group is one real-world thing, whichever
        systems it is entered in), and which of those links belong to a source deleted
        since (a record deleted and entered again: its target goes to the new one)."""
        tsys, ttype = flow.target
        links = self.store.links_by(flow.key, "target", [f"{tsys}:{ttype}:{c}" for c in candidates])
        links = {ref: link for ref, link in links.items() if link.id not in batch.drop_links}
        rids = [split_ref(link.source_ref)[2] for link in links.values()]
        sources = self.store.snapshots(*flow.source, rids) if rids else {}
        freed = {
            ref: link
            for ref, link in links.items()
            if (source := sources.get(split_ref(link.source_ref)[2])) is not None and source.deleted
        }
        return set(links) - set(freed), freed

    def release(self, flow: Flow, link: Link, new_source: str, batch: Batch) -> None:
        """Unlink a deleted source from its target, which ``new_source`` takes over."""
        unlink(batch, self.run_id, flow, link, f"deleted in source; entered again as {new_source}")
        self.translator.forget(link.source_ref, link.target_ref)
        self.plan_line(f"unlink {link.source_ref} ↔ {link.target_ref} (entered again)")

    def link_matched(self, flow: Flow, source: Snapshot, target: Snapshot, batch: Batch) -> None:
        batch.claimed.add(target.ref)
        self.counts(flow).linked += 1
        batch.progress = True
        self.plan_line(f"link {source.ref} ↔ {target.ref} (merge criteria)")
        link = Link(-1, flow.key, source.ref, target.ref, {}, "matched")
        self.translator.learn((source.ref, target.ref))
        self.sync_pair(flow, link, source, target, batch)

    def sync_pair(
        self, flow: Flow, link: Link, source: Snapshot, target: Snapshot, batch: Batch
    ) -> None:
        if source.ref in self.writes.deferred or target.ref in self.writes.deferred:
            # a write to one of them failed in a way that may pass: the next run tries again
            batch.keep_dirty.update((source.ref, target.ref))
            return
        if self.dry_run:
            # a dry run writes no snapshot: a pair queued on both sides is shown once
            if (flow.key, source.ref) in self.previewed:
                return
            self.previewed.add((flow.key, source.ref))
        try:
            plan = plan_link(flow, link.base, source, target, self.translator)
        except ConversionError as exc:
            self.quarantine(flow, source.ref, "conversion", str(exc), batch)
            return
        for parent in plan.waiting:
            self.wait_for_parent(flow, source, parent, batch)
        new_base = dict(link.base)
        new_base.update(plan.base)
        conflicts = []
        for conflict in plan.conflicts:
            self.counts(flow).conflicts += 1
            conflicts.append(
                conflict_row(
                    self.run_id,
                    flow,
                    source.ref,
                    target.ref,
                    conflict.property,
                    conflict.base,
                    conflict.source_value,
                    conflict.target_value,
                    conflict.winner,
                    conflict.reason,
                )
            )
        if conflicts and not self.dry_run:
            # Stored before the write that overwrites the losing value, so that no crash
            # can lose an edit without its record.
            with self.store.tx():
                self.store.add_conflicts(conflicts)
        outcomes = set()
        if plan.to_target:
            outcomes.add(
                self.writes.update(
                    flow,
                    flow.target,
                    target,
                    plan.to_target,
                    batch,
                    new_base,
                    "target",
                    link.base,
                    source.modified,
                )
            )
        if plan.to_source:
            outcomes.add(
                self.writes.update(
                    flow,
                    flow.source,
                    source,
                    plan.to_source,
                    batch,
                    new_base,
                    "source",
                    link.base,
                    target.modified,
                )
            )
        failed = bool(outcomes - {"written"})
        if "transient" in outcomes:
            # the pair stays queued: whichever of the two this chunk holds is not cleared
            batch.keep_dirty.update((source.ref, target.ref))
        if link.id < 0:
            batch.links.append(
                {
                    "dataflow": flow.key,
                    "source_ref": source.ref,
                    "target_ref": target.ref,
                    "base": dumps(new_base),
                    "how": link.how,
                    "created_run": self.run_id,
                    "created_at": now_iso(),
                }
            )
            batch.audit.append(
                audit_row(
                    self.run_id,
                    target.ref,
                    flow,
                    "link",
                    None,
                    {"linked_to": source.ref, "how": link.how},
                )
            )
        elif new_base != link.base:
            batch.bases[link.id] = new_base
        if not failed and not plan.waiting:
            # a reference that still waits keeps its count of runs (and its report)
            batch.ok(flow, source.ref)
            batch.waiting_done.setdefault(flow.key, set()).add(source.ref)

    # -- bookkeeping -------------------------------------------------------------------
    def _parent_exists(self, parent: str) -> bool:
        system, etype, _rid = split_ref(parent)
        if etype == "?" or (system, etype) not in self.engine.uses:
            return False
        snap = self.store.snapshot(parent)
        return snap is not None and not snap.deleted

    def wait_for_parent(self, flow: Flow, snap: Snapshot, parent: str, batch: Batch) -> None:
        """``snap`` refers to ``parent``, which has no counterpart yet: wait for it — or,
        when the parent does not exist (deleted, never synchronized), quarantine."""
        if not self._parent_exists(parent):
            self.quarantine(
                flow,
                snap.ref,
                "reference",
                f"refers to {parent}, which does not exist (deleted?) or is not synchronized "
                "by any dataflow; the reference is left as it is",
                batch,
                {"parent": parent},
            )
            return
        batch.keep_dirty.add(snap.ref)
        if (flow.key, snap.ref) not in self.waiting_seen:  # once per record, not per round
            self.waiting_seen.add((flow.key, snap.ref))
            self.counts(flow).waiting += 1
        if self.dry_run:
            self.plan_line(f"wait {snap.ref}: parent {parent} is not linked yet")
            return
        runs = self.store.note_waiting(flow.key, snap.ref, parent, self.run_id)
        if runs > self.engine.config.defaults.max_parent_wait_runs:
            # a source reference waits for a counterpart in the target, a target
            # reference (flowing back) for one in the source
            other = flow.source[0] if parent.startswith(f"{flow.target[0]}:") else flow.target[0]
            batch.dead.append(
                (
                    snap.ref,
                    flow.key,
                    "waiting",
                    f"has waited {runs} runs for its parent {parent}, which has no "
                    f"counterpart in {other}; check that the parent is synchronized "
                    f"(`samband links {parent}` shows its links)",
                    {"parent": parent},
                )
            )

    def quarantine(
        self, flow: Flow, ref: str, kind: str, reason: str, batch: Batch, details: Any = None
    ) -> None:
        self.counts(flow).errors += 1
        batch.dead.append((ref, flow.key, kind, reason, details))
        self.plan_line(f"quarantine {ref}: {reason}")

    def keep_alive(self) -> None:
        """Renew the leases this run holds that are due (a write-free check otherwise)."""
        if not self.dry_run:
            self.engine.leases.renew_all(self.store)

    def plan_line(self, line: str) -> None:
        if self.dry_run:
            self.report.plan.append(line)
