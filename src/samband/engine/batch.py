"""The store rows one chunk of queued records produces, stored in one transaction at the
end of the chunk (see :meth:`Batch.store`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from samband.engine.model import Flow, TypeKey, TypeUse
from samband.engine.records import external_entry, match_entries
from samband.store.rows import AuditRow, DeadLetter, LinkRow, Snapshot, SnapshotRow
from samband.store.store import Store


@dataclass
class Batch:
    """Store rows gathered while one chunk is processed."""

    links: list[LinkRow] = field(default_factory=list)
    bases: dict[int, dict[str, Any]] = field(default_factory=dict)
    drop_links: list[int] = field(default_factory=list)
    snapshots: dict[str, SnapshotRow] = field(default_factory=dict)
    match: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)
    audit: list[AuditRow] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    resolved: dict[str, set[str]] = field(default_factory=dict)
    waiting_done: dict[str, set[str]] = field(default_factory=dict)
    intents_done: list[str] = field(default_factory=list)
    resolutions_done: list[int] = field(default_factory=list)  # conflict ids applied
    keep_dirty: set[str] = field(default_factory=set)
    claimed: set[str] = field(default_factory=set)  # target refs linked in this chunk
    requeue: set[str] = field(default_factory=set)  # records to plan again (other chunks)
    # the records of the chunk as this chunk's writes left them (ref → snapshot): a
    # record written for one dataflow is planned with what was written for the next
    written: dict[str, Snapshot] = field(default_factory=dict)
    progress: bool = False
    # dataflow → reason → refs it has still to plan (see samband.engine.controls)
    held: dict[str, dict[str, set[str]]] = field(default_factory=dict)

    def hold(self, dataflow: str, refs: list[str], reason: str) -> None:
        self.held.setdefault(dataflow, {}).setdefault(reason, set()).update(refs)

    def ok(self, flow: Flow, ref: str) -> None:
        """``ref`` was synchronized: what was set aside or waiting for it is done."""
        self.resolved.setdefault(flow.key, set()).add(ref)
        self.waiting_done.setdefault(flow.key, set()).add(ref)

    def current(self, chunk: dict[str, Snapshot]) -> list[Snapshot]:
        """The records of ``chunk`` as the writes of this chunk left them."""
        written = self.written
        if not written:
            return list(chunk.values())
        return [written.get(snap.ref, snap) for snap in chunk.values()]

    def index(
        self,
        use: TypeUse,
        rows: list[SnapshotRow],
        datas: list[dict[str, Any] | None],
        *,
        external: bool = True,
    ) -> None:
        """Keep the merge-criteria keys of written target records up to date (with
        ``external``, their external-reference values too)."""
        for name, entries in match_entries(use, rows, datas, external=external).items():
            self.match.setdefault(name, []).extend(entries)

    def index_external(self, use: TypeUse, rid: str, data: dict[str, Any]) -> None:
        """Index the external-reference value of one record of ``use``'s type."""
        if use.ext_index is not None:
            self.match.setdefault(use.ext_index, []).append(external_entry(use, rid, data))

    def store(self, store: Store, key: TypeKey, seen: list[tuple[str, int]], run_id: int) -> None:
        """Write everything gathered, and clear the queue marks of ``seen`` (rid, mark) of
        type ``key``, in one transaction."""
        with store.tx():
            if self.drop_links:
                store.delete_links(self.drop_links)
            store.add_links(self.links)
            store.set_bases(list(self.bases.items()))
            store.put_snapshots(list(self.snapshots.values()))
            for name, entries in self.match.items():
                store.set_match_keys(name, entries)
            store.add_audit(self.audit)
            for flow_key, refs in self.resolved.items():
                store.resolve_dead_letters(refs, flow_key)
            for letter in self.dead:
                store.add_dead_letter(*letter, run_id)
            for flow_key, refs in self.waiting_done.items():
                store.done_waiting(flow_key, refs)
            store.remove_intents(self.intents_done)
            if self.resolutions_done:
                store.journal.resolutions_applied(self.resolutions_done)
            for dataflow, reasons in self.held.items():
                for reason, refs in reasons.items():
                    store.controls.hold(dataflow, refs, reason)
            store.clear_dirty(key[0], key[1], seen)
            if self.requeue:
                store.set_dirty(sorted(self.requeue))
