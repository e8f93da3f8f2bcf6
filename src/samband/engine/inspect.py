"""Views of the store for ``samband status|links|conflicts|errors|history``, ``retry``
(which only re-queues records), and the actions on what they show (``conflicts resolve``,
``errors dismiss``, ``unlink``, ``link``, ``resync``: see :mod:`samband.engine.actions`)."""

from __future__ import annotations

import os
from typing import Any

from samband.config.loader import base_dir
from samband.config.model import Config
from samband.config.validate import load_valid
from samband.engine.actions import Actions
from samband.engine.dataflow_actions import DataflowActions
from samband.engine.find import catch_up, find_records
from samband.store import schema as s
from samband.store.rows import Ref, loads, now_iso
from samband.store.store import Store


class Inspector:
    def __init__(self, config: Config, store_url: str | None = None) -> None:
        self.config = config
        self.store = Store(store_url or config.store, base_dir=base_dir(config))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Inspector:
        return cls(load_valid(path).config)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Inspector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def counts(self) -> dict[str, Any]:
        """The links per dataflow, the conflicts and the quarantined records: counted in
        the store (each a pass over an index; see :meth:`status`)."""
        by_flow = self.store.count_links_by_dataflow()
        return {
            "links": {flow.key: by_flow.get(flow.key, 0) for flow in self.config.dataflows},
            "conflicts": self.store.count_rows(s.conflicts),
            "quarantined": self.store.count_rows(
                s.dead_letters, s.dead_letters.c.dismissed_at.is_(None)
            ),
        }

    def change_mark(self) -> tuple[Any, ...]:
        """Changes whenever :meth:`counts` may have (see ``Store.change_mark``)."""
        return self.store.change_mark()

    def ping(self) -> None:
        """One small query: the store answers (the readiness probe)."""
        self.store.table_rows(s.runs, order=s.runs.c.id.desc(), limit=1)

    def status(self, counts: dict[str, Any] | None = None) -> dict[str, Any]:
        """What `samband status` shows; ``counts`` as :meth:`counts` returns them, when the
        caller keeps them (the service, between changes of the store)."""
        counts = counts if counts is not None else self.counts()
        runs = self.store.table_rows(s.runs, order=s.runs.c.id.desc(), limit=5)
        last = [
            {
                "run": r["id"],
                "started": r["started_at"],
                "finished": r["finished_at"],
                "status": r["status"],
                **_totals(loads(r["stats"]) or {}),
                "reason": _reason(r["status"], loads(r["stats"]) or {}),
            }
            for r in runs
        ]
        links_by_flow: dict[str, int] = counts["links"]
        return {
            "store": _safe_store(self.config.store),
            "runs": last,
            "links": [{"dataflow": k, "links": v} for k, v in links_by_flow.items()],
            "cursors": [
                {
                    "type": f"{c['system']}.{c['etype']}",
                    "cursor": c["cursor"],
                    "updated": c["updated_at"],
                }
                for c in self.store.all_cursors()
            ],
            "queued": [
                {"type": f"{c['system']}.{c['etype']}", "records": queued}
                for c in self.store.all_cursors()
                if (queued := self.store.count_dirty(c["system"], c["etype"]))
            ],
            "leases": [
                {"lease": r["name"], "held_by": r["owner"], "until": r["expires_at"]}
                for r in self.store.table_rows(s.leases, order=s.leases.c.name)
                if r["expires_at"] > now_iso()
            ],
            "held_deletions": self.held_deletions(),
            "conflicts": counts["conflicts"],
            "quarantined": counts["quarantined"],
            "open_intents": len(self.store.open_intents()),
        }

    def held_deletions(self) -> list[dict[str, Any]]:
        """The types whose last complete read returned far fewer records than expected:
        the records it did not return are not taken as deleted until confirmed."""
        return [
            {
                "type": f"{held.system}.{held.etype}",
                "read": held.held_count,
                "expected": held.held_expected,
                "last_complete_read": held.complete_count,
                "not_returned": held.held_unseen,
                "run": held.held_run,
                "at": held.held_at,
                # check the records in the system; if they were deleted:
                "to_do": f"samband sync --confirm-deletions {held.system}.{held.etype}",
            }
            for held in self.store.held_full_scans()
        ]

    def links(self, ref: str) -> list[dict[str, Any]]:
        """Every member of the link group of ``ref`` with its stored (mapped) values."""
        seen, frontier, pairs = {ref}, [ref], []
        while frontier:
            following = []
            for link in self.store.links_touching(frontier):
                pairs.append(link)
                for other in (link.source_ref, link.target_ref):
                    if other not in seen:
                        seen.add(other)
                        following.append(other)
            frontier = following
        rows = []
        for member in sorted(seen):
            snap = self.store.snapshot(member)
            linked = sorted(
                {
                    f"{p.dataflow}: {p.target_ref if p.source_ref == member else p.source_ref}"
                    for p in pairs
                    if member in (p.source_ref, p.target_ref)
                }
            )
            rows.append(
                {
                    "ref": member,
                    "values": snap.data if snap else None,
                    "modified": snap.modified if snap else None,
                    "deleted": snap.deleted if snap else None,
                    "linked": linked,
                }
            )
        return rows

    def conflicts(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.store.table_rows(s.conflicts, order=s.conflicts.c.id.desc(), limit=limit)
        return [
            {
                "id": r["id"],
                "at": r["at"],
                "dataflow": r["dataflow"],
                "source": r["source_ref"],
                "target": r["target_ref"],
                "property": r["property"],
                "source_value": loads(r["source_value"]),
                "target_value": loads(r["target_value"]),
                "winner": r["winner"],
                "reason": r["reason"],
                "resolved": _resolution(r),
            }
            for r in rows
        ]

    def errors(self, limit: int = 100) -> list[dict[str, Any]]:
        return [
            {
                "ref": r["ref"],
                "dataflow": r["dataflow"],
                "kind": r["kind"],
                "reason": r["reason"],
                "attempts": r["attempts"],
                "last": r["last_at"],
            }
            for r in self.store.dead_letters(limit=limit)
        ]

    def errors_export(self, after: int = 0, limit: int = 2000) -> tuple[int, list[list[Any]]]:
        """A page of the quarantine for an export, after the id ``after``: (the id to go on
        after, rows of ref, dataflow, kind, reason, attempts, last); no rows at the end."""
        rows = self.store.dead_letter_rows(after, limit)
        return (rows[-1][0] if rows else after), [list(row[1:]) for row in rows]

    def retry(self, refs: list[str] | None = None) -> int:
        """Mark quarantined records (all, or ``refs``) to be planned again next run."""
        # a dismissed record is retried only when named
        letters = self.store.dead_letters(refs=refs, dismissed=bool(refs))
        queued = {r["ref"] for r in letters} | set(refs or [])
        with self.store.tx():
            marked = self.store.set_dirty(queued, refresh=True)
            self.store.remove_dead_letters([r["id"] for r in letters])
            # a record held after `samband unlink` may now be linked or created
            self.store.unlinked.release(queued)
        return marked

    def history(self, ref: str) -> list[dict[str, Any]]:
        if not ref.startswith("dataflow:"):  # a dataflow's controls: see control_ref
            Ref.parse(ref)
        rows = self.store.table_rows(s.audit, where=s.audit.c.ref == ref, order=s.audit.c.id)
        return [
            {
                "at": r["at"],
                "run": r["run_id"],
                "op": r["op"],
                "dataflow": r["dataflow"],
                "before": loads(r["before"]),
                "after": loads(r["after"]),
            }
            for r in rows
        ]

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest runs, newest first, with their counts, API calls per system and
        messages (the reason of a failed run)."""
        rows = self.store.table_rows(s.runs, order=s.runs.c.id.desc(), limit=limit)
        result = []
        for r in rows:
            stats = loads(r["stats"]) or {}
            result.append(
                {
                    "run": r["id"],
                    "started": r["started_at"],
                    "finished": r["finished_at"],
                    "status": r["status"],
                    "dry_run": bool(r["dry_run"]),
                    **_totals(stats),
                    "api_calls_by_system": stats.get("api_calls_by_system", {}),
                    "messages": stats.get("messages", []),
                }
            )
        return result

    def find(self, text: str, limit: int = 10) -> dict[str, Any]:
        """The link groups of the records ``text`` names (a ref, an id) or holds (the start
        of a value), at most ``limit``: see :mod:`samband.engine.find`."""
        return find_records(self.config, self.store, text, limit)

    def index_search(self, batches: int | None = 1) -> int:
        """Make the search terms of up to ``batches`` batches of records written since
        (None: all); how many were made.  The service calls it after each run."""
        return catch_up(self.store, batches)

    def systems(self, runs: int = 50) -> list[dict[str, Any]]:
        """Every system the dataflows use with its health as the latest ``runs`` runs
        tell it: ``connected`` (read), ``authentication failed``, ``rate limited`` (its
        quota spent), ``unreachable``, ``failing``, or ``unknown`` (no run used it yet);
        the message of its failure, and when it was last read without one."""
        rows = self.store.table_rows(
            s.runs, where=s.runs.c.dry_run.is_(False), order=s.runs.c.id.desc(), limit=runs
        )
        systems: dict[str, dict[str, Any]] = {
            system_id: {
                "system": system_id,
                "kind": system.kind,
                "health": "unknown",
                "message": None,
                "run": None,
                "last_read": None,
            }
            for system_id, system in self.config.systems.items()
        }
        for run in rows:  # newest first: the first word on a system is its health
            stats = loads(run["stats"]) or {}
            read = {key.partition(".")[0] for key in stats.get("collected") or {}}
            errors = stats.get("system_errors") or {}
            for system_id, row in systems.items():
                if row["health"] == "unknown":
                    if system_id in errors:
                        row.update(
                            health=errors[system_id].get("health", "failing"),
                            message=errors[system_id].get("message"),
                            run=run["id"],
                        )
                    elif system_id in read:
                        row.update(health="connected", run=run["id"])
                if row["last_read"] is None and system_id in read and system_id not in errors:
                    row["last_read"] = run["finished_at"]
        return list(systems.values())

    # -- acting on what the views show (see samband.engine.actions) ------------------------
    actor: str | None = None
    """Who acts through this inspector (recorded with each action in history)."""

    @property
    def actions(self) -> Actions:
        return Actions(self.config, self.store, self.actor)

    def resolve(self, conflict_id: int, take: str) -> dict[str, Any]:
        """Apply ``take`` (source or target)'s value of a conflict on the next run."""
        return self.actions.resolve_conflict(conflict_id, take).as_dict()

    def dismiss(self, ref: str) -> dict[str, Any]:
        """A quarantined record is not listed nor retried any more."""
        return self.actions.dismiss(ref).as_dict()

    def unlink(self, ref: str) -> dict[str, Any]:
        """End every link of ``ref``; no run links those pairs again."""
        return self.actions.unlink(ref).as_dict()

    def link(self, first: str, second: str) -> dict[str, Any]:
        """Link two records in every dataflow between their types."""
        return self.actions.link(first, second).as_dict()

    def resync(self, system: str, etype: str) -> dict[str, Any]:
        """The next run reads ``system.etype`` from the start."""
        return self.actions.resync(system, etype).as_dict()

    # -- the controls of a dataflow (see samband.engine.dataflow_actions) -------------------
    @property
    def dataflow_actions(self) -> DataflowActions:
        return DataflowActions(self.config, self.store, self.actor)

    def controls(self) -> list[dict[str, Any]]:
        """Every dataflow's controls (paused, writes per side, full sync, records held)."""
        return self.dataflow_actions.controls()

    def control(self, key: str) -> dict[str, Any]:
        return self.dataflow_actions.control(key)

    def dataflow(self, key: str, runs: int = 60) -> dict[str, Any]:
        """A dataflow's controls, links, queue, quarantine and counts in recent runs."""
        return self.dataflow_actions.view(key, runs)

    def pause(self, key: str) -> dict[str, Any]:
        """No run reads, plans or writes dataflow ``key`` until :meth:`resume`."""
        return self.dataflow_actions.pause(key).as_dict()

    def resume(self, key: str) -> dict[str, Any]:
        return self.dataflow_actions.resume(key).as_dict()

    def share(self, key: str, side: str, on: bool) -> dict[str, Any]:
        """Writing to ``side`` (source or target) of dataflow ``key`` on or off."""
        return self.dataflow_actions.share(key, side, on).as_dict()

    def full_sync(self, key: str, on: bool) -> dict[str, Any]:
        """Create counterparts of records that existed before (on), or only of new ones."""
        return self.dataflow_actions.full_sync(key, on).as_dict()


def _resolution(row: dict[str, Any]) -> str | None:
    """ "take target (applied)", "take source (next run)" or None."""
    if not row.get("resolution"):
        return None
    when = "applied" if row.get("applied_at") else "next run"
    return f"take {row['resolution']} ({when})"


def _totals(stats: dict[str, Any]) -> dict[str, Any]:
    keys = ("created", "updated", "deleted", "linked", "conflicts", "errors", "api_calls")
    return {k: stats.get(k, 0) for k in keys}


def _reason(status: str, stats: dict[str, Any]) -> str | None:
    """Why a run did not end ``ok``: its messages, or what became of a process that
    ended without finishing its run."""
    if status in ("ok", "dry-run", "running"):
        return None
    messages = [str(m) for m in stats.get("messages") or []]
    if messages:
        return "; ".join(messages)
    if status == "interrupted":
        return "the process ended without finishing the run (killed, or the machine restarted)"
    return None


def _safe_store(url: str) -> str:
    from samband.store.store import redact_url

    return redact_url(url)
