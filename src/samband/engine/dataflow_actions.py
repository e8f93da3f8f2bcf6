"""The controls of a dataflow, as a person sets them (``samband dataflow ...``, the
service's dataflow page, its JSON API): pause and resume, writing to a side on or off
("share"), full sync on or off.  What each means for a run: :mod:`samband.engine.controls`.

Each takes effect at the next run (a run in progress goes on as it began), is stored in one
transaction and recorded in the audit trail with who did it (``samband history
dataflow:KEY``)."""

from __future__ import annotations

from typing import Any

from samband.config.model import Config
from samband.engine.actions import ActionError, Done
from samband.engine.controls import SIDES, take_baseline
from samband.store import schema as s
from samband.store.controls import ControlRow
from samband.store.rows import AuditRow, loads, now_iso
from samband.store.store import Store


def control_ref(dataflow: str) -> str:
    """The ref the audit trail records a dataflow's controls under."""
    return f"dataflow:{dataflow}"


class DataflowActions:
    def __init__(self, config: Config, store: Store, actor: str | None = None) -> None:
        self.config, self.store, self.actor = config, store, actor

    def _flow(self, key: str) -> tuple[str, str, str]:
        for flow in self.config.dataflows:
            if flow.key == key:
                return flow.key, flow.source, flow.target
        keys = ", ".join(flow.key for flow in self.config.dataflows)
        raise ActionError(f"there is no dataflow {key!r} in the config; its dataflows: {keys}")

    def controls(self) -> list[dict[str, Any]]:
        """Every dataflow of the config with its controls and the records it holds."""
        rows = self.store.controls.all()
        held = self.store.controls.count_held()
        quarantined = self.store.controls.quarantined()
        return [
            as_dict(rows.get(flow.key) or ControlRow(flow.key), held.get(flow.key, {}))
            | {"quarantined": quarantined.get(flow.key, 0)}
            for flow in self.config.dataflows
        ]

    def control(self, key: str) -> dict[str, Any]:
        self._flow(key)
        row = self.store.controls.get(key)
        return as_dict(row, self.store.controls.count_held().get(key, {}))

    def view(self, key: str, runs: int = 60) -> dict[str, Any]:
        """What the service's dataflow page shows of the store: the controls, the links,
        what is queued, quarantined or held, and the dataflow's counts in the last
        ``runs`` runs (oldest first; ``ran`` false where the run left it out)."""
        _key, source, target = self._flow(key)
        history = []
        rows = self.store.table_rows(s.runs, order=s.runs.c.id.desc(), limit=runs)
        for row in reversed(rows):
            stats = loads(row["stats"]) or {}
            counts = (stats.get("dataflows") or {}).get(key)
            if row["dry_run"] or counts is None:
                continue
            ran = stats.get("ran")
            history.append(
                {
                    "run": row["id"],
                    "finished": row["finished_at"],
                    "status": row["status"],
                    "ran": True if ran is None else key in ran,
                    **counts,
                }
            )
        queued = {
            f"{system}.{etype}": self.store.count_dirty(system, etype)
            for system, etype in (side.split(".", 1) for side in dict.fromkeys((source, target)))
        }
        return {
            **self.control(key),
            "source": source,
            "target": target,
            "links": self.store.count_links(key),
            "queued": queued,
            "quarantined": self.store.controls.quarantined().get(key, 0),
            "history": history,
            "changes": [
                {
                    "at": r["at"],
                    "op": r["op"],
                    "before": loads(r["before"]),
                    "after": loads(r["after"]),
                }
                for r in self.store.table_rows(
                    s.audit,
                    where=s.audit.c.ref == control_ref(key),
                    order=s.audit.c.id.desc(),
                    limit=20,
                )
            ],
        }

    # -- the controls -----------------------------------------------------------------------
    def pause(self, key: str) -> Done:
        self._flow(key)
        before = self.store.controls.get(key)
        with self.store.tx():
            self.store.controls.set(key, self.actor, paused=True)
            self._audit(key, "pause", {"paused": before.paused}, {"paused": True})
        return Done(
            "pause",
            [control_ref(key)],
            {"dataflow": key, "paused": True, "was": before.paused},
            "no run reads, plans or writes it until `samband dataflow resume` (a run in "
            "progress finishes as it began); what changes meanwhile is synced after the resume",
        )

    def resume(self, key: str) -> Done:
        self._flow(key)
        before = self.store.controls.get(key)
        with self.store.tx():
            self.store.controls.set(key, self.actor, paused=False)
            self._audit(key, "resume", {"paused": before.paused}, {"paused": False})
        return Done(
            "resume",
            [control_ref(key)],
            {"dataflow": key, "paused": False, "was": before.paused},
            "the next run syncs what changed while it was paused",
        )

    def share(self, key: str, side: str, on: bool) -> Done:
        """Writing to ``side`` (source or target) of dataflow ``key`` on or off; switched
        on, the writes held meanwhile are planned again by the next run."""
        if side not in SIDES:
            raise ActionError(f"side {side!r}: give source or target")
        _key, source, target = self._flow(key)
        column = f"write_{side}"
        before = self.store.controls.get(key)
        queued = 0
        with self.store.tx():
            self.store.controls.set(key, self.actor, **{column: on})
            if on:
                held = self.store.controls.release(key, "share")
                queued = self.store.set_dirty(held) if held else 0
            self._audit(key, "share", {column: getattr(before, column)}, {column: on})
        system = (source if side == "source" else target).split(".", 1)[0]
        return Done(
            "share",
            [control_ref(key)],
            {"dataflow": key, "side": side, "system": system, "writes": on, "queued": queued},
            f"the next run writes to {system} again ({queued} record(s) held are planned again)"
            if on
            else f"runs read {system} but write nothing to it for this dataflow; the writes "
            "are held and sent when you switch writing on again",
        )

    def full_sync(self, key: str, on: bool) -> Done:
        """Full sync on: every source record without a counterpart gets one; off: only
        records that appear from now on are created (those that existed are linked if they
        match)."""
        _key, source, _target = self._flow(key)
        before = self.store.controls.get(key)
        detail: dict[str, Any] = {"dataflow": key, "full_sync": on}
        with self.store.tx():
            if on:
                self.store.controls.set(key, self.actor, full_sync=True, start_mark=None)
                existed = self.store.controls.drop_baseline(key)
                detail["queued"] = self.store.set_dirty(existed) if existed else 0
                step = (
                    f"the next run creates counterparts of the {detail['queued']} record(s) "
                    "that existed before and have none"
                )
            elif not before.full_sync:
                step = "nothing: full sync was off already"
            else:
                self.store.controls.set(
                    key, self.actor, full_sync=False, start_mark=now_iso(), baseline_taken=False
                )
                self.store.controls.drop_baseline(key)
                system, etype = source.split(".", 1)
                taken = take_baseline(self.store, key, (system, etype))
                step = (
                    "records that exist now are linked if they match, never created; new ones "
                    "are created"
                    if taken
                    else "the records the next run reads of the source count as existing: "
                    "linked if they match, never created; later ones are created"
                )
            self._audit(key, "full-sync", {"full_sync": before.full_sync}, {"full_sync": on})
        return Done("full-sync", [control_ref(key)], detail, step)

    def _audit(self, key: str, op: str, before: dict[str, Any], after: dict[str, Any]) -> None:
        by = {"by": self.actor} if self.actor else {}
        self.store.add_audit([AuditRow.new(None, control_ref(key), key, op, before, after | by)])


def as_dict(row: ControlRow, held: dict[str, int]) -> dict[str, Any]:
    return {
        "dataflow": row.dataflow,
        "paused": row.paused,
        "write_source": row.write_source,
        "write_target": row.write_target,
        "full_sync": row.full_sync,
        "start_mark": row.start_mark,
        "held": held.get("share", 0),
        "missed": held.get("missed", 0),
        "updated_at": row.updated_at,
        "updated_by": row.updated_by,
    }
