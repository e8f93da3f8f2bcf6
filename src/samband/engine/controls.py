"""Per-dataflow controls, as one run applies them.

* **pause** — a paused dataflow is not read, planned or written by any run.  A type only
  paused dataflows use is not read at all (its cursor stays, so what changed is read after
  resume); a record of a type another dataflow reads is cleared from the queue by that
  dataflow's run and kept for the paused one (``missed``), queued again by its next run.
  The same holds for a dataflow a run leaves out (``Engine.sync(dataflows=[...])``).
* **writes to a side** ("share enabled") — with writing to its source or target off, the
  dataflow still reads both and plans, but every write to that side (update, create,
  delete, archive) is *held*: not sent, the pair's agreed values kept, the record kept
  (``share``) and planned again when writing is switched on.
* **full sync** — on (the default), every source record without a counterpart gets one.
  Off ("only new records"), the source records that existed at the start mark — those
  the store held when it was switched off, or, if the store had not read the source type
  yet, those the first run after it reads — are linked when they match a record, never
  created; records that appear later are created as usual.  Switched on again, the
  records left uncreated are planned again, and created.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from samband.engine.model import Flow, TypeKey
from samband.errors import SambandError
from samband.store.controls import ControlRow
from samband.store.rows import Ref
from samband.store.store import Store

SIDES = ("source", "target")


@dataclass
class RunControls:
    """The controls of one run: which dataflows it plans, and what each may write."""

    rows: dict[str, ControlRow] = field(default_factory=dict)
    active: set[str] | None = None  # None: every dataflow

    def runs(self, flow: Flow) -> bool:
        return self.active is None or flow.key in self.active

    def writes(self, flow: Flow, side: str) -> bool:
        row = self.rows.get(flow.key)
        if row is None:
            return True
        return row.write_source if side == "source" else row.write_target

    def only_new(self, flow: Flow) -> bool:
        row = self.rows.get(flow.key)
        return row is not None and not row.full_sync


def parents(flow: Flow, flows: list[Flow]) -> list[Flow]:
    """The dataflows that link the records ``flow``'s references point at: run without
    them, its records would wait for parents no run links."""
    found = []
    for m in flow.mappings:
        if not m.is_reference:
            continue
        source = (flow.source[0], m.source_ref_type) if m.source_ref_type else None
        target = (flow.target[0], m.target_ref_type) if m.target_ref_type else None
        for other in flows:
            if other.key == flow.key or other in found:
                continue
            ends = {other.source, other.target}
            if (source is None or source in ends) and (target is None or target in ends):
                found.append(other)
    return found


def select_flows(
    flows: list[Flow], rows: dict[str, ControlRow], wanted: Iterable[str] | None
) -> tuple[set[str], list[str]]:
    """The keys of the dataflows a run plans (``wanted`` and the dataflows they depend
    on, none paused), and what to tell the user about those left out."""
    by_key = {flow.key: flow for flow in flows}
    paused = {key for key, row in rows.items() if row.paused and key in by_key}
    messages = []
    if wanted is None:
        chosen = set(by_key)
    else:
        wanted = list(wanted)
        unknown = [key for key in wanted if key not in by_key]
        if unknown:
            raise SambandError(
                f"dataflow {unknown[0]!r} is not in the config; its dataflows are: "
                f"{', '.join(by_key)}"
            )
        chosen = set()
        todo = list(wanted)
        while todo:
            key = todo.pop()
            if key in chosen:
                continue
            chosen.add(key)
            todo.extend(parent.key for parent in parents(by_key[key], flows))
        added = sorted(chosen - set(wanted))
        if added:
            messages.append(
                f"also run, as the dataflows asked for refer to their records: {', '.join(added)}"
            )
    for key in sorted(chosen & paused):
        messages.append(f"{key}: paused, not run (`samband dataflow resume {key}`)")
    return chosen - paused, messages


def prepare(store: Store, flows: list[Flow], controls: RunControls) -> list[str]:
    """Before the plan: queue again what the dataflows run now missed while they did not
    run, and take the baseline of "only new records" where it is still to be taken."""
    messages = []
    for flow in flows:
        if not controls.runs(flow):
            continue
        missed = store.controls.release(flow.key, "missed")
        if controls.writes(flow, "source") and controls.writes(flow, "target"):
            # writes held by a run that began before writing was switched on again
            missed += store.controls.release(flow.key, "share")
        if missed:
            store.set_dirty(missed)
        row = controls.rows.get(flow.key)
        wants_baseline = row is not None and not row.full_sync and not row.baseline_taken
        if wants_baseline and take_baseline(store, flow.key, flow.source):
            controls.rows[flow.key] = store.controls.get(flow.key)
            messages.append(
                f"{flow.key}: full sync is off; the source records read so far are "
                "linked if they match, never created"
            )
    return messages


def take_baseline(store: Store, dataflow: str, source: TypeKey) -> bool:
    """Record the live source records of ``dataflow`` as existing before its start mark;
    False while the store has not read the source type."""
    if not store.has_snapshots(*source) and store.get_cursor(*source)[0] is None:
        return False
    refs = [Ref.text(*source, rid) for rid in store.snapshot_table.live_rids(*source)]
    store.controls.add_baseline(dataflow, refs)
    store.controls.mark_baseline(dataflow)
    return True
