"""Apply: every write of a run.  The pair of a link as planned
(:func:`~samband.engine.plan.plan_link`), updates that send only what changed (and, where
the API can check it, only onto what was read), what a deletion does to the other side;
creates (:mod:`samband.engine.create`, intents first) and the recovery of interrupted
ones (:mod:`samband.engine.recovery`); references that wait (:mod:`samband.engine.waits`).

Each outcome goes to the chunk's :class:`~samband.engine.batch.Batch`, stored in one
transaction at the end of the chunk, and to the run's ledger.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal

from samband import _killpoint as killpoint
from samband.connectors.base import Connector, RecordData
from samband.engine.batch import Batch
from samband.engine.context import RunContext
from samband.engine.create import Creates, show_values
from samband.engine.model import Flow, TypeKey, TypeUse
from samband.engine.plan import (
    MISSING,
    PairPlan,
    WaitForParent,
    _same,
    apply_resolution,
    edited_since,
    plan_link,
    source_value,
)
from samband.engine.records import modified_of, project, updated_snapshot
from samband.engine.recovery import IntentRecovery
from samband.engine.waits import wait_for_parent
from samband.errors import (
    ConversionError,
    InUse,
    NotFound,
    RecordError,
    Stale,
    TransientError,
)
from samband.mapping import get_steps
from samband.store.rows import (
    AuditRow,
    ConflictRow,
    Link,
    LinkRow,
    Ref,
    Snapshot,
    SnapshotRow,
    loads,
    now_iso,
)
from samband.store.store import Store
from samband.types import coerce, same_stored_value, to_json

# What became of an update: written; refused by the system (quarantined until `samband
# retry`); failed in a way that may pass (queued for the next run); stale (edited since
# the read: read again and planned anew).
Outcome = Literal["written", "refused", "transient", "stale", "held"]

# a create about to be sent: the source, the values, the base they set, the external ref
_Prepared = tuple[Snapshot, dict[str, Any], dict[str, Any], str]


class Apply:
    """The writes of one run."""

    def __init__(self, context: RunContext) -> None:
        self.context = context
        self.store, self.translator, self.ledger = context.store, context.translator, context.ledger
        self.dry_run = context.dry_run
        self.run_id = context.run_id
        # records an update found edited since they were read (see update)
        self.stale: set[str] = set()
        # records whose update failed in a way that may pass: tried again next run
        self.deferred: set[str] = set()
        # properties a record did not keep when written this run: not written again in it
        self.unkept: dict[str, set[str]] = {}
        self.previewed: set[tuple[str, str]] = set()  # pairs a dry run has planned
        # a written record must be planned again when its type takes part in another dataflow
        self.propagates: dict[tuple[TypeKey, str], bool] = {}
        for flow in context.flows:
            for key in (flow.source, flow.target):
                use = context.uses[key]
                others = [f for f in use.as_source + use.as_target if f.key != flow.key]
                self.propagates[(key, flow.key)] = bool(others)
        self.creates = Creates(context, self.propagates)
        # conflicts a user resolved, not applied yet: (dataflow, source ref) → rows
        self.resolutions: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in self.store.journal.pending_resolutions():
            self.resolutions.setdefault((row["dataflow"], row["source_ref"]), []).append(row)

    # -- crash recovery ------------------------------------------------------------------
    def recover_intents(self) -> set[str]:
        """Creates that were interrupted: find what they created, never create again; the
        source refs queued again.  Then note the intents still open."""
        recovered: set[str] = set()
        if not self.dry_run:
            recovered = IntentRecovery(self.context).recover()
        self.creates.unresolved = {row["key"] for row in self.store.open_intents()}
        return recovered

    # -- a linked pair -----------------------------------------------------------------
    def pair(
        self, flow: Flow, link: Link, source: Snapshot, target: Snapshot, batch: Batch
    ) -> None:
        """Plan the pair and write what the plan says, on either side; a new link (id
        :attr:`Link.NEW`) is stored with the values agreed."""
        if source.ref in self.deferred or target.ref in self.deferred:
            # a write to one of them failed in a way that may pass: the next run tries again
            batch.keep_dirty.update((source.ref, target.ref))
            return
        if source.refresh or target.refresh:
            # One of them is to be read again first (an update found it edited since the
            # read, or `samband retry` asked): its own chunk reads it and plans the pair.
            # Planned here from what was read before, a write would overwrite that edit
            # (unchecked: a record found stale once is not checked again in this run).
            batch.keep_dirty.update((source.ref, target.ref))
            batch.progress = True
            return
        if self.dry_run:
            # a dry run writes no snapshot: a pair queued on both sides is shown once
            if (flow.key, source.ref) in self.previewed:
                return
            self.previewed.add((flow.key, source.ref))
        base = link.base
        if not base and link.how == "manual-reverse":
            base = self._agreed_as_source(flow, source)
        try:
            plan = plan_link(flow, base, source, target, self.translator)
            resolved = self._resolutions(flow, plan, source, target)
        except ConversionError as exc:
            self.ledger.quarantine(flow, source.ref, "conversion", str(exc), batch)
            return
        for parent in plan.waiting:
            self.wait_for_parent(flow, source, parent, batch)
        new_base = dict(base)
        new_base.update(plan.base)
        conflicts = []
        for conflict in plan.conflicts:
            self.ledger.counts(flow).conflicts += 1
            conflicts.append(
                ConflictRow.new(
                    self.run_id,
                    flow.key,
                    source.ref,
                    target.ref,
                    conflict.property,
                    conflict.base,
                    conflict.source_value,
                    conflict.target_value,
                    conflict.winner,
                    conflict.reason,
                    has_base=conflict.base is not MISSING,
                )
            )
        if conflicts and not self.dry_run:
            # Stored before the write that overwrites the losing value, so that no crash
            # can lose an edit without its record.
            with self.store.tx():
                self.store.add_conflicts(conflicts)
        outcomes = set()
        target_modified = target.modified
        if plan.to_target:
            outcome = self.update(
                flow,
                flow.target,
                target,
                plan.to_target,
                batch,
                new_base,
                "target",
                link.base,
                source.modified,
                (source.ref, target.ref),
            )
            outcomes.add(outcome)
            if outcome == "written" and not self.dry_run:
                # the values written to the target are as old as the edits they copy
                target_modified = batch.written[target.ref].modified
        if plan.to_source:
            outcomes.add(
                self.update(
                    flow,
                    flow.source,
                    source,
                    plan.to_source,
                    batch,
                    new_base,
                    "source",
                    link.base,
                    target_modified,
                    (source.ref, target.ref),
                )
            )
        failed = bool(outcomes - {"written"})
        if "transient" in outcomes:
            # the pair stays queued: whichever of the two this chunk holds is not cleared
            batch.keep_dirty.update((source.ref, target.ref))
        if link.id == Link.NEW:
            batch.links.append(
                LinkRow.new(flow.key, source.ref, target.ref, new_base, link.how, self.run_id)
            )
            batch.audit.append(
                AuditRow.new(
                    self.run_id,
                    target.ref,
                    flow.key,
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
        if not failed and resolved:
            batch.resolutions_done.extend(resolved)
            self.resolutions.pop((flow.key, source.ref), None)

    def _agreed_as_source(self, flow: Flow, source: Snapshot) -> dict[str, Any]:
        """The base of a pair linked by hand the other way (``samband link``): the
        source's own values, so the plan sees only the target as moved and copies the
        target's values into the source, as the dataflow the link was made for does."""
        base: dict[str, Any] = {}
        for m in flow.mappings:
            try:
                base[m.target] = source_value(flow, m, source.data, self.translator)
            except (ConversionError, WaitForParent):
                continue  # never agreed: decided as for a newly mapped property
        return base

    def _resolutions(
        self, flow: Flow, plan: PairPlan, source: Snapshot, target: Snapshot
    ) -> list[int]:
        """Apply to ``plan`` the conflicts of this pair a user resolved (see
        :mod:`samband.engine.actions`); the ids of those applied."""
        applied = []
        for row in self.resolutions.get((flow.key, source.ref), ()):
            if row["target_ref"] != target.ref:
                continue  # linked to another record since: it no longer applies
            value = loads(row[f"{row['resolution']}_value"])
            try:
                apply_resolution(
                    flow, plan, row["property"], value, source.data, target.data, self.translator
                )
            except WaitForParent as wait:
                plan.waiting.append(wait.parent)
                continue
            applied.append(int(row["id"]))
        return applied

    # -- references waiting for a parent ----------------------------------------------------
    def hold(self, flow: Flow, side: str, refs: list[str], batch: Batch, what: str) -> None:
        """A write not sent as writing to ``side`` of ``flow`` is off: ``refs`` are
        planned again when it is switched on (see :mod:`samband.engine.controls`)."""
        self.ledger.counts(flow).held += 1
        batch.hold(flow.key, refs, "share")
        system = flow.source[0] if side == "source" else flow.target[0]
        self.ledger.plan_line(
            f"held: {what} (writing to {system} is off)", "held", flow, refs[0] if refs else None
        )

    def wait_for_parent(self, flow: Flow, snap: Snapshot, parent: str, batch: Batch) -> None:
        """See :func:`samband.engine.waits.wait_for_parent`."""
        wait_for_parent(self.context, flow, snap, parent, batch)

    # -- links ending --------------------------------------------------------------------
    def unlink(self, batch: Batch, flow: Flow, link: Link, reason: str | None) -> None:
        """End ``link`` in this chunk's batch, audited with ``reason`` (None: the caller
        audits what it does instead), and forget it in the translator."""
        batch.drop_links.append(link.id)
        batch.progress = True
        self.translator.forget(link.source_ref, link.target_ref)
        self._index_unlinked_target(flow, link, batch)
        if reason is not None:
            self.ledger.counts(flow).unlinked += 1
            batch.audit.append(
                AuditRow.new(
                    self.run_id,
                    link.target_ref,
                    flow.key,
                    "unlink",
                    {"linked_to": link.source_ref},
                    {"reason": reason},
                )
            )

    def _index_unlinked_target(self, flow: Flow, link: Link, batch: Batch) -> None:
        """A target left by its source keeps the source's ref in its external reference:
        indexed, so the source restored with its id links to it again instead of creating
        a second one (creates leave their records out of that index while linked)."""
        use = self.context.uses[flow.target]
        if use.ext_index is None:
            return
        target = batch.written.get(link.target_ref) or self.store.snapshot(link.target_ref)
        if target is not None and not target.deleted:
            batch.index_external(use, target.rid, target.data)

    def target_deleted(self, flow: Flow, link: Link, batch: Batch) -> None:
        """The target of a link was deleted: the link ends, and the children of either
        side wait for a new counterpart."""
        self.unlink(batch, flow, link, "deleted in target")
        self.requeue_children(link, batch)
        self.ledger.plan_line(
            f"unlink {link.source_ref} ↔ {link.target_ref} (target deleted)",
            "unlink",
            flow,
            link.source_ref,
            link.target_ref,
        )

    def requeue_children(self, link: Link, batch: Batch) -> None:
        """A parent lost its counterpart: its children, on either side, are planned again,
        so they wait for a new counterpart (and follow it) instead of keeping a reference
        to the deleted record until they are edited."""
        for ref in (link.source_ref, link.target_ref):
            parent = Ref.parse(ref)
            for child, path in self.context.children.get((parent.system, parent.etype), ()):
                rids = self.store.referring(*child, path, [parent.id])
                batch.requeue.update(Ref.text(*child, rid) for rid in rids)

    # -- creates ---------------------------------------------------------------------------
    def create(self, flow: Flow, sources: list[Snapshot], batch: Batch) -> None:
        """Create the counterparts of ``sources`` (see :mod:`samband.engine.create`)."""
        self.creates.create(flow, sources, batch)

    # -- updates ---------------------------------------------------------------------------
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
        connector = self.context.connector(system)
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
        setting = self.context.config.systems[system].check_before_update
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
        refs: tuple[str, str] | None = None,
    ) -> Outcome:
        """Write ``changes`` to ``snap``'s record.  A write that did not happen leaves the
        agreed values (``new_base``) of its properties as they were (``old_base``), so the
        next plan sees both sides' edits again instead of a property never agreed on.
        ``origin_modified``: when the values written were edited on the other side;
        ``refs``: the pair's (source, target) refs, for the plan a dry run shows."""
        refs = refs or ((snap.ref, "") if side == "source" else ("", snap.ref))
        system = key[0]
        if not self.context.controls.writes(flow, side):
            _keep_base(flow, side, changes, new_base, old_base)
            # the pair's source ref plans the pair again (either side's write)
            what = f"update {snap.ref}: {show_values(changes)}"
            self.hold(flow, side, [refs[0] or snap.ref], batch, what)
            return "held"
        unkept = self.unkept.get(snap.ref)
        if unkept and unkept.intersection(changes):
            # refused (and quarantined) earlier in this run: not sent again
            again = {path: value for path, value in changes.items() if path in unkept}
            _keep_base(flow, side, again, new_base, old_base)
            changes = {path: value for path, value in changes.items() if path not in unkept}
            if not changes:
                return "refused"
        if self.dry_run:
            self.ledger.counts(flow).updated += 1
            self.ledger.plan_line(
                f"update {snap.ref}: {show_values(changes)}",
                "update",
                flow,
                *refs,
                {
                    path: {"old": snap.data.get(path), "new": to_json(value)}
                    for path, value in changes.items()
                },
            )
            return "written"
        before = {path: snap.data.get(path) for path in changes}
        # checked once per record and run: a value the API reports in another form than it
        # compares would otherwise make every attempt stale
        expected = None if snap.ref in self.stale else before
        self.context.keep_alive()
        use = self.context.uses[key]
        try:
            record = self._update_record(use, snap.rid, changes, expected)
        except Stale:
            # Edited in its system since it was read: read it again (its chunk refreshes
            # it) and plan the pair with what is there now, in a later round.
            self.stale.add(snap.ref)
            # the agreed values stay as they were, so the next plan sees both edits
            _keep_base(flow, side, changes, new_base, old_base)
            batch.snapshots[snap.ref] = SnapshotRow.of_snapshot(
                snap, dirty=self.store.next_seq(), refresh=True
            )
            # the chunk's other dataflows leave it alone until it is read again
            batch.written[snap.ref] = replace(snap, refresh=True)
            batch.progress = True
            self.ledger.plan_line(
                f"{snap.ref} changed since it was read: read again", "read again", flow, *refs
            )
            return "stale"
        except (RecordError, TransientError) as exc:
            transient = isinstance(exc, TransientError) and not isinstance(exc, NotFound)
            self.ledger.quarantine(
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
        written, row = updated_snapshot(
            use,
            snap,
            changes,
            record.data if record is not None else None,
            max(edited, key=_instant) if edited else now_iso(),
            dirty,
        )
        batch.snapshots[snap.ref] = row
        batch.written[snap.ref] = written
        batch.index(use, [row], [written.data])
        batch.audit.append(AuditRow.new(self.run_id, snap.ref, flow.key, "update", before, changes))
        batch.progress = True
        ignored = _not_kept(flow, use, side, changes, record)
        if ignored:
            self.unkept.setdefault(snap.ref, set()).update(ignored)
            # The answer shows a written property not holding the value written (a field
            # the API ignores on update, a trigger that resets it): refused for that
            # property, its agreed value kept, so the other side's edit is never taken back.
            _keep_base(flow, side, {path: changes[path] for path in ignored}, new_base, old_base)
            held = ", ".join(
                f"{path} (wrote {changes[path]!r}, it holds {value!r})"
                for path, value in ignored.items()
            )
            self.ledger.quarantine(
                flow,
                snap.ref,
                "not kept",
                f"{system} did not keep the value written to {held}: the field may be "
                f"locked or reset by {system}; correct it there (or stop mapping it), then "
                "`samband retry`",
                batch,
                {"changes": changes},
            )
            if len(ignored) < len(changes):
                self.ledger.counts(flow).updated += 1
            return "refused"
        self.ledger.counts(flow).updated += 1
        return "written"

    # -- deletions ---------------------------------------------------------------------------
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
        self.ledger.counts(flow).conflicts += 1
        self.ledger.plan_line(
            f"keep {link.target_ref}: {reason}", "keep", flow, link.source_ref, link.target_ref
        )
        if not self.dry_run:
            rows = [
                ConflictRow.new(
                    self.run_id,
                    flow.key,
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

    def _other_sources(self, flow: Flow, link: Link, batch: Batch) -> list[str]:
        """The live sources that other dataflows link to the target of ``link`` (read
        only for a deletion that would delete or archive it: rare, one query each)."""
        others = [
            other.source_ref
            for other in self.store.links_touching([link.target_ref])
            if other.target_ref == link.target_ref
            and other.dataflow != flow.key
            and other.id not in batch.drop_links
        ]
        return _live(self.store, others) if others else []

    def source_deleted(self, flow: Flow, link: Link, target: Snapshot | None, batch: Batch) -> None:
        """The source of a link was deleted: unlink, delete or archive the target, as the
        dataflow's policy says (keeping a target edited since the last sync)."""
        policy = flow.config.on_delete
        if (
            policy != "unlink"
            and target is not None
            and not target.deleted
            and not self.context.controls.writes(flow, "target")
        ):
            self.hold(flow, "target", [link.source_ref], batch, f"{policy} {link.target_ref}")
            return
        if policy == "unlink" or target is None or target.deleted:
            self.unlink(batch, flow, link, "deleted in source")
            self.ledger.plan_line(
                f"unlink {link.source_ref} ↔ {link.target_ref} (source deleted)",
                "unlink",
                flow,
                link.source_ref,
                link.target_ref,
            )
            return
        others = self._other_sources(flow, link, batch)
        if others:
            # one real-world thing entered in several systems: it lives on while another
            # of them still has it; only this link ends
            kept = ", ".join(others)
            self.unlink(
                batch,
                flow,
                link,
                f"deleted in source; not {policy}d: {link.target_ref} is still linked to {kept}",
            )
            self.ledger.plan_line(
                f"unlink {link.source_ref} ↔ {link.target_ref} (source deleted; the target "
                f"stays, linked to {kept})",
                "unlink",
                flow,
                link.source_ref,
                link.target_ref,
            )
            self.ledger.messages.append(
                f"{flow.key}: {link.source_ref} was deleted; {link.target_ref} is not "
                f"{policy}d as its policy says, since {kept} still links to it: unlinked only"
            )
            return
        self.unlink(batch, flow, link, None)  # audited as the delete or archive
        system, etype = flow.target
        connector = self.context.connector(system)
        use = self.context.uses[flow.target]
        if self._kept_for_edit(flow, link, target, connector, use):
            return
        if self.dry_run:
            self.ledger.counts(flow).deleted += 1
            self.ledger.plan_line(
                f"{policy} {link.target_ref} (source {link.source_ref} deleted)",
                policy,
                flow,
                link.source_ref,
                link.target_ref,
            )
            return
        self.context.keep_alive()
        try:
            if policy == "propagate":
                try:
                    connector.delete(etype, target.rid)
                    row = SnapshotRow.deleted_record(system, etype, target.rid, now_iso(), 0)
                    batch.snapshots[target.ref] = row
                    batch.index(use, [row], [None])
                    batch.audit.append(
                        AuditRow.new(self.run_id, target.ref, flow.key, "delete", target.data, None)
                    )
                    self.ledger.counts(flow).deleted += 1
                    return
                except InUse:
                    if flow.target_et.archive is None:
                        raise
                except NotFound:
                    return
            record = connector.archive(etype, target.rid)
            archive = flow.target_et.archive
            changes = {archive[0]: archive[1]} if archive else {}
            _archived, row = updated_snapshot(
                use, target, changes, record.data if record else None, now_iso(), 0
            )
            batch.snapshots[target.ref] = row
            batch.audit.append(
                AuditRow.new(self.run_id, target.ref, flow.key, "archive", None, changes)
            )
            self.ledger.counts(flow).deleted += 1
            self.ledger.counts(flow).archived += 1
        except (RecordError, TransientError) as exc:
            self.ledger.quarantine(
                flow,
                link.target_ref,
                "rejected",
                f"could not {policy} after {link.source_ref} was deleted: {exc}",
                batch,
            )


def _live(store: Store, refs: list[str]) -> list[str]:
    """Those of ``refs`` whose record is not deleted (as last read)."""
    by_type: dict[tuple[str, str], list[str]] = {}
    for ref in refs:
        parsed = Ref.parse(ref)
        by_type.setdefault((parsed.system, parsed.etype), []).append(parsed.id)
    live = []
    for (system, etype), rids in by_type.items():
        snaps = store.snapshots(system, etype, rids)
        live += [
            Ref.text(system, etype, rid)
            for rid in rids
            if not (rid in snaps and snaps[rid].deleted)
        ]
    return sorted(live)


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


def _not_kept(
    flow: Flow, use: TypeUse, side: str, changes: dict[str, Any], record: RecordData | None
) -> dict[str, Any]:
    """The written properties whose value in the write's answer is not the value written
    (compared in the mapping's type, so a form the API normalises to is kept), path →
    the value the answer holds.  A property the answer leaves out is taken as kept."""
    if record is None or not isinstance(record.data, dict):
        return {}
    steps = dict(use.path_steps)
    ignored: dict[str, Any] = {}
    for m in flow.mappings:
        path = m.target if side == "target" else m.source
        if path not in changes or m.is_reference or path not in steps:
            continue
        step = steps[path]
        data = record.data
        held = data.get(path, MISSING) if step is None else get_steps(data, step, MISSING)
        if held is MISSING:
            continue
        kind = m.type if side == "target" else m.source_type
        try:
            same = _same(coerce(held, kind), coerce(changes[path], kind))
        except ConversionError:
            same = False
        if not same:
            ignored[path] = held
    return ignored


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
