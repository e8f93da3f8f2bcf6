"""Creates: each written as an intent (committed durably) before the API call, then
the link, the new snapshot and the base stored with the rest of the chunk.  A create
whose outcome is unknown keeps its intent open; the next run resolves it by lookup
(:mod:`samband.engine.recovery`), never by creating again."""

from __future__ import annotations

import hashlib
from typing import Any

from samband import _killpoint as killpoint
from samband.connectors.base import Connector, RecordData
from samband.engine.batch import Batch
from samband.engine.context import RunContext
from samband.engine.model import Flow, TypeKey
from samband.engine.plan import WaitForParent, create_values
from samband.engine.records import created_snapshot, modified_of
from samband.engine.waits import wait_for_parent
from samband.errors import ConversionError, RecordError, TransientError
from samband.store.rows import AuditRow, CreateIntent, LinkRow, Ref, Snapshot, SnapshotRow, now_iso
from samband.types import to_json

# a create about to be sent: the source, the values, the base they set, the external ref
_Prepared = tuple[Snapshot, dict[str, Any], dict[str, Any], str]


def external_ref(flow: Flow, source_ref: str) -> str:
    """What creates stamp into the target's external-reference field: the source ref, or a
    stable digest of it when the field would not hold it (PowerOffice GO: 50 chars)."""
    if len(source_ref) <= 50:
        return source_ref
    digest = hashlib.blake2b(f"{flow.key}|{source_ref}".encode(), digest_size=12).hexdigest()
    return f"samband:{digest}"


class Creates:
    """The creates of one run."""

    def __init__(self, context: RunContext, propagates: dict[tuple[TypeKey, str], bool]) -> None:
        self.context = context
        self.store, self.translator, self.ledger = context.store, context.translator, context.ledger
        self.dry_run, self.run_id = context.dry_run, context.run_id
        # whether a record written into a type is planned again (see Apply)
        self.propagates = propagates
        # keys of create intents whose outcome is unknown (read once after recovery)
        self.unresolved: set[str] = set()

    def create(self, flow: Flow, sources: list[Snapshot], batch: Batch) -> None:
        tsys, ttype = flow.target
        if not self.context.controls.writes(flow, "target"):
            # writing to the target is off: each create is held (planned again when on)
            for snap in sources:
                self.ledger.counts(flow).held += 1
                batch.hold(flow.key, [snap.ref], "share")
                self.ledger.plan_line(
                    f"held: create {tsys}.{ttype} from {snap.ref} (writing to {tsys} is off)",
                    "held",
                    flow,
                    snap.ref,
                )
            return
        prepared: list[_Prepared] = []
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
                if parent == snap.ref or self.ledger.is_waiting(flow, parent):
                    deferred.append(parent)
                    return True
                return False

            try:
                values, base = create_values(flow, snap.data, self.translator, later)
            except WaitForParent as wait:
                wait_for_parent(self.context, flow, snap, wait.parent, batch)
                continue
            except ConversionError as exc:
                self.ledger.quarantine(flow, snap.ref, "conversion", str(exc), batch)
                continue
            if deferred:
                batch.keep_dirty.add(snap.ref)  # planned again once created: the reference
            prepared.append((snap, values, base, external_ref(flow, snap.ref)))
        if not prepared:
            return
        if self.dry_run:
            for snap, values, _base, _ext in prepared:
                self.ledger.counts(flow).created += 1
                self.ledger.plan_line(
                    f"create {tsys}.{ttype} from {snap.ref}: {show_values(values)}",
                    "create",
                    flow,
                    snap.ref,
                    changes={k: {"old": None, "new": to_json(v)} for k, v in values.items()},
                )
            return
        now = now_iso()
        intents = [
            CreateIntent(
                key=f"{flow.key}|{snap.ref}",
                source_ref=snap.ref,
                external_ref=ext,
                values={k: to_json(v) for k, v in values.items()},
            )
            for snap, values, _base, ext in prepared
        ]
        with self.store.durable_tx():
            self.store.add_intents(flow.key, flow.target, intents, self.run_id, now)
        connector = self.context.connector(tsys)
        use = self.context.uses[flow.target]
        stamp = flow.target_et.external_ref_field is not None
        outcomes = self._create_all(connector, ttype, prepared, stamp)
        rows: list[SnapshotRow] = []
        datas: list[dict[str, Any] | None] = []
        try:
            for item, intent, outcome in zip(prepared, intents, outcomes, strict=True):
                created = self._record_create(flow, item, intent["key"], outcome, batch, now)
                if created is not None:
                    datas.append(created[0])
                    rows.append(created[1])
        finally:
            # a record created here is linked: its external reference is indexed when the
            # link ends (see Apply.unlink), or when it is read changed — not by the thousand
            batch.index(use, rows, datas, external=False)

    def _record_create(
        self,
        flow: Flow,
        item: _Prepared,
        intent_key: str,
        outcome: RecordData | RecordError | TransientError,
        batch: Batch,
        now: str,
    ) -> tuple[dict[str, Any], SnapshotRow] | None:
        """Record the outcome of one create in the batch; the new record's data and row."""
        tsys, ttype = flow.target
        snap, values, base, ext = item
        if isinstance(outcome, RecordError):
            batch.intents_done.append(intent_key)
            self.ledger.quarantine(
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
            self.ledger.quarantine(flow, snap.ref, "transient", str(outcome), batch)
            return None
        use = self.context.uses[flow.target]
        target_ref = Ref.text(tsys, ttype, outcome.id)
        # a new record has no mark to clear
        dirty = self.store.next_seq() if self.propagates[(flow.target, flow.key)] else None
        stamped = values
        if flow.target_et.external_ref_field:
            # the stamp is the new record's too (its external-reference index entry)
            stamped = {flow.target_et.external_ref_field: ext, **values}
        created = created_snapshot(
            use, str(outcome.id), stamped, outcome.data, modified_of(use, outcome) or now, dirty
        )
        batch.snapshots[target_ref] = created[1]
        batch.links.append(
            LinkRow.new(flow.key, snap.ref, target_ref, base, "created", self.run_id, now)
        )
        batch.claimed.add(target_ref)
        batch.intents_done.append(intent_key)
        batch.audit.append(
            AuditRow.new(self.run_id, target_ref, flow.key, "create", None, values, now)
        )
        batch.ok(flow, snap.ref)
        batch.progress = True
        self.translator.learn((snap.ref, target_ref))
        self.ledger.counts(flow).created += 1
        return created

    def _create_all(
        self, connector: Connector, etype: str, prepared: list[_Prepared], stamp: bool
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
            self.context.keep_alive()
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


def show_values(values: dict[str, Any]) -> str:
    """A short rendering of written values, for a dry run's plan."""
    return ", ".join(f"{k}={v!r}" for k, v in list(values.items())[:8])
