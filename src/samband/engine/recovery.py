"""Crash recovery of creates.

A create intent is written (and committed) before the create call and removed with the
link it led to.  One still open at the start of a run belongs to a create whose outcome is
unknown: the record is looked up — by the external reference stamped into it, else by the
merge criteria, else (neither configured) as the one unlinked record with exactly the
values sent — and linked; it is never created again.  Its source record is queued, so the
run finishes what the interrupted one began.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from samband.connectors.base import RecordData
from samband.engine.context import RunContext
from samband.engine.model import Flow
from samband.engine.records import combination_key, created_snapshot, modified_of
from samband.errors import ConversionError
from samband.store.rows import AuditRow, LinkRow, Ref, Snapshot
from samband.types import coerce, from_json


class IntentRecovery:
    """Resolves the open create intents of a store, once, at the start of a run."""

    def __init__(self, context: RunContext) -> None:
        self.context = context
        self.store, self.translator, self.run_id = context.store, context.translator, context.run_id

    def recover(self) -> set[str]:
        """Resolve every open intent; return the source refs queued again."""
        queued: set[str] = set()
        intents = self.store.open_intents()
        flows = {f.key: f for f in self.context.flows}
        for intent in intents:
            flow = flows.get(intent["dataflow"])
            with self.store.tx():
                if flow is None:
                    self.store.remove_intents([intent["key"]])
                    continue
                try:
                    record = self._find_created(flow, intent)
                except Ambiguous as exc:
                    # the intent stays open, so nothing is created again until one of the
                    # candidates is linked by hand or removed
                    self.store.add_dead_letter(
                        intent["source_ref"], flow.key, "ambiguous", str(exc), None, self.run_id
                    )
                    continue
                if record is not None:
                    self._link_recovered(flow, intent, record)
                self.store.remove_intents([intent["key"]])
                self.store.set_dirty([intent["source_ref"]])
                queued.add(intent["source_ref"])
        return queued

    def _find_created(self, flow: Flow, intent: dict[str, Any]) -> RecordData | Snapshot | None:
        connector = self.context.connector(flow.target[0])
        if flow.target_et.external_ref_field:
            return connector.find_by_external_ref(flow.target[1], intent["external_ref"])
        values = loads_values(intent["values"])
        for index, combination in enumerate(flow.match):
            key = combination_key(
                [values.get(t.target) for t in combination], [t.normalizer for t in combination]
            )
            if key is None:
                continue
            rids = self.store.lookup_match(flow.match_index(index), [key]).get(key, [])
            linked = self.store.links_by(
                flow.key, "target", [Ref.text(*flow.target, r) for r in rids]
            )
            free = [r for r in rids if Ref.text(*flow.target, r) not in linked]
            if free:
                snaps = self.store.snapshots(*flow.target, free)
                return _one_created(flow, intent, [snaps[r] for r in free if r in snaps])
        if not flow.match:
            return self._find_by_content(flow, values, intent)
        return None

    def _find_by_content(
        self, flow: Flow, values: dict[str, Any], intent: dict[str, Any]
    ) -> Snapshot | None:
        """No external reference and no merge criteria to look the record up by: the one
        unlinked target record (collected this run) whose mapped values are exactly those
        the interrupted create sent.  None when there is no such record (the create never
        reached the API); see :func:`_one_created` for several."""
        compared = [m for m in flow.mappings if m.target in values]
        if not compared:
            return None
        snaps = self.store.live_snapshots(*flow.target)
        linked = self.store.links_by(flow.key, "target", [snap.ref for snap in snaps.values()])

        def same(snap: Snapshot) -> bool:
            try:
                return all(
                    coerce(snap.data.get(m.target), m.type) == coerce(values[m.target], m.type)
                    for m in compared
                )
            except (ValueError, TypeError, ConversionError):
                return False

        found = [snap for snap in snaps.values() if snap.ref not in linked and same(snap)]
        return _one_created(flow, intent, found) if found else None

    def _link_recovered(
        self, flow: Flow, intent: dict[str, Any], record: RecordData | Snapshot
    ) -> None:
        rid = record.rid if isinstance(record, Snapshot) else record.id
        target_ref = Ref.text(*flow.target, rid)
        if self.store.links_by(flow.key, "source", [intent["source_ref"]]):
            return
        if self.store.links_by(flow.key, "target", [target_ref]):
            return
        values = loads_values(intent["values"])
        base = {m.target: values.get(m.target) for m in flow.mappings if m.direction != "backward"}
        self.store.add_links(
            [
                LinkRow.new(
                    flow.key, intent["source_ref"], target_ref, base, "recovered", self.run_id
                )
            ]
        )
        if isinstance(record, RecordData):
            use = self.context.uses[flow.target]
            _snap, row = created_snapshot(
                use, record.id, {}, record.data, modified_of(use, record), 0
            )
            self.store.put_snapshots([row])
        self.store.add_audit(
            [AuditRow.new(self.run_id, target_ref, flow.key, "recover", None, base)]
        )
        self.translator.learn((intent["source_ref"], target_ref))


class Ambiguous(Exception):
    """Several unlinked records may be the one an interrupted create made."""


def _one_created(flow: Flow, intent: dict[str, Any], found: list[Snapshot]) -> Snapshot:
    """The one of ``found`` the interrupted create made: the only one, or the only one
    changed since the create was sent (a record there before is older).  Raises
    :class:`Ambiguous` when that does not tell: nothing is linked, or created, by guess."""
    if len(found) == 1:
        return found[0]
    sent = _instant(intent["created_at"])
    newer = [snap for snap in found if (at := _instant(snap.modified)) and sent and at >= sent]
    if len(newer) == 1:
        return newer[0]
    refs = ", ".join(sorted(snap.ref for snap in found)[:5])
    raise Ambiguous(
        f"a create into {flow.target[0]}.{flow.target[1]} was interrupted and {len(found)} "
        f"unlinked records may be the one it made ({refs}); nothing is created again until "
        "one is left: remove the extra record(s) in the system, then `samband retry`"
    )


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def loads_values(text: str) -> dict[str, Any]:
    """The values an intent recorded (canonical types restored)."""
    return {k: from_json(v) for k, v in orjson.loads(text).items()}
