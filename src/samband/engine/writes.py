"""Apply, the write side of a run: creates (intent first, committed durably), updates that
send only what changed (and, where the API can check it, only onto what was read), and what
a source deletion does to its target.  Each outcome is recorded in the chunk's
:class:`~samband.engine.apply.Batch`, which the run stores in one transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from samband import _killpoint as killpoint
from samband.connectors.base import Connector, RecordData
from samband.engine.apply import (
    Batch,
    FlowCounts,
    audit_row,
    conflict_row,
    external_ref,
    index_rows,
    new_snapshot,
    snapshot_row_of,
    unlink,
    updated_snapshot,
)
from samband.engine.collect import modified_of, project
from samband.engine.link import Translator
from samband.engine.model import Flow, TypeKey, TypeUse
from samband.engine.plan import WaitForParent, create_values, edited_since
from samband.errors import (
    ConversionError,
    InUse,
    NotFound,
    RecordError,
    Stale,
    TransientError,
)
from samband.store.store import Link, Snapshot, Store, dumps, now_iso
from samband.types import same_stored_value, to_json

if TYPE_CHECKING:
    from samband.engine.run import Engine


# What became of an update: written; refused by the system (quarantined until `samband
# retry`); failed in a way that may pass (queued for the next run); stale (edited since
# the read: read again and planned anew).
Outcome = Literal["written", "refused", "transient", "stale"]


class RunContext(Protocol):
    """What the writes need of the run they belong to."""

    engine: Engine
    store: Store
    translator: Translator
    dry_run: bool
    waiting_seen: set[tuple[str, str]]  # (dataflow, ref) of records waiting for a parent

    @property
    def run_id(self) -> int: ...

    def counts(self, flow: Flow) -> FlowCounts: ...

    def plan_line(self, line: str) -> None: ...

    def quarantine(
        self,
        flow: Flow,
        ref: str,
        kind: str,
        reason: str,
        batch: Batch,
        details: Any = None,
    ) -> None: ...

    def wait_for_parent(self, flow: Flow, snap: Snapshot, parent: str, batch: Batch) -> None: ...

    def keep_alive(self) -> None: ...


class Writes:
    """The write calls of one run."""

    def __init__(self, run: RunContext) -> None:
        self.run = run
        self.engine, self.store, self.translator = run.engine, run.store, run.translator
        self.dry_run = run.dry_run
        # keys of create intents whose outcome is unknown (read once after recovery)
        self.unresolved: set[str] = set()
        # records an update found edited since they were read (see update)
        self.stale: set[str] = set()
        # records whose update failed in a way that may pass: tried again next run
        self.deferred: set[str] = set()
        # a written record must be planned again when its type takes part in another dataflow
        self.propagates: dict[tuple[TypeKey, str], bool] = {}
        for flow in self.engine.flows:
            for key in (flow.source, flow.target):
                use = self.engine.uses[key]
                others = [f for f in use.as_source + use.as_target if f.key != flow.key]
                self.propagates[(key, flow.key)] = bool(others)

    @property
    def run_id(self) -> int:
        return self.run.run_id

    def create(self, flow: Flow, sources: list[Snapshot], batch: Batch) -> None:
        tsys, ttype = flow.target
        prepared: list[tuple[Snapshot, dict[str, Any], dict[str, Any], str]] = []
        # A create whose outcome is unknown (its intent is still open) is resolved by the
        # next run's lookup, after a collect; creating it again in a later round of this
        # run would make a duplicate.
        for snap in sources:
            if f"{flow.key}|{snap.ref}" in self.unresolved:
                batch.keep_dirty.add(snap.ref)
                continue
            deferred: list[str] = []

            def later(parent: str, snap: Snapshot = snap, deferred: list[str] = deferred) -> bool:
                # a record referring to itself, or to a record that waits for it (a
                # cycle): created first, the reference filled in by a second write
                if parent == snap.ref or (flow.key, parent) in self.run.waiting_seen:
                    deferred.append(parent)
                    return True
                return False

            try:
                values, base = create_values(flow, snap.data, self.translator, later)
            except WaitForParent as wait:
                self.run.wait_for_parent(flow, snap, wait.parent, batch)
                continue
            except ConversionError as exc:
                self.run.quarantine(flow, snap.ref, "conversion", str(exc), batch)
                continue
            if deferred:
                batch.keep_dirty.add(snap.ref)  # planned again once created: the reference
            prepared.append((snap, values, base, external_ref(flow, snap.ref)))
        if not prepared:
            return
        if self.dry_run:
            for snap, values, _base, _ext in prepared:
                self.run.counts(flow).created += 1
                self.run.plan_line(f"create {tsys}.{ttype} from {snap.ref}: {_show(values)}")
            return
        now = now_iso()
        intents: list[dict[str, Any]] = [
            {
                "key": f"{flow.key}|{snap.ref}",
                "source_ref": snap.ref,
                "external_ref": ext,
                "values": {k: to_json(v) for k, v in values.items()},
            }
            for snap, values, _base, ext in prepared
        ]
        with self.store.durable_tx():
            self.store.add_intents(flow.key, flow.target, intents, self.run_id, now)
        connector = self.engine.connector(tsys)
        use = self.engine.uses[flow.target]
        stamp = flow.target_et.external_ref_field is not None
        outcomes = self._create_all(connector, ttype, prepared, stamp)
        created: list[tuple[dict[str, Any], dict[str, Any]]] = []
        try:
            for item, intent, outcome in zip(prepared, intents, outcomes, strict=True):
                done = self._record_create(flow, item, intent["key"], outcome, batch, now)
                if done is not None:
                    created.append(done)
        finally:
            index_rows(use, batch, [row for row, _ in created], [data for _, data in created])

    def _record_create(
        self,
        flow: Flow,
        item: tuple[Snapshot, dict[str, Any], dict[str, Any], str],
        intent_key: str,
        outcome: RecordData | RecordError | TransientError,
        batch: Batch,
        now: str,
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Record the outcome of one create in the batch; the new snapshot row and data."""
        tsys, ttype = flow.target
        snap, values, base, _ext = item
        if isinstance(outcome, RecordError):
            batch.intents_done.append(intent_key)
            self.run.quarantine(
                flow,
                snap.ref,
                "rejected",
                f"{tsys} refused the create: {outcome.reason}",
                batch,
                {"values": values},
            )
            return None
        if isinstance(outcome, TransientError):
            # The create may have happened: the intent stays open and is resolved by lookup.
            self.unresolved.add(intent_key)
            batch.keep_dirty.add(snap.ref)
            self.run.quarantine(flow, snap.ref, "transient", str(outcome), batch)
            return None
        use = self.engine.uses[flow.target]
        target_ref = f"{tsys}:{ttype}:{outcome.id}"
        # a new record has no mark to clear
        dirty = self.store.next_seq() if self.propagates[(flow.target, flow.key)] else None
        tsnap, row = new_snapshot(
            use, str(outcome.id), values, outcome.data, modified_of(use, outcome), dirty, now
        )
        batch.snapshots[target_ref] = row
        batch.links.append(
            {
                "dataflow": flow.key,
                "source_ref": snap.ref,
                "target_ref": target_ref,
                "base": dumps(base),
                "how": "created",
                "created_run": self.run_id,
                "created_at": now,
            }
        )
        batch.claimed.add(target_ref)
        batch.intents_done.append(intent_key)
        batch.audit.append(audit_row(self.run_id, target_ref, flow, "create", None, values, now))
        batch.ok(flow, snap.ref)
        batch.waiting_done.setdefault(flow.key, set()).add(snap.ref)
        batch.progress = True
        self.translator.learn((snap.ref, target_ref))
        self.run.counts(flow).created += 1
        return row, tsnap.data

    def _create_all(
        self,
        connector: Connector,
        etype: str,
        prepared: list[tuple[Snapshot, dict[str, Any], dict[str, Any], str]],
        stamp: bool,
    ) -> list[RecordData | RecordError | TransientError]:
        """Create the records of a chunk: in one atomic batch where the connector can, else
        one at a time.  A batch whose outcome is unknown leaves every intent open."""
        if connector.batch_creates and len(prepared) > 1:
            items = [(values, ext if stamp else None) for _s, values, _b, ext in prepared]
            try:
                batch: list[RecordData | RecordError | TransientError] = list(
                    connector.create_many(etype, items)
                )
            except TransientError as exc:
                return [exc] * len(prepared)
            killpoint.reached("create")
            return batch
        results: list[RecordData | RecordError | TransientError] = []
        for _snap, values, _base, ext in prepared:
            # one call at a time can take long (an API allowing 60 calls a minute): the
            # leases must not run out meanwhile
            self.run.keep_alive()
            try:
                results.append(self._create_once(connector, etype, values, ext, stamp))
            except (RecordError, TransientError) as exc:
                results.append(exc)
        return results

    def _create_once(
        self, connector: Connector, etype: str, values: dict[str, Any], ext: str, stamp: bool
    ) -> RecordData:
        """Create, and after a failure whose outcome is unknown look the record up by its
        external reference before trying again: a create is never repeated blind."""
        attempts = 3 if stamp else 1
        for attempt in range(attempts):
            try:
                created = connector.create(etype, values, ext if stamp else None)
                killpoint.reached("create")
                return created
            except TransientError:
                if attempt + 1 >= attempts:
                    raise
                found = connector.find_by_external_ref(etype, ext)
                if found is not None:
                    return found
        raise AssertionError("unreachable")

    def _update_record(
        self,
        use: TypeUse,
        rid: str,
        changes: dict[str, Any],
        expected: dict[str, Any] | None = None,
    ) -> RecordData | None:
        """Updates set values, so repeating one after an unknown outcome is safe.  With
        ``expected`` an edit made since the read is not overwritten: :class:`Stale` is
        raised instead — by the update itself for what the connector checks, else after
        reading the record first (unless the system says not to)."""
        system, etype = use.key
        connector = self.engine.connector(system)
        unchecked = connector.unchecked(etype, expected) if expected is not None else []
        for attempt in range(3):
            try:
                if unchecked and self._verifies(system, connector):
                    assert expected is not None
                    _verify_unchanged(use, connector, rid, {p: expected[p] for p in unchecked})
                if expected is not None and connector.checks_expected:
                    updated = connector.update(etype, rid, changes, expected=expected)  # type: ignore[call-arg]
                else:
                    updated = connector.update(etype, rid, changes)
                killpoint.reached("update")
                return updated
            except TransientError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _verifies(self, system: str, connector: Connector) -> bool:
        setting = self.engine.config.systems[system].check_before_update
        return connector.verify_updates if setting is None else setting

    def update(
        self,
        flow: Flow,
        key: TypeKey,
        snap: Snapshot,
        changes: dict[str, Any],
        batch: Batch,
        new_base: dict[str, Any],
        side: str,
        old_base: dict[str, Any],
        origin_modified: str | None = None,
    ) -> Outcome:
        """Write ``changes`` to ``snap``'s record.  A write that did not happen leaves the
        agreed values (``new_base``) of its properties as they were (``old_base``), so the
        next plan sees both sides' edits again instead of a property never agreed on.
        ``origin_modified``: when the values written were edited on the other side."""
        system = key[0]
        if self.dry_run:
            self.run.counts(flow).updated += 1
            self.run.plan_line(f"update {snap.ref}: {_show(changes)}")
            return "written"
        before = {path: snap.data.get(path) for path in changes}
        # checked once per record and run: a value the API reports in another form than it
        # compares would otherwise make every attempt stale
        expected = None if snap.ref in self.stale else before
        self.run.keep_alive()
        try:
            record = self._update_record(self.engine.uses[key], snap.rid, changes, expected)
        except Stale:
            # Edited in its system since it was read: read it again (its chunk refreshes
            # it) and plan the pair with what is there now, in a later round.
            self.stale.add(snap.ref)
            # the agreed values stay as they were, so the next plan sees both edits
            _keep_base(flow, side, changes, new_base, old_base)
            batch.snapshots[snap.ref] = {
                **snapshot_row_of(snap),
                "refresh": True,
                "dirty": self.store.next_seq(),
            }
            batch.progress = True
            self.run.plan_line(f"{snap.ref} changed since it was read: read again")
            return "stale"
        except (RecordError, TransientError) as exc:
            transient = isinstance(exc, TransientError) and not isinstance(exc, NotFound)
            self.run.quarantine(
                flow,
                snap.ref,
                "transient" if transient else "rejected",
                f"{system} refused the update: {exc}",
                batch,
                {"changes": changes},
            )
            _keep_base(flow, side, changes, new_base, old_base)
            if transient:
                self.deferred.add(snap.ref)
                return "transient"
            return "refused"
        use = self.engine.uses[key]
        # A source written through the inverse mapping is planned again: another mapping of
        # the same source property (e.g. a forward-only one) must carry the new value on.
        replan = side == "source" or self.propagates[(key, flow.key)]
        dirty = self.store.next_seq() if replan else 0
        # The record's age for later conflicts is that of the edits it holds, not of this
        # write: a value copied here is as old as the edit that made it on the other side
        # (else a newer edit elsewhere would lose to the copy of an older one).
        edited = [t for t in (origin_modified, snap.modified) if t]
        if not edited and record is not None:
            edited = [t for t in (modified_of(use, record),) if t]
        row = updated_snapshot(
            use,
            snap,
            changes,
            record.data if record is not None else None,
            max(edited, key=_instant) if edited else now_iso(),
            dirty,
        )
        batch.snapshots[snap.ref] = row
        index_rows(use, batch, [row], [snap.data])
        batch.audit.append(audit_row(self.run_id, snap.ref, flow, "update", before, changes))
        batch.progress = True
        self.run.counts(flow).updated += 1
        return "written"

    def _kept_for_edit(
        self, flow: Flow, link: Link, target: Snapshot, connector: Connector, use: TypeUse
    ) -> bool:
        """A source deleted while its target was edited since the last sync: the target is
        kept (unlinked), so the edit is not lost, and a conflict records both sides."""
        data = target.data if self.dry_run else _current(connector, use, target)
        if data is None:
            return True  # gone already: nothing to delete
        edited = edited_since(flow, data, link.base)
        if not edited:
            return False
        source_system = flow.source[0]
        reason = (
            f"{link.source_ref} was deleted in {source_system} while {link.target_ref} was "
            f"edited in {flow.target[0]} ({', '.join(edited)}) since the last sync: the record "
            f"was kept and unlinked instead of being {flow.config.on_delete}d"
        )
        self.run.counts(flow).conflicts += 1
        self.run.plan_line(f"keep {link.target_ref}: {reason}")
        if not self.dry_run:
            rows = [
                conflict_row(
                    self.run_id,
                    flow,
                    link.source_ref,
                    link.target_ref,
                    path,
                    link.base.get(path),
                    None,
                    data.get(path),
                    "target",
                    reason,
                )
                for path in edited
            ]
            with self.store.tx():
                self.store.add_conflicts(rows)
        return True

    def source_deleted(self, flow: Flow, link: Link, target: Snapshot | None, batch: Batch) -> None:
        policy = flow.config.on_delete
        self.translator.forget(link.source_ref, link.target_ref)
        if policy == "unlink" or target is None or target.deleted:
            unlink(batch, self.run_id, flow, link, "deleted in source")
            self.run.plan_line(f"unlink {link.source_ref} ↔ {link.target_ref} (source deleted)")
            return
        unlink(batch, self.run_id, flow, link, None)  # audited as the delete or archive
        system, etype = flow.target
        connector = self.engine.connector(system)
        use = self.engine.uses[flow.target]
        if self._kept_for_edit(flow, link, target, connector, use):
            return
        if self.dry_run:
            self.run.counts(flow).deleted += 1
            self.run.plan_line(f"{policy} {link.target_ref} (source {link.source_ref} deleted)")
            return
        self.run.keep_alive()
        try:
            if policy == "propagate":
                try:
                    connector.delete(etype, target.rid)
                    target.deleted = True
                    batch.snapshots[target.ref] = {
                        "system": system,
                        "etype": etype,
                        "rid": target.rid,
                        "hash": "deleted",
                        "data": "{}",
                        "modified": now_iso(),
                        "deleted": True,
                        "dirty": 0,
                        "seen_run": None,
                    }
                    index_rows(use, batch, [batch.snapshots[target.ref]], [None])
                    batch.audit.append(
                        audit_row(self.run_id, target.ref, flow, "delete", target.data, None)
                    )
                    self.run.counts(flow).deleted += 1
                    return
                except InUse:
                    if flow.target_et.archive is None:
                        raise
                except NotFound:
                    return
            record = connector.archive(etype, target.rid)
            archive = flow.target_et.archive
            changes = {archive[0]: archive[1]} if archive else {}
            row = updated_snapshot(
                use, target, changes, record.data if record else None, now_iso(), 0
            )
            batch.snapshots[target.ref] = row
            batch.audit.append(audit_row(self.run_id, target.ref, flow, "archive", None, changes))
            self.run.counts(flow).deleted += 1
        except (RecordError, TransientError) as exc:
            self.run.quarantine(
                flow,
                link.target_ref,
                "rejected",
                f"could not {policy} after {link.source_ref} was deleted: {exc}",
                batch,
            )


def _current(connector: Connector, use: TypeUse, snap: Snapshot) -> dict[str, Any] | None:
    """The record as its system holds it now (projected), None when it is gone; the
    snapshot when the connector cannot read one record."""
    try:
        record = connector.get(use.key[1], snap.rid)
    except NotImplementedError:
        return snap.data
    if record is None or record.deleted:
        return None
    return project(use, record.data)


def _verify_unchanged(
    use: TypeUse, connector: Connector, rid: str, expected: dict[str, Any]
) -> None:
    """Read the record and raise :class:`Stale` when a property about to be written no
    longer holds the value read at collect (compared as the snapshot keeps values).  A
    connector that cannot read one record is not checked."""
    try:
        record = connector.get(use.key[1], rid)
    except NotImplementedError:
        return
    if record is None or record.deleted:
        raise NotFound(f"{use.key[0]}.{use.key[1]} {rid} no longer exists")
    now = project(use, record.data)
    edited = [path for path, was in expected.items() if not same_stored_value(now.get(path), was)]
    if edited:
        raise Stale(
            f"{use.key[0]}.{use.key[1]} {rid}: {', '.join(sorted(edited))} changed since it "
            "was read"
        )


def _keep_base(
    flow: Flow,
    side: str,
    changes: dict[str, Any],
    new_base: dict[str, Any],
    old_base: dict[str, Any],
) -> None:
    """For the properties of a write that did not happen, the base goes back to
    ``old_base`` (or is dropped where that has none)."""
    for m in flow.mappings:
        if (m.target if side == "target" else m.source) in changes:
            if m.target in old_base:
                new_base[m.target] = old_base[m.target]
            else:
                new_base.pop(m.target, None)


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _show(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in list(values.items())[:8])
